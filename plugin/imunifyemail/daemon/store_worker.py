"""The one thread that does every database and quarantine-file operation of the daemon: SQLite
wants a single writer, and fsync must not block the event loop.

Jobs queued while the thread works are taken together: one wake-up of the thread and one hand-back
to the event loop for all of them, however many messages are in flight.

* The mail path's counting (:meth:`StoreWorker.grouped`: a passed message's verdict and counts,
  ``synchronous=NORMAL``) is group-committed: consecutive grouped jobs share one transaction, each in
  a savepoint of its own (:class:`..store.db.transaction` nests), so one job's failure undoes only its
  own work and a failed commit fails every job of the group (each message defers; nothing is
  half-applied).
* Holds queued together (:meth:`StoreWorker.hold`) are stored together
  (:meth:`..store.quarantine.Quarantine.add_many`): each file fsynced, their directories once, their
  rows in one durable commit — a spam wave from one account is what fills the queue with them.

No answer is handed back before the commit it depends on, as before.
"""
import asyncio
import logging
import queue
import sqlite3
import threading
from typing import Callable, List, NamedTuple, Optional, Tuple, TypeVar

from ..store import verdicts
from ..store.activity import Activity
from ..store.db import Clock, system_clock, transaction
from ..store.listing import StoredMessage
from ..store.quarantine import NewMessage, Quarantine
from ..store.settings import SettingsCache, Snapshot

log = logging.getLogger(__name__)
T = TypeVar("T")


READER_BUSY_MS = 1000   # a read that cannot start within this defers its message (it never blocks for long)


class Reader:
    """What the mail path reads before it decides — the verdict remembered for the message, the
    settings — on a read-only connection of the event loop's own: a WAL reader does not wait for the
    store thread's writes, so this costs no trip to the store thread (one of the two a passed message
    made). Its settings are re-read when the stamp moves (store/settings.py)."""

    def __init__(self, conn: sqlite3.Connection, spam_actions, clock: Clock = system_clock):
        self.conn = conn
        conn.execute(f"PRAGMA busy_timeout = {READER_BUSY_MS}")
        self.settings = SettingsCache(conn, spam_actions, clock)

    def recall(self, key: str) -> Tuple[Optional[verdicts.Remembered], Snapshot]:
        return verdicts.recall(self.conn, key), self.settings.get()

    def close(self) -> None:
        self.conn.close()


ALONE, GROUPED, HOLD = "alone", "grouped", "hold"   # how a job may share the store thread's work


class _Job(NamedTuple):
    fn: Optional[Callable]
    args: Tuple
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    kind: str


_Done = Tuple[asyncio.Future, object, Optional[BaseException]]
_Outcome = Tuple[_Job, object, Optional[BaseException]]   # a job, its result, or what it raised


class StoreWorker:
    def __init__(self, quarantine: Quarantine, settings: SettingsCache, activity: Activity):
        self.quarantine = quarantine
        self.settings = settings
        self.activity = activity
        self._jobs: "queue.SimpleQueue[Optional[_Job]]" = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="store", daemon=True)
        self._thread.start()

    async def call(self, fn: Callable[..., T], *args) -> T:
        """``fn(*args)`` on the store thread, alone."""
        return await self._submit(fn, args, ALONE)

    async def grouped(self, fn: Callable[..., T], *args) -> T:
        """``fn(*args)`` on the store thread, in a transaction it may share with the grouped jobs queued
        next to it (its own ``transaction`` becomes a savepoint). Only for work that needs no fsync."""
        return await self._submit(fn, args, GROUPED)

    async def hold(self, msg: NewMessage, raw: bytes, remember: Optional[verdicts.Remembered],
                   within: Optional[Callable[[], None]]) -> StoredMessage:
        """:meth:`..store.quarantine.Quarantine.add`, stored with the holds queued next to it."""
        return await self._submit(None, (msg, raw, remember, within), HOLD)

    def _submit(self, fn: Optional[Callable], args: Tuple, kind: str) -> "asyncio.Future":
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put(_Job(fn, args, future, loop, kind))
        return future

    def shutdown(self) -> None:
        """Finish what is queued, then stop the thread."""
        self._jobs.put(None)
        self._thread.join()

    # -- the store thread --------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: List[_Job] = []
            job = self._jobs.get()
            while job is not None:
                batch.append(job)
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
            else:
                stopping = True
            self._hand_back(self._work(batch))

    def _work(self, batch: List[_Job]) -> List[_Outcome]:
        out: List[_Outcome] = []
        n = 0
        while n < len(batch):
            kind = batch[n].kind
            end = n + 1
            while kind != ALONE and end < len(batch) and batch[end].kind == kind:
                end += 1
            if kind == ALONE:
                out.append(_one(batch[n]))
            elif kind == GROUPED:
                out += self._group(batch[n:end])
            else:
                out += self._holds(batch[n:end])
            n = end
        return out

    def _holds(self, jobs: List[_Job]) -> List[_Outcome]:
        try:
            outcomes = self.quarantine.add_many([job.args for job in jobs])
        except Exception as exc:   # (add_many gives each its own outcome; this is a bug's way out)
            return [(job, None, exc) for job in jobs]
        return [(job, None, o) if isinstance(o, Exception) else (job, o, None) for job, o in zip(jobs, outcomes)]

    def _group(self, jobs: List[_Job]) -> List[_Outcome]:
        if len(jobs) == 1:
            return [_one(jobs[0])]
        done = []
        try:
            with transaction(self.activity.conn):
                for job in jobs:
                    done.append(_one(job))   # a job that fails rolled back its own savepoint
        except Exception as exc:   # the commit failed (a full disk): none of them happened
            log.warning("a group of %d mail-path writes was rolled back: %s", len(jobs), exc)
            return [(job, None, exc) for job in jobs]
        return done

    @staticmethod
    def _hand_back(done: List[_Outcome]) -> None:
        by_loop = {}
        for job, result, exc in done:
            by_loop.setdefault(job.loop, []).append((job.future, result, exc))
        for loop, results in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, results)
            except RuntimeError:   # that loop is closed: nobody waits for these any more
                pass


def _one(job: _Job) -> _Outcome:
    try:
        return job, job.fn(*job.args), None
    except Exception as exc:   # handed to the awaiting coroutine, which decides
        return job, None, exc


def _settle(results: List[_Done]) -> None:
    for future, result, exc in results:
        if future.cancelled():
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)
