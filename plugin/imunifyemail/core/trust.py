"""Trust for a while: a whitelist entry, or a sender object's raised hourly limit, that ends by itself.

Both carry the moment they end (``until``, unix seconds; None: a whitelist entry that never does).
Whether one applies is decided here, against the time of the decision itself, so it ends exactly
then whatever a cache holds; the daemon's housekeeping only tidies away what has ended.
"""
import re
from datetime import datetime, timezone
from typing import Optional

from . import limits

MAX_SECONDS = 10 * 366 * 86400   # a "while" of ten years is the most we take: beyond is permanent
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d{1,9})([smhdw])")


def applies(until: Optional[float], now: float) -> bool:
    """A whitelist entry or a raise is in force at ``now`` until (not at) its end."""
    return until is None or now < until


def override_at(override: Optional[int], raised_limit: Optional[int], raised_until: Optional[float],
                now: float) -> Optional[int]:
    """The object's own limit (tier 2) in force at ``now``: a raise while it lasts, else its override
    as set (None: the server default) — which thus applies again by itself once the raise ends."""
    if raised_limit is not None and raised_until is not None and applies(raised_until, now):
        return raised_limit
    return override


def parse_duration(text: str) -> int:
    """Seconds in ``30m``, ``12h``, ``7d``, ``2w`` (or ``90s``); ValueError says why not."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found is None:
        raise ValueError(f'invalid duration "{text}": use a whole number and a unit, e.g. 30m, 12h, 7d or 2w')
    seconds = int(found.group(1)) * UNITS[found.group(2)]
    if seconds <= 0:
        raise ValueError(f'invalid duration "{text}": must be more than 0')
    if seconds > MAX_SECONDS:
        raise ValueError(f'invalid duration "{text}": at most 10 years (leave it out for a permanent entry)')
    return seconds


def parse_time(text: str) -> int:
    """Unix seconds of an ISO 8601 time (``2026-12-10T18:00``, ``2026-12-10 18:00:00+01:00``,
    ``...Z``); without an offset it is the server's local time."""
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f'invalid time "{text}": use ISO 8601, e.g. 2026-12-10T18:00 or 2026-12-10T18:00Z') \
            from None
    return int(at.timestamp()) if at.tzinfo is not None else int(at.astimezone().timestamp())


def until_from(for_text: Optional[str], until_text: Optional[str], now: float) -> Optional[int]:
    """When trust given "for" a duration or "until" a time ends (None: neither given, permanent);
    ValueError when both are given, or the end is not in the future (or too far in it)."""
    if for_text is not None and until_text is not None:
        raise ValueError("give either a duration (for) or an end time (until), not both")
    if for_text is not None:
        return int(now) + parse_duration(for_text)
    if until_text is None:
        return None
    until = parse_time(until_text)
    if until <= now:
        raise ValueError(f'invalid time "{until_text}": it has passed (now is {iso(now)})')
    if until - now > MAX_SECONDS:
        raise ValueError(f'invalid time "{until_text}": at most 10 years ahead')
    return until


def raise_error(new_limit: int, current_limit: int, what: str) -> Optional[str]:
    """Why ``new_limit`` is no raise of ``what``'s hourly limit ``current_limit`` (0: unlimited), or None."""
    if isinstance(new_limit, bool) or not isinstance(new_limit, int) or not 1 <= new_limit <= limits.MAX_LIMIT:
        return f"invalid raised limit {new_limit!r}: use 1 to {limits.MAX_LIMIT}"
    if current_limit == 0:
        return f"{what} has no limit now: nothing to raise"
    if new_limit <= current_limit:
        return f"{new_limit} is no raise: {what}'s limit is {current_limit} an hour now"
    return None


def iso(at: float) -> str:
    """An end time as the lists and messages print it (UTC, to the second)."""
    return datetime.fromtimestamp(int(at), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
