"""One message through the filter: attribute → whitelist → scan → winexec →
verdict → quarantine or re-inject (DESIGN §2).

The answer for the message is returned once it is final: "250" only when
the message is durably in the quarantine or the re-inject command exited 0;
any failure is a 4xx and Exim keeps the message for a retry.
"""
import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence, TypeVar

from .. import __version__
from ..core import headers
from ..core.attribution import META_HEADER, Directory, attribute, parse_meta
from ..core.limits import describe, script_name
from ..core.message import summarize
from ..core.verdict import Verdict, before_scan, decide, filter_headers, over_limit
from ..core.winexec import find_executables
from ..reinject import ReinjectError
from ..store.activity import Activity, Reservation
from ..store.quarantine import NewMessage, Quarantine
from ..store.space import StorageFull
from ..store.settings import SettingsCache
from .reinject import Reinjector
from .retry import RetryLedger
from .rspamd import RspamdClient

log = logging.getLogger(__name__)
T = TypeVar("T")

FILTER_PREFIX = "X-ImunifyEmail-Filter-"
INLINE_WINEXEC_BYTES = 256 * 1024   # larger messages are parsed off the event loop

TEMPFAIL = "451 4.3.0 Temporary failure in the outbound filter, try again later"
NO_ROOM = "452 4.3.1 Quarantine storage is low on space, try again later"


class StoreWorker:
    """Runs every database and quarantine-file operation on one thread: SQLite
    wants a single writer, and fsync must not block the event loop."""

    def __init__(self, quarantine: Quarantine, settings: SettingsCache, activity: Activity):
        self.quarantine = quarantine
        self.settings = settings
        self.activity = activity
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def call(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class Filter:
    def __init__(self, store: StoreWorker, rspamd: RspamdClient, directory: Directory, reinjector: Reinjector,
                 deferrals: RetryLedger):
        self.store = store
        self.rspamd = rspamd
        self.directory = directory
        self.reinjector = reinjector
        self.deferrals = deferrals

    async def handle(self, mail_from: str, recipients: Sequence[str], raw: bytes) -> List[str]:
        """One LMTP reply per recipient, in order. The message is one unit (stored
        or re-injected once); only the MTA's answer may differ per recipient."""
        started = time.monotonic()
        try:
            return await self._process(mail_from, list(recipients), raw, started)
        except Exception as exc:
            if isinstance(exc, ReinjectError):
                log.error("message from <%s> deferred: re-inject failed: %s", mail_from, exc)
            else:
                log.exception("message from <%s> to %d recipient(s) deferred", mail_from, len(recipients))
            return [TEMPFAIL] * len(recipients)

    async def _reinject(self, raw: bytes, mail_from: str, recipients: List[str],
                        reservation: Optional[Reservation]):
        try:
            return await self.reinjector.send(raw, mail_from, recipients)
        except BaseException:
            if reservation is not None:   # not sent: it must not count against the limit
                await self.store.call(self.store.activity.cancel, reservation)
            raise

    async def _executables(self, raw: bytes) -> List[str]:
        if len(raw) <= INLINE_WINEXEC_BYTES:
            found = find_executables(raw)
        else:
            found = await asyncio.get_running_loop().run_in_executor(None, find_executables, raw)
        return [f"{f.location} ({f.why})" for f in found]

    async def _process(self, mail_from: str, recipients: List[str], raw: bytes, started: float) -> List[str]:
        fields = headers.Fields(raw)
        metas = fields.values(META_HEADER)
        meta = parse_meta(metas[-1] if metas else None)
        received = raw
        if metas:
            received = headers.remove(raw, names=[META_HEADER])
            fields = headers.Fields(received)
        summary = summarize(fields)
        who = attribute(mail_from, meta, summary.script, self.directory)
        snap = await self.store.call(self.store.settings.get)

        verdict: Optional[Verdict] = before_scan(who, who.account in snap.blocked_accounts, snap.whitelist)
        objects = (who.account, who.domain, who.sender_email,
                   script_name(summary.script.domain, summary.script.path))
        activity = self.store.activity
        scan, limited, reservation = None, "", None
        if verdict is None:
            scan, executables = await asyncio.gather(
                self.rspamd.scan(received, mail_from, recipients, user=who.account, ip=meta.host,
                                 queue_id=meta.exim_id),
                self._executables(received))
            verdict = decide(snap.filter, scan, executables)
            if not verdict.quarantine:
                # Checked and counted in one step: concurrent messages cannot all fit.
                fits = await self.store.call(activity.reserve, objects, len(recipients), snap.server_limits)
                if fits.allowed:
                    reservation = fits.reservation
                else:
                    verdict = over_limit(verdict)
                    limited = describe(fits.offenders, snap.server_limits)

        if verdict.quarantine:
            try:
                stored = await self.store.call(self.store.quarantine.add, NewMessage(
                    account=who.account, sender=who.sender_email, recipients=tuple(recipients),
                    subject=summary.subject, reasons=verdict.reasons, header_from=summary.header_from,
                    filter_score=verdict.score, filter_action=verdict.action, script=summary.script,
                    exim_id=meta.exim_id), received)
            except StorageFull as exc:   # Exim keeps it; handed back once there is room
                self.deferrals.defer(meta.exim_id, str(exc))
                outcome = "deferred: no room in the quarantine"
                replies = [NO_ROOM] * len(recipients)
            else:
                await self.store.call(activity.record_quarantined, objects)
                self.deferrals.room_seen()
                outcome = f"quarantined {stored.email_id}" + (f" (limit reached: {limited})" if limited else "")
                replies = [f"250 2.0.0 Ok: held in quarantine as {stored.email_id}"] * len(recipients)
        else:
            outgoing = headers.prepend(headers.remove(received, prefixes=[FILTER_PREFIX]),
                                       filter_headers(verdict, scan, __version__))
            answers = await self._reinject(outgoing, mail_from, recipients, reservation)
            replies = ["250 2.0.0 Ok: scanned and passed on" if answers[r] == "250" else answers[r]
                       for r in recipients]
            refused = [answers[r] for r in recipients if answers[r] != "250"]
            if len(refused) == len(recipients):
                if reservation is not None:
                    await self.store.call(activity.cancel, reservation)
            elif reservation is None:   # whitelisted: counted, never limited
                await self.store.call(activity.record_sent, objects, len(recipients) - len(refused))
            outcome = "passed" + (f" ({len(refused)} recipient(s) refused by the MTA: "
                                  f"{'; '.join(sorted(set(refused)))})" if refused else "")
        log.info("id=%s account=%s sender=<%s> rcpts=%d size=%d action=%s score=%s reasons=%s "
                 "findings=%s -> %s (%.0f ms)",
                 meta.exim_id or "-", who.account, who.sender_email, len(recipients), len(received),
                 verdict.action, "-" if verdict.score is None else f"{verdict.score:.2f}",
                 ",".join(verdict.reasons) or "-", ";".join(verdict.findings) or "-", outcome,
                 (time.monotonic() - started) * 1000)
        return replies
