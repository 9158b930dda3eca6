"""The digest email: what a batch of events says, and the message that says it (no I/O).

Counts by reason, the sender limits that were reached, the accounts, senders and scripts with the
most held mail, the accounts blocked
automatically and the mail released automatically, with links to the pages. Senders and scripts
come from the hosted users' mail: they are cleaned of control characters and cut short, and the
message is plain text, so nothing in them can pose as part of the digest.
"""
import hashlib
import textwrap
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import default
from email.utils import format_datetime
from typing import List, Optional, Sequence, Tuple

from .limits import Reached
from .notifications import AUTO_RELEASED, CONTAINED, HELD
from .verdict import REASONS

TOP = 10
FIELD_WIDTH = 80
WRAP = 76
REASON_TEXT = {"spam": "scored as spam", "winexec": "a Windows executable attached",
               "ratelimit": "over an hourly sender limit", "blocked": "the account was blocked"}
# Where the pages are (whm/imunifyemail.conf ``url``, cpanel/install.json ``uri`` under the theme).
WHM_PORT, CPANEL_PORT = 2087, 2083
WHM_PATH = "/cgi/imunifyemail/index.cgi"
CPANEL_PATH = "/frontend/jupiter/imunifyemail/index.live.cgi"
ACTIVITY_ROUTE = "?route=/admin/activity"


@dataclass(frozen=True)
class Summary:
    held: int
    reasons: Tuple[Tuple[str, int], ...]
    accounts: Tuple[Tuple[str, int], ...]               # most held first
    senders: Tuple[Tuple[str, str, int], ...]           # (sender, account, held)
    scripts: Tuple[Tuple[str, str, int], ...]           # (script, account, held)
    limits: Tuple[Tuple[Reached, str, int], ...]        # (a limit reached, account, mail it held)
    contained: Tuple[str, ...]
    auto_released: int
    first_at: int
    last_at: int

    @property
    def empty(self) -> bool:
        return not (self.held or self.contained or self.auto_released)


def _top(counter: Counter, n: int) -> List:
    # Most first; ties in a stable order (by name) so that the same events read the same.
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def summarize(events: Sequence, top: int = TOP) -> Summary:
    reasons: Counter = Counter()
    accounts: Counter = Counter()
    senders: Counter = Counter()
    scripts: Counter = Counter()
    limits: Counter = Counter()
    contained: List[str] = []
    held = released = 0
    for e in events:
        if e.kind == HELD:
            held += 1
            reasons.update(e.reasons)
            accounts[e.account] += 1
            senders[(e.sender or "<>", e.account)] += 1
            if e.script:
                scripts[(e.script, e.account)] += 1
            for r in e.limits:
                limits[(r, e.account)] += 1
        elif e.kind == CONTAINED and e.account not in contained:
            contained.append(e.account)
        elif e.kind == AUTO_RELEASED:
            released += 1
    order = {r: i for i, r in enumerate(REASONS)}
    return Summary(
        held=held,
        reasons=tuple(sorted(reasons.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))),
        accounts=tuple(_top(accounts, top)),
        senders=tuple((s, a, n) for (s, a), n in _top(senders, top)),
        scripts=tuple((s, a, n) for (s, a), n in _top(scripts, top)),
        limits=tuple((r, a, n) for (r, a), n in _top(limits, top)),
        contained=tuple(contained), auto_released=released,
        first_at=min((e.at for e in events), default=0), last_at=max((e.at for e in events), default=0))


def clean(value: str, width: int = FIELD_WIDTH) -> str:
    """One printable line of at most ``width`` characters."""
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return text if len(text) <= width else text[:width - 1] + "…"


