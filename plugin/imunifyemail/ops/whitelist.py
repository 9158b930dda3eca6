"""The whitelists: authenticated users (email addresses), senders and recipients (email addresses and
domains).

Mail of a whitelisted sender or authenticated user bypasses scanning and sender limits. Mail whose
remote recipients are all whitelisted is not held for spam; executables and limits still apply
(:func:`imunifyemail.core.verdict.decide`). The Activity Monitor's "Whitelist sender" puts a domain
or sender email object on the same sender list (:mod:`.activity`).
"""
import logging
from typing import Dict, List, Optional, Sequence, Tuple

from ..context import Context
from ..core import trust
from ..core.addresses import classify, normalize_email
from ..core.verdict import WHITELISTS
from ..errors import InvalidInput, NotFoundError
from ..store import settings
from . import audit
from .caller import Caller, require_admin

log = logging.getLogger(__name__)

NAMES = {"authuser": "authenticated user", "sender": "sender", "recipient": "recipient"}


def parse_values(list_name: str, values: Sequence[str]) -> List[Tuple[str, str]]:
    """(kind, normalized value) for each value, duplicates dropped; the
    authenticated-user list takes email addresses only."""
    if list_name not in WHITELISTS:
        raise InvalidInput(f'unknown whitelist "{list_name}"')
    if not values:
        raise InvalidInput("no value given: name one or more email addresses"
                           + (" or domains" if list_name != "authuser" else ""))
    out: List[Tuple[str, str]] = []
    for value in values:
        try:
            entry = ("email", normalize_email(value)) if list_name == "authuser" else classify(value)
        except ValueError as exc:
            if list_name == "authuser" and "@" not in value:
                raise InvalidInput(f'invalid authenticated user "{value}": must be an email address') \
                    from None
            raise InvalidInput(str(exc)) from None
        if entry not in out:
            out.append(entry)
    return out


def entries(ctx: Context, caller: Caller, list_name: str) -> Dict[str, object]:
    """The entries in force now: ``emails``, ``domains`` and ``expires_at`` (value → end, None: for good)."""
    require_admin(caller, "see the whitelists")
    if list_name not in WHITELISTS:
        raise InvalidInput(f'unknown whitelist "{list_name}"')
    return settings.whitelist_entries(ctx.conn, list_name, ctx.clock())


def expiry(for_text: Optional[str], until_text: Optional[str], now: float) -> Optional[int]:
    """When trust given ``--for`` a duration or ``--until`` a time ends (None: neither, for good)."""
    try:
        return trust.until_from(for_text, until_text, now)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def add(ctx: Context, caller: Caller, list_name: str, values: Sequence[str],
        until: Optional[int] = None) -> List[Tuple[str, str]]:
    """Add entries, for good or until ``until`` (:func:`expiry`; an entry already there for good stays so)."""
    require_admin(caller, "change the whitelists")
    found = parse_values(list_name, values)
    settings.whitelist_add(ctx.conn, list_name, found, until)
    detail = {"list": list_name, "values": [v for _, v in found]}
    if until is not None:
        detail["until"] = trust.iso(until)
    audit.record(ctx, caller, "whitelist add", detail=detail)
    return found


def remove(ctx: Context, caller: Caller, list_name: str, values: Sequence[str]) -> List[Tuple[str, str]]:
    require_admin(caller, "change the whitelists")
    found = parse_values(list_name, values)
    missing = settings.whitelist_remove(ctx.conn, list_name, [v for _, v in found])
    if missing:
        raise NotFoundError(f"not in the {NAMES[list_name]} whitelist: {', '.join(missing)}")
    audit.record(ctx, caller, "whitelist remove", detail={"list": list_name, "values": [v for _, v in found]})
    return found
