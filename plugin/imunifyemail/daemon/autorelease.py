"""Automatic release of rate-limited mail: the daemon's periodic step (while the setting is on).

Each step, :func:`..store.waiting.pick` takes the messages due now — counted as sent and claimed
in one durable transaction on the store thread, after the mail path's own limit check — and each
is then re-injected exactly as a release is (``sendmail -oMr imunifyemail-released`` as the Exim
user, through the spawner: Exim's router lets it through unjudged), oldest first, one at a time.

What happens to the count and the claim:

* sendmail accepted it → removed from the quarantine, noted as released by ``imunifyemaild``, with
  its audit entry and its ``auto_released`` event, in one transaction. Counted once: at the pick.
* sendmail refused it (or its file is gone) → it and the rest of the step are given back, uncounted
  and unclaimed, with an audit entry saying why; they wait again (room re-checked), the steps slow
  down while it keeps failing. Nothing was sent, so nothing is counted.
* the daemon dies between the pick and the removal → the message stays claimed and counted (the
  count ages out with the window). Whether Exim took it cannot be known, so it is never sent again
  automatically: it stays in the quarantine for the administrator (a claim of a release that ended
  without an answer is left alone; ``ie-cli emails release`` takes it once the claim has expired).
"""
import asyncio
import logging
from typing import Callable, Dict, Optional, Sequence, Tuple

from ..core import view
from ..core.verdict import RATELIMIT
from ..ops.audit import DAEMON_ACTOR, insert_daemon
from ..ops.caller import DAEMON
from ..reinject import ReinjectError
from ..store import events, waiting
from ..store.db import durable
from ..store.listing import ALL_ACCOUNTS, NotFound
from ..store.waiting import Picked
from .store_worker import StoreWorker

log = logging.getLogger(__name__)

EVERY = 5.0          # seconds between steps: how late a message may leave after its window has room
MOST_PER_STEP = 50   # messages re-injected in one step (the rest wait for the next)
MAX_PAUSE = 300.0    # the longest pause between steps while re-injection keeps failing
ACTION = "auto release"

Sender = Callable[[bytes, str, Sequence[str]], None]


class AutoReleaser:
    def __init__(self, store: StoreWorker, send: Sender, every: float = EVERY):
        self.store = store
        self.send = send
        self.every = every
        self.failures = 0
        self._stop = asyncio.Event()
        self._known: Dict[str, Tuple[tuple, float]] = {}   # accounts' plans still good (store/waiting.pick)

    def pause(self) -> float:
        return min(self.every * 2 ** self.failures, MAX_PAUSE) if self.failures else self.every

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self.pause())
            except asyncio.TimeoutError:
                pass
            if self._stop.is_set():
                return
            try:
                await self.step()
            except Exception:   # a busy database now is no reason to stop releasing later
                log.exception("automatic release: the step failed")
                self.failures += 1

    def stop(self) -> None:
        """The message being re-injected is finished; the rest of the step is given back."""
        self._stop.set()

    async def step(self) -> int:
        """Release what is due now; how many left."""
        snap = await self.store.call(self.store.settings.get)
        if not snap.features.auto_release:
            return 0
        now = self.store.activity.clock()
        picked = await self.store.call(waiting.pick, self.store.activity, now, snap.server_limits, MOST_PER_STEP,
                                       self._known)
        loop = asyncio.get_running_loop()
        for n, p in enumerate(picked):
            if self._stop.is_set():
                await self.store.call(waiting.give_back, self.store.activity, picked[n:])
                return n
            try:
                await loop.run_in_executor(None, self._reinject, p)
            except (ReinjectError, OSError) as exc:
                why = getattr(exc, "strerror", None) or str(exc)
                log.error("automatic release of %s failed, it waits again: %s", p.message.email_id, why)
                await self.store.call(self._give_back, picked[n:], p, why)
                self.failures += 1
                return n
            await self.store.call(self._released, p)
        self.failures = 0
        return len(picked)

    def _reinject(self, p: Picked) -> None:
        """Off the event loop and the store thread: the quarantined file, to the mail server, as a
        release sends it (the filter's verdict fields, no sender's)."""
        m = p.message
        raw = self.store.quarantine.read(m)   # no database: safe off the store's thread
        self.send(view.judged(raw, m.filter_action, m.filter_score), m.sender, m.recipients)

    # -- on the store thread ----------------------------------------------------------------

    def _released(self, p: Picked) -> None:
        quarantine, m = self.store.quarantine, p.message
        now = int(self.store.activity.clock())

        def record() -> None:
            insert_daemon(quarantine.conn, now, ACTION, m.account, [m.email_id], {"reason": RATELIMIT})
            events.insert(quarantine.conn, now, events.AUTO_RELEASED, m.account, (RATELIMIT,), m.sender, m.script,
                          m.email_id)
        try:
            quarantine.remove([m.email_id], ALL_ACCOUNTS, released_by=(DAEMON_ACTOR, DAEMON), within=record)
        except NotFound:   # deleted meanwhile (the administrator, a full quota): it was sent all the same
            with durable(quarantine.conn):
                record()
        log.info("auto-released %s account=%s sender=<%s> rcpts=%d", m.email_id, m.account, m.sender,
                 len(m.recipients))

    def _give_back(self, picked: Sequence[Picked], failed: Picked, why: str) -> None:
        now = int(self.store.activity.clock())
        conn = self.store.quarantine.conn
        waiting.give_back(self.store.activity, picked, lambda: insert_daemon(
            conn, now, ACTION, failed.message.account, [failed.message.email_id], {"reason": RATELIMIT},
            f"failed: {why}"))


def interrupted(store: StoreWorker) -> Optional[int]:
    """At start: rate-limited messages a release claimed and never finished (the daemon stopped in
    the middle); automatic release leaves them to the administrator."""
    row = store.quarantine.conn.execute(
        f"SELECT COUNT(*) FROM messages WHERE reasons = '{RATELIMIT}' AND claimed_at IS NOT NULL").fetchone()
    return row[0] or None
