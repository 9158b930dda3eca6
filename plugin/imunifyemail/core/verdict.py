"""The verdict: pass or quarantine, and why.

Order (DESIGN §2): a blocked account is held whatever else is true (but
for its whitelisted senders while the block is the daemon's containment,
see :mod:`.containment`); a whitelisted sender passes without scanning;
otherwise Rspamd's action, the executable check and the sender limits decide.
Mail whose remote recipients are all whitelisted is not held for spam (it is
still scanned, checked for executables and limited).
"""
import base64
from dataclasses import dataclass, field, replace
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

from . import limits, trust
from .addresses import envelope_key
from .attribution import Attribution

BLOCKED = "blocked"
SPAM = "spam"
WINEXEC = "winexec"
RATELIMIT = "ratelimit"
# Could not be inspected within the budgets (a MIME bomb, a message Rspamd cannot finish): held,
# never passed unchecked (docs/security.md).
UNSCANNABLE = "unscannable"
REASONS = (SPAM, WINEXEC, RATELIMIT, BLOCKED, UNSCANNABLE)   # why a message is held, as listed and filtered

UNSCANNED = "unscanned"
WHITELISTED = "whitelisted"


@dataclass(frozen=True)
class FilterSettings:
    allow_winexec: bool = False
    spam_filter: bool = True
    spam_actions: Tuple[str, ...] = ("reject",)


# authenticated users (emails); senders and recipients (emails and domains)
WHITELISTS = ("authuser", "sender", "recipient")

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
    recipient_emails: FrozenSet[str] = frozenset()
    recipient_domains: FrozenSet[str] = frozenset()
    # (list, value, until) of the entries that end by themselves (core/trust.py), soonest first
    expiring: Tuple[Tuple[str, str, float], ...] = ()

    def at(self, now: float) -> "Whitelist":
        """The whitelist as it stands at ``now``: without the entries that have ended by then."""
        if not self.expiring or trust.applies(self.expiring[0][2], now):
            return self
        ended = [(lst, value) for lst, value, until in self.expiring if not trust.applies(until, now)]
        gone = {lst: {v for ls, v in ended if ls == lst} for lst in WHITELISTS}
        return Whitelist(
            sender_emails=self.sender_emails - gone["sender"], sender_domains=self.sender_domains - gone["sender"],
            authusers=self.authusers - gone["authuser"], recipient_emails=self.recipient_emails - gone["recipient"],
            recipient_domains=self.recipient_domains - gone["recipient"],
            expiring=tuple(e for e in self.expiring if trust.applies(e[2], now)))

    def allows(self, who: Attribution) -> bool:
        """Whether the sender whitelist lets the message through unscanned. A sender or domain entry is
        a claim anyone can forge: it counts only for verified mail of the account that owns that address
        (account A naming B's address is scanned); an authenticated user is verified by definition."""
        if not who.verified:
            return False
        if who.auth_user != "" and who.auth_user in self.authusers:
            return True
        return who.owns_sender and (who.sender_email in self.sender_emails
                                    or (who.domain != "" and who.domain in self.sender_domains))

    def covers(self, so_type: str, name: str) -> bool:
        """Whether a sender object is whitelisted (only domains and sender emails can be)."""
        if so_type == limits.DOMAIN:
            return name in self.sender_domains
        return so_type == limits.SENDER_EMAIL and name in self.sender_emails

    def ends(self, so_type: str, name: str) -> Optional[float]:
        """When the sender whitelist entry covering a sender object ends (None: for good, or none)."""
        if not self.covers(so_type, name):
            return None
        return next((until for lst, value, until in self.expiring if lst == "sender" and value == name), None)

    def covers_recipients(self, recipients: Sequence[str]) -> bool:
        """Whether every one of a message's remote recipients is whitelisted (by address or by its
        domain, exactly): one message has one verdict, so a single recipient not on the list keeps
        the spam check for all of them."""
        if not recipients or not (self.recipient_emails or self.recipient_domains):
            return False
        for address in recipients:
            email, domain = envelope_key(address)
            if email not in self.recipient_emails and domain not in self.recipient_domains:
                return False
        return True


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
    waived: Tuple[str, ...] = ()   # reasons that would have held it, lifted (recipient whitelist)


def before_scan(who: Attribution, account_blocked: bool, whitelist: Whitelist,
                contained: bool = False) -> Optional[Verdict]:
    """A verdict that needs no scan, or None when the message must be scanned. ``contained``: the
    block is the daemon's containment, which lets whitelisted senders through."""
    if account_blocked and not (contained and whitelist.allows(who)):
        return Verdict(quarantine=True, reasons=(BLOCKED,), action=BLOCKED)
    if whitelist.allows(who):
        return Verdict(quarantine=False, action=WHITELISTED)
    return None


def decide(settings: FilterSettings, scan: Optional[Scan], executables: Sequence[str],
           recipients_whitelisted: bool = False) -> Verdict:
    """``recipients_whitelisted``: every remote recipient is on the recipient whitelist (spam is then
    not a reason to hold it; executables and, later, the sender limits still are)."""
    reasons: List[str] = []
    waived: Tuple[str, ...] = ()
    if scan is not None and settings.spam_filter and scan.action in settings.spam_actions:
        if recipients_whitelisted:
            waived = (SPAM,)
        else:
            reasons.append(SPAM)
    if executables and not settings.allow_winexec:
        reasons.append(WINEXEC)
    return Verdict(
        quarantine=bool(reasons),
        reasons=tuple(reasons),
        action=scan.action if scan is not None else UNSCANNED,
        score=scan.score if scan is not None else None,
        findings=tuple(executables),
        waived=waived,
    )


def unscannable(why: str, scan: Optional[Scan] = None, executables: Sequence[str] = ()) -> Verdict:
    """A message that could not be inspected (``why``, for the administrator): held whatever else
    is true, with what was found before the budget ran out."""
    reasons = (UNSCANNABLE,) + ((WINEXEC,) if executables else ())
    return Verdict(quarantine=True, reasons=reasons, action=scan.action if scan is not None else UNSCANNABLE,
                   score=scan.score if scan is not None else None, findings=(why, *executables))


def held_for_limits(verdict: Verdict) -> Verdict:
    """A message that would pass, held because a sender limit is reached."""
    return replace(verdict, quarantine=True, reasons=verdict.reasons + (RATELIMIT,))


def format_score(score: float) -> str:
    """A score as X-ImunifyEmail-Filter-Score writes it."""
    return f"{score:.2f}"


def filter_fields(verdict: Verdict, scan: Optional[Scan], product_version: str) -> Dict[str, str]:
    """What a passed message's X-ImunifyEmail-Filter-* headers say: action, score, version, info
    (the router of ``exim_conf/`` writes them; empty ones are left out)."""
    out = {"action": verdict.action}
    if verdict.score is not None:
        out["score"] = format_score(verdict.score)
    if scan is not None:
        out["version"] = f"{scan.version or 'unknown'}/{product_version}"
        out["info"] = base64.b64encode(",".join(scan.symbols).encode()).decode("ascii")
    return out
