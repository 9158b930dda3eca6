"""The verdict: pass or quarantine, and why.

Order (DESIGN §2): a blocked account is held whatever else is true (but
for its whitelisted senders while the block is the daemon's containment,
see :mod:`.containment`); a whitelisted sender passes without scanning;
otherwise Rspamd's action, the executable check and the sender limits decide.
"""
import base64
from dataclasses import dataclass, field, replace
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

from . import limits
from .attribution import Attribution

BLOCKED = "blocked"
SPAM = "spam"
WINEXEC = "winexec"
RATELIMIT = "ratelimit"
REASONS = (SPAM, WINEXEC, RATELIMIT, BLOCKED)   # why a message is held, as listed and filtered

UNSCANNED = "unscanned"
WHITELISTED = "whitelisted"


@dataclass(frozen=True)
class FilterSettings:
    allow_winexec: bool = False
    spam_filter: bool = True
    spam_actions: Tuple[str, ...] = ("reject",)


WHITELISTS = ("authuser", "sender")   # authenticated users (emails); senders (emails and domains)

# The switches an administrator turns (`ie-cli filter-settings`, Settings): FilterSettings fields.
FILTER_SETTINGS = {
    "allow_winexec": "let messages with Windows executable attachments through",
    "spam_filter": "quarantine messages Rspamd classifies as spam",
}


@dataclass(frozen=True)
class Whitelist:
    sender_emails: FrozenSet[str] = frozenset()
    sender_domains: FrozenSet[str] = frozenset()
    authusers: FrozenSet[str] = frozenset()

    def allows(self, who: Attribution) -> bool:
        return (who.sender_email in self.sender_emails
                or (who.domain != "" and who.domain in self.sender_domains)
                or (who.auth_user != "" and who.auth_user in self.authusers))

    def covers(self, so_type: str, name: str) -> bool:
        """Whether a sender object is whitelisted (only domains and sender emails can be)."""
        if so_type == limits.DOMAIN:
            return name in self.sender_domains
        return so_type == limits.SENDER_EMAIL and name in self.sender_emails


@dataclass(frozen=True)
class Scan:
    """Rspamd's answer; ``None`` in its place means Rspamd could not be asked."""
    action: str
    score: float
    symbols: Tuple[str, ...] = ()
    version: str = ""


@dataclass(frozen=True)
class Verdict:
    quarantine: bool
    reasons: Tuple[str, ...] = ()
    action: str = ""            # what X-ImunifyEmail-Filter-Action says
    score: Optional[float] = None
    findings: Tuple[str, ...] = field(default=())


def before_scan(who: Attribution, account_blocked: bool, whitelist: Whitelist,
                contained: bool = False) -> Optional[Verdict]:
    """A verdict that needs no scan, or None when the message must be scanned. ``contained``: the
    block is the daemon's containment, which lets whitelisted senders through."""
    if account_blocked and not (contained and whitelist.allows(who)):
        return Verdict(quarantine=True, reasons=(BLOCKED,), action=BLOCKED)
    if whitelist.allows(who):
        return Verdict(quarantine=False, action=WHITELISTED)
    return None


def decide(settings: FilterSettings, scan: Optional[Scan], executables: Sequence[str]) -> Verdict:
    reasons: List[str] = []
    if scan is not None and settings.spam_filter and scan.action in settings.spam_actions:
        reasons.append(SPAM)
    if executables and not settings.allow_winexec:
        reasons.append(WINEXEC)
    return Verdict(
        quarantine=bool(reasons),
        reasons=tuple(reasons),
        action=scan.action if scan is not None else UNSCANNED,
        score=scan.score if scan is not None else None,
        findings=tuple(executables),
    )


def over_limit(verdict: Verdict) -> Verdict:
    """A message that would pass, held because a sender limit is reached."""
    return replace(verdict, quarantine=True, reasons=verdict.reasons + (RATELIMIT,))


def filter_fields(verdict: Verdict, scan: Optional[Scan], product_version: str) -> Dict[str, str]:
    """What a passed message's X-ImunifyEmail-Filter-* headers say: action, score, version, info
    (the router of ``exim_conf/`` writes them; empty ones are left out)."""
    out = {"action": verdict.action}
    if verdict.score is not None:
        out["score"] = f"{verdict.score:.2f}"
    if scan is not None:
        out["version"] = f"{scan.version or 'unknown'}/{product_version}"
        out["info"] = base64.b64encode(",".join(scan.symbols).encode()).decode("ascii")
    return out
