"""Hourly sender limits in three tiers (seed: "Activity Monitor and Sender limits").

Tier 1 is the server default per object type, tier 2 a per-object override,
tier 3 the whitelist (domain and sender email objects only: whitelisted mail
bypasses scanning and limits altogether, see :mod:`verdict`). A limit of 0
is unlimited. ``limit_mode`` 1 counts messages, 2 counts recipients, over
the last 60 minutes.
"""
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .window import HOUR

ACCOUNT = "account"
DOMAIN = "domain"
SENDER_EMAIL = "sender_email"
SCRIPT = "script"
TYPES = (ACCOUNT, DOMAIN, SENDER_EMAIL, SCRIPT)
WHITELISTABLE = (DOMAIN, SENDER_EMAIL)

BY_MESSAGES = 1
BY_RECIPIENTS = 2
WINDOW_SECONDS = HOUR
NO_OVERRIDE = -1          # `am limit set --limit=-1`: back to the server default
MAX_LIMIT = 2 ** 31 - 1   # more than any server sends in an hour; SQLite holds it


@dataclass(frozen=True)
class ServerLimits:
    account: int = 0
    domain: int = 0
    script: int = 0
    sender_email: int = 0
    limit_mode: int = BY_MESSAGES
    observe: int = 0          # 1: limits count and report, hold nothing (core/observe.py)

    def for_type(self, so_type: str) -> int:
        return getattr(self, so_type)

    def as_dict(self) -> Dict[str, int]:
        return {"account": self.account, "domain": self.domain, "limit_mode": self.limit_mode,
                "observe": self.observe, "script": self.script, "sender_email": self.sender_email}


SERVER_KEYS = ("account", "domain", "limit_mode", "observe", "script", "sender_email")
LEAVE = -1                # `am server-settings set --domain=-1`: leave it as it is


def limit_error(value, what: str, minus_one: str) -> Optional[str]:
    """Why ``value`` is no hourly limit (0 = unlimited, up to MAX_LIMIT, or -1 meaning
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


def used(usage: Usage, limit_mode: int) -> int:
    return usage.recipients if limit_mode == BY_RECIPIENTS else usage.messages


def rate_limited(usage: Usage, server: ServerLimits) -> bool:
    """At or over its effective limit now (what `am stats` calls rateLimited)."""
    limit = effective_limit(usage.so_type, usage.override, server)
    return limit > 0 and used(usage, server.limit_mode) >= limit


def offenders(objects: Iterable[Usage], recipients: int, server: ServerLimits) -> List[Usage]:
    """The objects this message would take over their effective limit."""
    cost = weight(server.limit_mode, recipients)
    return [u for u in objects
            if effective_limit(u.so_type, u.override, server) > 0
            and used(u, server.limit_mode) + cost > effective_limit(u.so_type, u.override, server)]


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


@dataclass(frozen=True, order=True)
class Reached:
    """A limit a message found full (why it was held for ``ratelimit``): the sender object's type and
    name, its effective limit and what that limit counts (``limit_mode``)."""
    so_type: str
    name: str
    limit: int
    limit_mode: int = BY_MESSAGES

    def as_dict(self) -> Dict[str, object]:
        return {"type": self.so_type, "name": self.name, "limit": self.limit, "limit_mode": self.limit_mode}

    @property
    def text(self) -> str:
        unit = "recipients" if self.limit_mode == BY_RECIPIENTS else "messages"
        return f"{self.so_type} {self.name or '(none)'}: {self.limit} {unit} an hour"


def reached(offenders: Sequence[Usage], who: Tuple[str, str, str, str], server: ServerLimits) -> Tuple[Reached, ...]:
    """The limits ``offenders`` (:func:`offenders`) are, named by the message's objects ``who``
    (account, domain, sender email, script)."""
    names = dict(objects_of(*who))
    return tuple(Reached(u.so_type, names.get(u.so_type, ""), effective_limit(u.so_type, u.override, server),
                         server.limit_mode) for u in offenders)


def describe(offenders: Sequence[Usage], server: ServerLimits) -> str:
    return ", ".join(f"{u.so_type} {u.object_id} {used(u, server.limit_mode)}/"
                     f"{effective_limit(u.so_type, u.override, server)}" for u in offenders)
