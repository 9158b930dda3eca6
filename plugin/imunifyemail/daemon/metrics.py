"""The metrics file for node_exporter's textfile collector (``metrics.textfile``), rewritten every
``metrics.interval`` seconds off the event loop; no port is opened for it.

The counters are the daemon's (:class:`imunifyemail.core.metrics.MailCounters`, counted as mail is
decided); the gauges are read for each file: the quarantine, the contained accounts and the room left
above the quarantine's floor from the store (on the store's thread),
the messages waiting for the scanner from Exim's spool (on a worker thread, at most every
``metrics.interval`` and at most a tenth of the time: a huge queue is not read over and over). The
file is replaced atomically (a temporary file in the same directory, fsynced, renamed): a reader
sees the old file or the new one, never a part. With the ``metrics`` setting off (``ie-cli settings
--metrics off``) the file is removed and not written until it is on again.
"""
import asyncio
import logging
import time
from pathlib import Path
from typing import Optional, Tuple

from .. import __version__, atomic
from ..core.metrics import Gauges, MailCounters, Room, render
from ..exim import queue
from ..exim.spool import Spool
from ..store.accounts import held_totals
from .store_worker import StoreWorker

log = logging.getLogger(__name__)

QUEUE_SHARE = 10   # the spool is read at most 1/QUEUE_SHARE of the time


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` at once; it names accounts: for its collector's group only
    (metrics.group)."""
    atomic.write_atomically(path, data, 0o640)


def remove_leftovers(path: Path) -> None:
    """Temporary files of a daemon killed in the middle of a write."""
    try:
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink()
    except OSError:
        pass


class MetricsFile:
    def __init__(self, path: Path, interval: float, top_accounts: int, counters: MailCounters,
                 store: StoreWorker, spool: Spool):
        self.path, self.interval, self.top_accounts = path, interval, top_accounts
        self.counters, self.store, self.spool = counters, store, spool
        self._queue: Tuple[Optional[int], Optional[int]] = (None, None)
        self._next_queue_read = 0.0
        self._failing = False

    async def run(self) -> None:
        try:   # made at start-up when started as root (daemon/startup.py); here when not
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass   # said by the first write that fails
        remove_leftovers(self.path)
        while True:
            try:
                await self.write_once()
            except Exception:   # a busy database now is no reason to stop writing later
                log.exception("writing the metrics file %s failed", self.path)
            await asyncio.sleep(self.interval)

    def _from_store(self):
        """(the ``metrics`` setting, and when it is on: the quarantine's totals, the contained accounts,
        its filesystem's room): one trip to the store."""
        snap = self.store.settings.get()
        if not snap.features.metrics:
            return False, None
        totals = held_totals(self.store.quarantine.conn, self.top_accounts)
        return True, (totals, tuple(sorted(snap.contained_accounts)), self._room())

    def _room(self) -> Optional[Room]:
        try:
            report = self.store.quarantine.space.report()
        except OSError as exc:
            log.debug("cannot read the quarantine's filesystem for the metrics: %s", exc)
            return None
        return Room(report.space.free_bytes, report.floor.bytes, report.below_floor)

    async def write_once(self) -> bool:
        """Write the file (True), or remove it when metrics are off (False)."""
        loop = asyncio.get_running_loop()
        on, found = await self.store.call(self._from_store)
        if not on:
            await loop.run_in_executor(None, self._remove)
            return False
        (messages, size, top), contained, room = found
        waiting, total = await self._queue_counts()
        text = render(self.counters.snapshot(), Gauges(messages, size, top, waiting, total, contained, room),
                      __version__)
        try:
            await loop.run_in_executor(None, write_atomically, self.path, text.encode("utf-8"))
        except OSError as exc:
            if not self._failing:   # said once, not every interval
                log.warning("cannot write the metrics file %s: %s", self.path, exc.strerror or exc)
            self._failing = True
            return False
        if self._failing:
            log.info("metrics file %s written again", self.path)
        self._failing = False
        return True

    async def _queue_counts(self) -> Tuple[Optional[int], Optional[int]]:
        now = time.monotonic()
        if now < self._next_queue_read:
            return self._queue
        started = time.monotonic()
        try:
            found = await asyncio.get_running_loop().run_in_executor(None, queue.summary, self.spool)
            self._queue = (found.waiting_for_scanner, found.total)
        except OSError as exc:
            log.debug("cannot read Exim's spool for the metrics: %s", exc)
            self._queue = (None, None)
        self._next_queue_read = now + max(self.interval, QUEUE_SHARE * (time.monotonic() - started))
        return self._queue

    def _remove(self) -> None:
        try:
            self.path.unlink()
            log.info("metrics are off: %s removed", self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("metrics are off but %s cannot be removed: %s", self.path, exc.strerror)