def _plural(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def duration(seconds: int) -> str:
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            return _plural(seconds // size, unit)
    return _plural(seconds, "second")


def _every(seconds: int) -> str:
    text = duration(seconds)
    return "every " + (text[2:] if text.startswith("1 ") else text)


def _when(at: int) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _table(rows: Sequence[Tuple[str, int]]) -> List[str]:
    width = max((len(label) for label, _ in rows), default=0)
    return [f"  {label.ljust(width)}  {n:>6}" for label, n in rows]


def headline(s: Summary) -> str:
    parts = []
    if s.held:
        parts.append(f"{_plural(s.held, 'message')} held")
    if s.contained:
        parts.append(f"{_plural(len(s.contained), 'account')} blocked")
    if s.auto_released:
        parts.append(f"{_plural(s.auto_released, 'message')} released automatically")
    return ", ".join(parts)


def links(host: str, admin: bool) -> List[Tuple[str, str]]:
    if admin:
        page = f"https://{host}:{WHM_PORT}{WHM_PATH}"
        return [("The held mail: WHM → Plugins → Imunify Email", page),
                ("Sender limits: WHM → Plugins → Imunify Email → Activity Monitor", page + ACTIVITY_ROUTE)]
    return [("Your held mail: cPanel → Security → Imunify Email", f"https://{host}:{CPANEL_PORT}{CPANEL_PATH}")]


def _span(first: int, last: int) -> str:
    a, b = _when(first), _when(last)
    if a == b:
        return a
    return f"{a[:-4]} to {b[11:] if a[:10] == b[:10] else b}"


def _paragraph(text: str) -> List[str]:
    return textwrap.wrap(text, WRAP, break_long_words=False, break_on_hyphens=False)


def body(s: Summary, host: str, accounts: Optional[Sequence[str]], period: int) -> str:
    """The text; ``accounts`` None: the administrator's digest (every account)."""
    admin = accounts is None
    whose = "" if admin else (f", mail sent from your account{'s' if len(accounts) > 1 else ''} "
                              + ", ".join(clean(a) for a in accounts))
    lines = _paragraph(f"Imunify Email on {host}{whose}, {_span(s.first_at, s.last_at)}: {headline(s)}.") + [""]
    if s.held:
        lines += ["Held, by reason (a message held for two reasons counts under both):",
                  *_table([(f"{r} ({REASON_TEXT[r]})" if r in REASON_TEXT else r, n) for r, n in s.reasons]), ""]
        if s.limits:
            lines += ["Sender limits reached (messages held by each):",
                      *_table([(f"{clean(r.text)} ({clean(a)})", n) for r, a, n in s.limits]), ""]
        if admin or len(accounts) > 1:
            lines += ["Accounts with the most held mail:", *_table([(clean(a), n) for a, n in s.accounts]), ""]
        lines += ["Senders with the most held mail:",
                  *_table([(f"{clean(snd)} ({clean(a)})", n) for snd, a, n in s.senders]), ""]
        if s.scripts:
            lines += ["Scripts with the most held mail:",
                      *_table([(f"{clean(scr)} ({clean(a)})", n) for scr, a, n in s.scripts]), ""]
    if s.contained:
        lines += _paragraph("Blocked automatically for too much spam or too many executables within an hour "
                            "(mail is held until the account is unblocked):")
        lines += [*[f"  {clean(a)}" for a in s.contained], ""]
    if s.auto_released:
        lines += _paragraph(f"Released automatically once their sender limits had room again: "
                            f"{_plural(s.auto_released, 'message')}.") + [""]
    for label, url in links(host, admin):
        lines += [f"{label}:", f"  {url}"]
    lines.append("")
    if admin:
        lines += _paragraph(f"You get at most one such message {_every(period)}. To change that: WHM → "
                            "Plugins → Imunify Email → Settings, or ie-cli settings --notify-admin, --notify-owner, "
                            "--notify-period.")
    else:
        lines += _paragraph("If you did not send this mail, someone may be using your account: change its "
                            "passwords and check its scripts.")
        lines += _paragraph(f"You get at most one such message {_every(period)}. Your hosting provider "
                            "can turn these messages off.")
    return "\n".join(lines) + "\n"


# Headers on one line up to RFC 5322's hard limit: Python folds a long Subject right after its name.
POLICY = default.clone(max_line_length=998)


def compose(s: Summary, host: str, sender: str, to: Sequence[str], accounts: Optional[Sequence[str]],
            period: int, now: int, event_ids: Tuple[int, int]) -> EmailMessage:
    """The digest as a message for the MTA; ``event_ids``: the first and last event it reports."""
    msg = EmailMessage()
    who = ""
    if accounts is not None:
        named = ", ".join(clean(a, 40) for a in accounts[:3]) + (f" and {len(accounts) - 3} more" if len(accounts) > 3 else "")
        who = f", account{'s' if len(accounts) > 1 else ''} {named}"
    msg["Subject"] = f"Imunify Email on {host}{who}: {headline(s)}"
    msg["From"] = f"Imunify Email <{sender}>"
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(datetime.fromtimestamp(now, timezone.utc))
    tag = hashlib.sha256(",".join(sorted(to)).encode()).hexdigest()[:12]
    msg["Message-ID"] = f"<imunifyemail-digest.{event_ids[0]}-{event_ids[1]}.{tag}@{host}>"
    msg["Auto-Submitted"] = "auto-generated"   # RFC 3834: no vacation replies to it
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(body(s, host, accounts, period))
    return msg
