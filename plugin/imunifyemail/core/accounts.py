"""Rules about accounts: who "root" is, their states, quarantine space and release quotas.

``root`` is two things, kept apart here: the administrator (who sees every
account's mail) and the owner of mail no account can be blamed for
(unattributed mail is held under ``root``).

Mail whose sender only *claims* an account (core/attribution.py) belongs to a pseudo-account
``unverified:<claimed account>``: a name no cPanel or Unix user can have (the colon), so it never
meets a real account's quarantine, limits or containment.
"""
import re
from typing import Optional, Sequence, Tuple

ROOT = "root"
ACTIVE = "active"
BLOCK = "block"
STATES = (ACTIVE, BLOCK)

# A hosted user's own releases, counted in recipients (one message can reach fifty mailboxes: what a
# compromised account may send out of its quarantine is what the quota limits); the administrator has no limit.
DEFAULT_RELEASES_PER_HOUR = 5
MAX_RELEASES_PER_HOUR = 100000
MAX_LIMIT_BYTES = 2 ** 62
DEFAULT_LIMIT_BYTES = 104857600   # 100 MB: the seed's "by default, the space for the user's quarantine"
# Given for an account's space limit or releases limit: drop its own value and follow the server's
# default again (the real product's "Use -1 to set common default value").
FOLLOW_DEFAULT = -1
# A cPanel account is a Unix user name (cPanel's own are shorter and stricter; older servers vary).
_ACCOUNT_NAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
NOT_ACCOUNTS = (ROOT, "nobody", "*")
UNVERIFIED_PREFIX = "unverified:"


def unverified(claimed: str) -> str:
    """The pseudo-account of mail that claims ``claimed`` (an account, or root) but is not verified."""
    return UNVERIFIED_PREFIX + claimed


def claimed_account(name: str) -> Optional[str]:
    """The account an ``unverified:`` pseudo-account's mail claims; None for any other name."""
    return name[len(UNVERIFIED_PREFIX):] if name.startswith(UNVERIFIED_PREFIX) else None


def is_verified(name: str) -> bool:
    """Whether an account's mail was attributed by facts the sender cannot forge."""
    return claimed_account(name) is None


def no_ones(name: str) -> bool:
    """Mail no account can be blamed for (verified or not): never contained, as root is not."""
    return name in (ROOT, unverified(ROOT))


def state_error(state: str) -> Optional[str]:
    if state not in STATES:
        return f'invalid state "{state}": use {" or ".join(STATES)}'
    return None


def limit_bytes_error(limit_bytes: int, may_follow: bool = False) -> Optional[str]:
    """Why ``limit_bytes`` cannot be a space limit (``may_follow``: an account's, where -1 means
    "follow the default"), or None."""
    if isinstance(limit_bytes, bool) or not isinstance(limit_bytes, int):
        return f"invalid limit {limit_bytes!r}: must be a whole number of bytes"
    if may_follow and limit_bytes == FOLLOW_DEFAULT:
        return None
    if not 0 <= limit_bytes <= MAX_LIMIT_BYTES:
        follow = " (or -1: the default)" if may_follow else ""
        return f"invalid limit {limit_bytes}: must be 0 or more bytes{follow}"
    return None


def releases_limit_error(limit: int, may_follow: bool = False) -> Optional[str]:
    if may_follow and limit == FOLLOW_DEFAULT and not isinstance(limit, bool):
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_RELEASES_PER_HOUR:
        follow = ", or -1 (the default)" if may_follow else ""
        return (f"invalid releases limit {limit}: must be from 0 (the user cannot release) "
                f"to {MAX_RELEASES_PER_HOUR} recipients per hour{follow}")
    return None


def release_cost(recipients: Sequence[str]) -> int:
    """What releasing one message takes from its account's quota: one per envelope recipient it is
    sent to (never less than one)."""
    return max(len(recipients), 1)


def releases_left(limit: int, used: int) -> int:
    """Recipients a hosted user may still release to within the hour."""
    return max(limit - used, 0)


def release_refusal(blocked: bool, limit: int, released_last_hour: int,
                    asked: Sequence[Tuple[str, int]]) -> Optional[str]:
    """Why a hosted user may not release now the messages ``asked`` ((email id, cost), see
    :func:`release_cost`) of their own account, or None.

    A blocked account's mail is released by the administrator only; otherwise a user releases to
    at most ``limit`` recipients an hour (all of a request or none), and a message with more
    recipients than that is the administrator's to release."""
    if blocked:
        return "your account is blocked: only the administrator can release its emails"
    if limit == 0:
        return "your account's release limit is 0 recipients per hour: only the administrator can release its emails"
    for email_id, cost in asked:
        if cost > limit:
            return (f'email "{email_id}" has {cost} recipients, more than your release limit of {limit} '
                    "recipient(s) per hour: only the administrator can release it")
    left = releases_left(limit, released_last_hour)
    total = sum(cost for _, cost in asked)
    if total > left:
        return (f"release limit reached: {limit} recipient(s) per hour, {left} left now "
                f"(asked for {total}); try again later or ask the administrator")
    return None


def account_name_error(name: object) -> Optional[str]:
    """Why ``name`` cannot be a cPanel account's name (the hooks' payloads), or None."""
    if not isinstance(name, str) or not _ACCOUNT_NAME.match(name):
        return f"invalid account name {name!r}: a cPanel user name is expected"
    if name in NOT_ACCOUNTS:
        return f'"{name}" is not a cPanel account'
    return None
