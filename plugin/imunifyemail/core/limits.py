"""Sender limits in three tiers (seed: "Activity Monitor and Sender limits").

Tier 1 is the server default per object type, tier 2 a per-object override,
tier 3 the whitelist (domain and sender email objects only: whitelisted mail
bypasses scanning and limits altogether, see :mod:`verdict`). A limit of 0
is unlimited. ``limit_mode`` 1 counts messages, 2 counts recipients.

Each object type has two limits: over the last 60 minutes (exact, per message)
and over the last 24 hours (to the minute: counted from the minute buckets, so
what was sent in a minute stops counting when that minute is 24 hours old).
Beside them, a server-wide cap on the recipients of one message
(``max_recipients``), checked before either: a message over it is held and not
counted as sent, whatever the objects' counts.
"""
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .window import DAY, HOUR

ACCOUNT = "account"
DOMAIN = "domain"
SENDER_EMAIL = "sender_email"
SCRIPT = "script"
TYPES = (ACCOUNT, DOMAIN, SENDER_EMAIL, SCRIPT)
WHITELISTABLE = (DOMAIN, SENDER_EMAIL)

BY_MESSAGES = 1
BY_RECIPIENTS = 2
WINDOW_SECONDS = HOUR
DAY_SECONDS = DAY
# Which limit a message found full (Reached.window)
HOURLY = "hour"
DAILY = "day"
PER_MESSAGE = "message"   # the recipient cap
NO_OVERRIDE = -1          # `am limit set --limit=-1`: back to the server default
MAX_LIMIT = 2 ** 31 - 1   # more than any server sends in an hour; SQLite holds it


@dataclass(frozen=True)
class ServerLimits:
    account: int = 0
    domain: int = 0
    script: int = 0
    sender_email: int = 0
    limit_mode: int = BY_MESSAGES
    daily_account: int = 0
    daily_domain: int = 0
    daily_script: int = 0
    daily_sender_email: int = 0
    max_recipients: int = 0
    observe: int = 0          # 1: limits count and report, hold nothing (core/observe.py)

    def for_type(self, so_type: str) -> int:
        return getattr(self, so_type)

    def daily_for_type(self, so_type: str) -> int:
        return getattr(self, _DAILY_KEY[so_type])

    @property
    def any_daily(self) -> bool:
        return bool(self.daily_account or self.daily_domain or self.daily_script or self.daily_sender_email)

    def as_dict(self) -> Dict[str, int]:
        return {"account": self.account, "domain": self.domain, "limit_mode": self.limit_mode,
                "script": self.script, "sender_email": self.sender_email,
                **{key: getattr(self, key) for key in ADDED_KEYS}}


SERVER_KEYS = ("account", "domain", "limit_mode", "script", "sender_email")   # the seed's
_DAILY_KEY = {t: "daily_" + t for t in TYPES}
DAILY_KEYS = tuple(_DAILY_KEY.values())
ADDED_KEYS = (*DAILY_KEYS, "max_recipients", "observe")   # beyond the seed: added to its JSON
SETTABLE_KEYS = (*SERVER_KEYS, *ADDED_KEYS)
LEAVE = -1                # `am server-settings set --domain=-1`: leave it as it is


