"""Containment of a compromised account: when to block it automatically. No I/O.

An account that has more than ``threshold`` messages held as spam or winexec within an hour is
blocked by the daemon (state ``block``, noted as contained). Counted from the administrator's last
change of its state at the earliest, so restoring an account starts its count afresh. ``root`` (mail
no account can be blamed for) is never contained: it is no hosted account, and blocking it would
hold the server's own mail; nor is its unverified twin ``unverified:root`` (forwarded mail from
elsewhere, whose spam says nothing about any account). An ``unverified:<account>`` pseudo-account is
contained like an account: mail forged in an account's name is stopped without touching the account. Whitelisted senders are exempt twice over: their mail is never held as
spam, and it still passes while their account is contained (a block by the administrator holds it).
"""
from typing import Collection, List, Optional, Sequence, Tuple

from .accounts import ACTIVE, account_name_error, no_ones
from .verdict import SPAM, WINEXEC
from .window import hour_before

COUNTED = (SPAM, WINEXEC)
OFF = 0


def counts(reasons: Sequence[str]) -> bool:
    """A held message that counts towards containment."""
    return any(r in COUNTED for r in reasons)


def applies(account: str, state: str, threshold: int) -> bool:
    """Whether the account may be contained now (the setting is on, it is active, it is not root)."""
    return threshold != OFF and state == ACTIVE and not no_ones(account)


def window_start(now: int, state_changed_at: Optional[int]) -> int:
    """Held messages after this time count (exclusive)."""
    start = hour_before(now)
    return start if state_changed_at is None else max(start, state_changed_at)


def over(threshold: int, held_in_window: int) -> bool:
    return threshold != OFF and held_in_window > threshold


def cpanel_holds(contained: Collection[str], ours: Collection[str]) -> Tuple[List[str], List[str]]:
    """cPanel's own hold of outgoing mail follows containment (CPANEL.md): (the contained accounts to
    hold the cPanel way, the holds of ours to release: their containment ended). A pseudo-account
    (``unverified:…``) is no cPanel account: cPanel has nothing of it to hold."""
    hold = sorted(a for a in contained if a not in ours and account_name_error(a) is None)
    return hold, sorted(a for a in ours if a not in contained)
