"""The daemon's metrics: what is counted, and how it reads in Prometheus' text format (0.0.4).

No I/O here. The daemon counts in memory (:class:`MailCounters`: a few integer additions per
message), reads the gauges from the store and Exim's spool, and writes :func:`render`'s text to the
file node_exporter's textfile collector reads (:mod:`imunifyemail.daemon.metrics`). Counters start
at zero with the daemon, as Prometheus expects (``imunifyemail_daemon_start_time_seconds`` says
when); the gauges are read afresh for each file. :func:`parse` reads the file back for
``ie-config status``.
"""
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from .verdict import REASONS

PREFIX = "imunifyemail_"
# Seconds: a local Rspamd answers a small message in milliseconds; the top buckets are its timeout.
RSPAMD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Histogram:
    def __init__(self, bounds: Sequence[float]):
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)   # per bucket, not cumulative; the last is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        i = 0
        while i < len(self.bounds) and value > self.bounds[i]:
            i += 1
        self.counts[i] += 1
        self.sum += value

    def copy(self) -> "Histogram":
        h = Histogram(self.bounds)
        h.counts, h.sum = list(self.counts), self.sum
        return h


@dataclass
class Counts:
    """One consistent copy of the counters (:meth:`MailCounters.snapshot`)."""
    started_at: float
    scanned: int = 0
    passed: int = 0
    deferred: int = 0
    held: Dict[str, int] = field(default_factory=lambda: {r: 0 for r in REASONS})
    reinjections: int = 0
    reinjection_failures: int = 0
    rspamd_unreachable: int = 0
    rspamd_seconds: Histogram = field(default_factory=lambda: Histogram(RSPAMD_BUCKETS))


class MailCounters:
    """Counted by the event loop (verdicts, scans) and the control thread (releases): under a lock."""

    def __init__(self, started_at: float):
        self._lock = threading.Lock()
        self._counts = Counts(started_at)

    def decided(self, verdict: str, reasons: Sequence[str] = ()) -> None:
        """A message's fresh verdict (``pass``, ``hold`` or ``defer``); a retry's remembered one is not."""
        with self._lock:
            c = self._counts
            if verdict == "pass":
                c.scanned += 1
                c.passed += 1
            elif verdict == "hold":
                c.scanned += 1
                for reason in reasons:
                    c.held[reason] = c.held.get(reason, 0) + 1
            else:
                c.deferred += 1

    def rspamd_answered(self, seconds: float) -> None:
        with self._lock:
            self._counts.rspamd_seconds.observe(seconds)

    def rspamd_failed(self) -> None:
        with self._lock:
            self._counts.rspamd_unreachable += 1

    def reinjected(self, ok: bool) -> None:
        with self._lock:
            self._counts.reinjections += 1
            if not ok:
                self._counts.reinjection_failures += 1

    def snapshot(self) -> Counts:
        with self._lock:
            c = self._counts
            return Counts(c.started_at, c.scanned, c.passed, c.deferred, dict(c.held), c.reinjections,
                          c.reinjection_failures, c.rspamd_unreachable, c.rspamd_seconds.copy())


@dataclass(frozen=True)
class AccountHeld:
    account: str
    messages: int
    bytes: int


@dataclass(frozen=True)
class Room:
    """The quarantine's filesystem against its floor (:mod:`.headroom`): below it, held mail is deferred."""
    free_bytes: int
    floor_bytes: int
    below_floor: bool


@dataclass(frozen=True)
class Gauges:
    """Read for each file: the quarantine from the store, the queue from Exim's spool (None: unreadable)."""
    quarantine_messages: int
    quarantine_bytes: int
    top_accounts: Tuple[AccountHeld, ...] = ()
    queue_waiting: Optional[int] = None
    queue_total: Optional[int] = None
    contained: Tuple[str, ...] = ()       # accounts contained now (core/containment.py)
    room: Optional[Room] = None           # None: the filesystem could not be read


# -- the text format ----------------------------------------------------------------