def limit_error(value, what: str, minus_one: str) -> Optional[str]:
    """Why ``value`` is no limit (0 = unlimited, up to MAX_LIMIT, or -1 meaning
    ``minus_one``), or None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"invalid {what} {value!r}: must be a whole number"
    if value < -1 or value > MAX_LIMIT:
        return f"invalid {what} {value}: use 0 (unlimited) to {MAX_LIMIT}, or -1 {minus_one}"
    return None


def limit_mode_error(value) -> Optional[str]:
    if isinstance(value, bool) or value not in (BY_MESSAGES, BY_RECIPIENTS):
        return f"invalid limit mode {value}: use 1 (messages) or 2 (recipients)"
    return None


def override_of(limit: int) -> Optional[int]:
    """The override to store for `am limit set --limit`: None removes it (-1)."""
    return None if limit == NO_OVERRIDE else limit


def effective_limit(so_type: str, override: Optional[int], server: ServerLimits) -> int:
    return override if override is not None else server.for_type(so_type)


def effective_daily(so_type: str, daily_override: Optional[int], server: ServerLimits) -> int:
    return daily_override if daily_override is not None else server.daily_for_type(so_type)


def over_cap(recipients: int, server: ServerLimits) -> bool:
    """More recipients in one message than the server allows (0: no cap)."""
    return 0 < server.max_recipients < recipients


def weight(limit_mode: int, recipients: int) -> int:
    """How much one message counts against a limit."""
    return recipients if limit_mode == BY_RECIPIENTS else 1


@dataclass(frozen=True)
class Usage:
    """One sender object of a message, as the store sees it now."""
    so_type: str
    object_id: str
    override: Optional[int]
    messages: int        # sent in the last 60 minutes
    recipients: int      # recipients of those
    daily_override: Optional[int] = None
    day_messages: int = 0      # sent in the last 24 hours (counted only under a daily limit)
    day_recipients: int = 0


def used(usage: Usage, limit_mode: int) -> int:
    return usage.recipients if limit_mode == BY_RECIPIENTS else usage.messages


def used_today(usage: Usage, limit_mode: int) -> int:
    return usage.day_recipients if limit_mode == BY_RECIPIENTS else usage.day_messages


def rate_limited(usage: Usage, server: ServerLimits) -> bool:
    """At or over its effective limit now (what `am stats` calls rateLimited)."""
    limit = effective_limit(usage.so_type, usage.override, server)
    return limit > 0 and used(usage, server.limit_mode) >= limit


def daily_limited(usage: Usage, server: ServerLimits) -> bool:
    """At or over its effective daily limit now."""
    limit = effective_daily(usage.so_type, usage.daily_override, server)
    return limit > 0 and used_today(usage, server.limit_mode) >= limit


@dataclass(frozen=True)
class Over:
    """A limit this message would exceed: the object's type and id (the cap: neither), which window
    (HOURLY, DAILY or PER_MESSAGE), the effective limit and what counts against it with the message."""
    so_type: str
    object_id: str
    window: str
    limit: int
    used: int


def offenders(objects: Iterable[Usage], recipients: int, server: ServerLimits) -> List[Over]:
    """The limits this message would exceed: the recipient cap alone when it is over it (then the
    objects' counts do not matter), else each object's hourly and daily limit it would go over.
    (Written out for speed: it runs for every message; the tiers are :func:`effective_limit` and
    :func:`effective_daily`, the counts :func:`used` and :func:`used_today`.)"""
    if over_cap(recipients, server):
        return [Over("", "", PER_MESSAGE, server.max_recipients, recipients)]
    by_recipients = server.limit_mode == BY_RECIPIENTS
    cost = recipients if by_recipients else 1
    out = []
    for u in objects:
        hourly = u.override if u.override is not None else getattr(server, u.so_type)
        if hourly > 0:
            total = (u.recipients if by_recipients else u.messages) + cost
            if total > hourly:
                out.append(Over(u.so_type, u.object_id, HOURLY, hourly, total))
        daily = u.daily_override if u.daily_override is not None else getattr(server, _DAILY_KEY[u.so_type])
        if daily > 0:
            total = (u.day_recipients if by_recipients else u.day_messages) + cost
            if total > daily:
                out.append(Over(u.so_type, u.object_id, DAILY, daily, total))
    return out


def script_name(domain: str, path: str) -> str:
    """A script object's name: ``domain/path`` when the header tells the domain."""
    if not path:
        return ""
    return f"{domain}{path}" if domain and path.startswith("/") else (f"{domain}/{path}" if domain else path)


def objects_of(account: str, domain: str, sender_email: str, script: str) -> List[Tuple[str, str]]:
    """(type, name) of the sender objects a message belongs to; a null sender has
    no domain or sender email, a message without a PHP header no script."""
    out = [(ACCOUNT, account)]
    if domain:
        out.append((DOMAIN, domain))
    if sender_email:
        out.append((SENDER_EMAIL, sender_email))
    if script:
        out.append((SCRIPT, script))
    return out


_PER = {HOURLY: "an hour", DAILY: "a day"}


@dataclass(frozen=True, order=True)
class Reached:
    """A limit a message found full (why it was held for ``ratelimit``): the sender object's type and
    name, its effective limit, what that limit counts (``limit_mode``) and over which window (the
    recipient cap: PER_MESSAGE, no object)."""
    so_type: str
    name: str
    limit: int
    limit_mode: int = BY_MESSAGES
    window: str = HOURLY

    def as_dict(self) -> Dict[str, object]:
        return {"type": self.so_type, "name": self.name, "limit": self.limit, "limit_mode": self.limit_mode,
                "window": self.window}

    @property
    def text(self) -> str:
        if self.window == PER_MESSAGE:
            return f"more than {self.limit} recipients in one message"
        unit = "recipients" if self.limit_mode == BY_RECIPIENTS else "messages"
        return f"{self.so_type} {self.name or '(none)'}: {self.limit} {unit} {_PER.get(self.window, self.window)}"


def reached(offenders: Sequence[Over], who: Tuple[str, str, str, str], server: ServerLimits) -> Tuple[Reached, ...]:
    """The limits ``offenders`` (:func:`offenders`) are, named by the message's objects ``who``
    (account, domain, sender email, script)."""
    names = dict(objects_of(*who))
    return tuple(Reached(o.so_type, names.get(o.so_type, ""), o.limit,
                         BY_RECIPIENTS if o.window == PER_MESSAGE else server.limit_mode, o.window)
                 for o in offenders)


def describe(offenders: Sequence[Over], server: ServerLimits) -> str:
    """For the log: each limit as object id, count with the message / limit, window."""
    return ", ".join(f"{o.used} recipients in one message/{o.limit}" if o.window == PER_MESSAGE else
                     f"{o.so_type} {o.object_id} {o.used}/{o.limit} {_PER[o.window]}" for o in offenders)
