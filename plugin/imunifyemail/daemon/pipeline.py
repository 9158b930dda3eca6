"""One message's verdict, taken while Exim routes it: read the spool → attribute → whitelist → checks
(structure, Rspamd, executables: :mod:`.scanning`) → verdict → limits → hold (stored durably first) or
pass (DESIGN §2, the single pass).

Exim asks once per remote address; the message is decided once: the first question does the work,
the others share it (:mod:`.scanner`), and the verdict is recorded with the Exim id in the same
transaction that stores the message or counts it, so a retry after a crash gets the same answer
without a second copy or a second count. Anything that goes wrong is "defer": Exim keeps the
message and asks again at its next retry. A spam or winexec hold may contain its account
(:mod:`..core.containment`), in the transaction that stores it.
"""
import asyncio
import functools
import json
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

from .. import __version__
from ..core import containment, headers
from ..core.attribution import Directory, attribute
from ..core.limits import describe, reached, script_name
from ..core.message import summarize
from ..core.metrics import MailCounters
from ..core.verdict import WHITELISTED, Verdict, before_scan, filter_fields, format_score, held_for_limits
from ..exim.spool import Spool, SpoolError
from ..ops.audit import insert_daemon
from ..protocol.scan import DEFER, HOLD, PASS   # the verdicts Exim's router tells apart
from ..store import containment as contained
from ..store import events
from ..store.quarantine import NewMessage
from ..store.space import StorageFull, is_full_error
from ..store.verdicts import Remembered
from .retry import RetryLedger
from .scanning import Checks
from .store_worker import Reader, StoreWorker

log = logging.getLogger(__name__)

INLINE_READ_BYTES = 256 * 1024      # larger messages are read off the event loop


@dataclass(frozen=True)
class Answer:
    """What the router is told; ``fields`` go into ``$address_data`` (and the headers of passed mail).

    A pass whose spam was lifted because every recipient is on the recipient whitelist (``waived``)
    holds only for the recipients it was decided for (``covers``): an address a forwarder adds later
    gets a decision of its own (:meth:`Filter.decide_address`)."""
    verdict: str
    fields: Dict[str, str] = field(default_factory=dict)
    covers: FrozenSet[str] = frozenset()
    waived: bool = False

    def covered(self, rcpt: str) -> bool:
        return not self.waived or rcpt.lower() in self.covers

    def remembered(self, key: str) -> Remembered:
        """As the store keeps it (its own keys, starting with "_", never reach Exim)."""
        extra = {"_waived": "1", "_covers": json.dumps(sorted(self.covers))} if self.waived else {}
        return Remembered(key, self.verdict, {**self.fields, **extra})

    @classmethod
    def recalled(cls, known: Remembered) -> "Answer":
        fields = {k: v for k, v in known.fields.items() if not k.startswith("_")}
        waived = known.fields.get("_waived") == "1"
        covers = frozenset(json.loads(known.fields.get("_covers", "[]"))) if waived else frozenset()
        return cls(known.verdict, fields, covers, waived)


def address_key(exim_id: str, rcpt: str) -> str:
    """Where the verdict of one address decided apart from its message is remembered."""
    return f"{exim_id}/{rcpt.lower()}"


class LocalDomains:
    """cPanel's ``/etc/localdomains`` (Exim's ``+local_domains``), re-read when it changes."""

    def __init__(self, path):
        self.path = path
        self._stamp, self._domains = None, frozenset({"localhost"})

    def remote(self, recipients: Sequence[str]) -> List[str]:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp != self._stamp:
                lines = self.path.read_text("utf-8", "replace").splitlines()
                self._domains = frozenset({"localhost", *(x.strip().lower() for x in lines if x.strip())})
                self._stamp = stamp
        except OSError:
            pass   # keep what was read last
        return [r for r in recipients if r.rpartition("@")[2].lower() not in self._domains]