def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class _Writer:
    def __init__(self):
        self.lines: List[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines += [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} {kind}"]

    def sample(self, name: str, value: float, **labels: str) -> None:
        label_text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
        self.lines.append(f"{PREFIX}{name}{{{label_text}}} {_number(value)}" if labels
                          else f"{PREFIX}{name} {_number(value)}")

    def one(self, name: str, kind: str, help_text: str, value: float) -> None:
        self.family(name, kind, help_text)
        self.sample(name, value)


def render(c: Counts, g: Gauges, version: str) -> str:
    w = _Writer()
    w.family("build_info", "gauge", "The running imunifyemaild (always 1)")
    w.sample("build_info", 1, version=version)
    w.one("daemon_start_time_seconds", "gauge", "When imunifyemaild started (unix time): counters count from it",
          c.started_at)
    w.one("messages_scanned_total", "counter",
          "Messages the filter decided (passed or held), once per message whatever its recipients", c.scanned)
    w.one("messages_passed_total", "counter", "Messages passed on to their remote recipients", c.passed)
    w.family("messages_held_total", "counter",
             "Messages held in the quarantine, by reason (one held for two reasons counts under each)")
    for reason, n in c.held.items():
        w.sample("messages_held_total", n, reason=reason)
    w.one("messages_deferred_total", "counter",
          "Verdicts of defer (Rspamd unavailable, no scan turn free, no room in the quarantine, a store error): "
          "Exim keeps the message and asks again",
          c.deferred)
    w.one("reinjections_total", "counter",
          "Held messages released through the daemon and handed back to Exim (failed ones included)",
          c.reinjections)
    w.one("reinjection_failures_total", "counter",
          "Releases through the daemon that Exim did not accept: the message stays in the quarantine",
          c.reinjection_failures)
    w.one("rspamd_unreachable_total", "counter",
          "Scans Rspamd did not answer usably (down, timed out, an error): the message waited, was held "
          "unscannable or passed unscanned, as rspamd.unavailable says",
          c.rspamd_unreachable)
    h = c.rspamd_seconds
    w.family("rspamd_answer_seconds", "histogram", "Time Rspamd took to answer a scan (answered scans only)")
    cumulative = 0
    for bound, n in zip((*h.bounds, math.inf), h.counts):
        cumulative += n
        w.sample("rspamd_answer_seconds_bucket", cumulative, le="+Inf" if math.isinf(bound) else repr(bound))
    w.sample("rspamd_answer_seconds_sum", h.sum)
    w.sample("rspamd_answer_seconds_count", cumulative)
    if g.queue_waiting is not None:
        w.one("exim_queue_waiting_for_scanner", "gauge",
              "Messages in Exim's queue that the filter has not answered yet (deferred by its router)",
              g.queue_waiting)
    if g.queue_total is not None:
        w.one("exim_queue_messages", "gauge", "Messages in Exim's queue", g.queue_total)
    w.one("quarantine_messages", "gauge", "Messages held in the quarantine", g.quarantine_messages)
    if g.room is not None:
        w.one("quarantine_free_bytes", "gauge", "Free space on the quarantine's filesystem", g.room.free_bytes)
        w.one("quarantine_floor_bytes", "gauge", "The free-space floor: below it held mail is deferred",
              g.room.floor_bytes)
        w.one("quarantine_below_floor", "gauge",
              "1 while the quarantine's filesystem is below its floor (bytes or inodes): mail that would be "
              "held waits in Exim's queue", int(g.room.below_floor))
    w.one("accounts_contained", "gauge",
          "Accounts contained now (blocked automatically until the administrator restores them)", len(g.contained))
    if g.contained:
        w.family("account_contained", "gauge", "1 for each account contained now")
        for name in g.contained:
            w.sample("account_contained", 1, account=name)
    w.one("quarantine_bytes", "gauge", "Size of the messages held in the quarantine", g.quarantine_bytes)
    if g.top_accounts:
        w.family("quarantine_account_messages", "gauge",
                 "Messages held per account, for the accounts holding the most only (metrics.top_accounts)")
        for a in g.top_accounts:
            w.sample("quarantine_account_messages", a.messages, account=a.account)
        w.family("quarantine_account_bytes", "gauge", "Size of the messages held, for the same accounts")
        for a in g.top_accounts:
            w.sample("quarantine_account_bytes", a.bytes, account=a.account)
    return "\n".join(w.lines) + "\n"


# -- reading it back (ie-config status) --------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$")


def parse(text: str) -> Dict[str, float]:
    """Sample (name and labels as written) -> value, of a file :func:`render` wrote; lines it does not
    understand are skipped (a status report never fails on them)."""
    out: Dict[str, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line.strip())
        if m is None or line.startswith("#"):
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        out[m.group(1) + (m.group(2) or "")] = int(value) if value.is_integer() else value
    return out