class Pipeline:
    def __init__(self, store: StoreWorker, reader: Reader, checks: Checks, directory: Directory, spool: Spool,
                 local_domains: LocalDomains, deferrals: RetryLedger, counters: Optional[MailCounters] = None,
                 exim_uid: Optional[int] = None):
        self.store = store
        self.reader = reader
        self.exim_uid = exim_uid   # Exim's own messages (bounces) are submitted by this uid
        self.checks = checks
        self.directory = directory
        self.spool = spool
        self.local_domains = local_domains
        self.deferrals = deferrals
        self.counters = counters if counters is not None else MailCounters(time.time())

    async def decide(self, exim_id: str, rcpt: str) -> Answer:
        """The verdict for the message (``rcpt``: the address Exim is routing, one of its remote ones)."""
        return await self._decided(exim_id, rcpt, exim_id, None)

    async def decide_address(self, exim_id: str, rcpt: str) -> Answer:
        """The verdict for one address its message's verdict did not cover (a forwarder added it after a
        pass that every recipient's whitelisting allowed): decided for that address alone."""
        return await self._decided(exim_id, rcpt, address_key(exim_id, rcpt), [rcpt])

    async def _decided(self, exim_id: str, rcpt: str, key: str, only: Optional[List[str]]) -> Answer:
        started = time.monotonic()
        try:
            known, snap = self.reader.recall(key)
            if known is not None:   # a retry: the same answer
                return Answer.recalled(known)
            answer, reasons = await self._decide(exim_id, rcpt, snap, started, key, only)
            self.counters.decided(answer.verdict, reasons)
            return answer
        except SpoolError as exc:
            log.warning("id=%s deferred: %s", exim_id, exc)
        except sqlite3.OperationalError as exc:
            if not is_full_error(exc):
                log.exception("id=%s deferred", exim_id)
            else:   # SQLITE_FULL: its filesystem has no room, as with the floor: handed back once it has
                self.deferrals.defer(exim_id, "the database's filesystem is full")
        except Exception:
            log.exception("id=%s deferred", exim_id)
        self.counters.decided(DEFER)
        return Answer(DEFER, {"reason": "filter error"})

    async def _read(self, exim_id: str):
        """The spooled message; small ones (most) read right here, big ones off the event loop."""
        if self.spool.data_size(exim_id) <= INLINE_READ_BYTES:
            return self.spool.read(exim_id)
        return await asyncio.get_running_loop().run_in_executor(None, self.spool.read, exim_id)

    async def _decide(self, exim_id: str, rcpt: str, snap, started: float, key: str,
                      only: Optional[List[str]]) -> Tuple[Answer, Tuple[str, ...]]:
        """The answer, and the reasons of the verdict (for the counters)."""
        spooled, raw = await self._read(exim_id)
        remote = only or self.local_domains.remote(spooled.undelivered) or [rcpt]
        fields = headers.Fields(raw)
        summary = summarize(fields)
        who = attribute(spooled.sender, spooled.meta(self.exim_uid), summary.script, self.directory)
        verdict: Optional[Verdict] = before_scan(who, who.account in snap.blocked_accounts, snap.whitelist,
                                                 who.account in snap.contained_accounts)
        objects = (who.account, who.domain, who.sender_email, script_name(summary.script.domain, summary.script.path))
        activity = self.store.activity
        scan, limited, observed, limits_reached = None, "", "", ()
        if verdict is None:
            checked = await self.checks.check(exim_id, raw, spooled.sender, remote, who.account, spooled.host,
                                              spooled.received_at, snap.filter, snap.whitelist)
            if checked.verdict is None:   # Exim keeps it and asks again (handed back when it can be decided)
                log.info("id=%s account=%s sender=<%s> deferred: %s", exim_id, who.account, who.sender_email,
                         checked.wait_reason)
                return Answer(DEFER, {"reason": checked.wait_reason}), ()
            verdict, scan = checked.verdict, checked.scan
        answer = Answer(PASS, filter_fields(verdict, scan, __version__), frozenset(r.lower() for r in remote),
                        bool(verdict.waived))
        remember = answer.remembered(key)
        if verdict.action == WHITELISTED:   # counted, never limited
            await self.store.grouped(activity.record_sent, objects, len(remote), remember)
        elif not verdict.quarantine:
            # Checked, counted and remembered in one step: concurrent messages cannot all fit.
            # Observe mode (core/observe.py) is decided in there too: passed, counted and recorded at once.
            fits = await self.store.grouped(activity.reserve, objects, len(remote), snap.server_limits, remember,
                                            exim_id)
            if not fits.allowed:
                verdict = held_for_limits(verdict)
                limited = describe(fits.offenders, snap.server_limits)
                limits_reached = reached(fits.offenders, objects, snap.server_limits)
            elif fits.observed:
                observed = describe(fits.observed, snap.server_limits)
        if verdict.quarantine:
            answer = await self._hold(exim_id, key, spooled.sender, remote, raw, who, summary, verdict, objects,
                                      snap.features.containment_threshold, limits_reached)
        outcome = (f"held {answer.fields['email_id']}" if answer.verdict == HOLD else answer.verdict) + \
            (f" (limit reached: {limited})" if limited else "") + \
            (f" (observe mode, would have been held: {observed})" if observed else "") + \
            (f" ({','.join(verdict.waived)} waived: every recipient whitelisted)" if verdict.waived else "")
        log.info("id=%s account=%s sender=<%s> rcpts=%d size=%d action=%s score=%s reasons=%s findings=%s"
                 " -> %s (%.0f ms)", exim_id, who.account, who.sender_email, len(remote), len(raw), verdict.action,
                 "-" if verdict.score is None else format_score(verdict.score), ",".join(verdict.reasons) or "-",
                 ";".join(verdict.findings) or "-", outcome, (time.monotonic() - started) * 1000)
        return answer, verdict.reasons

    async def _hold(self, exim_id, key, sender, remote, raw, who, summary, verdict, objects, threshold,
                    limits_reached) -> Answer:
        """Stored durably (and remembered) first; only then is the answer "hold"."""
        new = NewMessage(account=who.account, sender=who.sender_email, recipients=tuple(remote),
                         subject=summary.subject, reasons=verdict.reasons, header_from=summary.header_from,
                         filter_score=verdict.score, filter_action=verdict.action, script=summary.script,
                         exim_id=exim_id, limits=limits_reached)
        counted = functools.partial(self.store.activity.count_quarantined, objects)
        contained_now: List[int] = []
        if containment.counts(verdict.reasons):
            counted = functools.partial(_counted_then_contain, self.store, counted, new, objects[3], threshold,
                                        contained_now)
        try:
            stored = await self.store.hold(new, raw, Remembered(key, HOLD, {"reasons": ",".join(verdict.reasons)}),
                                           counted)
        except StorageFull as exc:   # Exim keeps it; handed back once there is room
            self.deferrals.defer(exim_id, str(exc))
            return Answer(DEFER, {"reason": "no room in the quarantine"})
        self.deferrals.room_seen()
        if contained_now:
            log.warning("account %s contained: %d messages held as spam or winexec within an hour (threshold %d);"
                        " its mail is held (but whitelisted senders') until the administrator restores it",
                        who.account, contained_now[0], threshold)
        return Answer(HOLD, {"email_id": stored.email_id, "reasons": ",".join(verdict.reasons)})


def _counted_then_contain(store: StoreWorker, counted: Callable[[], None], new: NewMessage, script: str,
                          threshold: int, contained_now: List[int]) -> None:
    """In the transaction that holds a spam or winexec message: count it, and contain its account if
    that took it over the threshold (blocked, with the daemon's audit entry and a ``contained`` event)."""
    counted()
    conn, now = store.quarantine.conn, int(store.quarantine.clock())
    held = contained.contain_if_over(conn, new.account, now, threshold)
    if held is None:
        return
    insert_daemon(conn, now, "contain", new.account, (), {"threshold": threshold, "held_last_hour": held})
    events.insert(conn, now, events.CONTAINED, new.account, new.reasons, new.sender, script)
    contained_now.append(held)
