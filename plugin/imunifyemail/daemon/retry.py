"""Mail Exim deferred on our account, handed back to it as soon as we can take it.

Exim retries a deferred message at its own retry times (an hour or more
apart on cPanel). When the daemon defers a message only because the
quarantine's filesystem is below its floor, it keeps the message's Exim id;
as soon as the filesystem is above the floor again it asks Exim to deliver
those messages now (``exim -M``, as the Exim user through the spawner:
Exim's admin user). At start it does the same for what Exim deferred while
the daemon was away (:func:`imunifyemail.exim.queue.deferred_by_filter`). The warning about the floor is
logged once a minute, not once per message.

``exim -M`` silently skips a message another Exim process holds locked (its
own delivery attempt still finishing, say), so a tick after each hand-back
the ledger looks again: a message still waiting for our router is handed
back again, up to ``MAX_KICKS`` times.
"""
import asyncio
import logging
import time
from collections import OrderedDict
from typing import Awaitable, Callable, Dict, List, Optional, Sequence, Set

from ..core.attribution import EXIM_ID

log = logging.getLogger(__name__)

MAX_REMEMBERED = 10000     # beyond that Exim's own retry times take over
BATCH = 50                 # ids per exim -M run
WARN_EVERY = 60.0
MAX_KICKS = 3              # hand-backs per message before Exim's own retry times take over

Kick = Callable[[Sequence[str]], Awaitable[None]]
StillWaiting = Callable[[Sequence[str]], Awaitable[List[str]]]


class RetryLedger:
    def __init__(self, kick: Kick, has_room: Callable[[], Awaitable[bool]], still_waiting: StillWaiting,
                 interval: float = 10.0):
        self.kick = kick
        self.has_room = has_room
        self.still_waiting = still_waiting
        self.interval = interval
        self._ids: "OrderedDict[str, None]" = OrderedDict()
        self._kicked: Dict[str, int] = {}   # handed back, to look at again: how many times so far
        self._last_warning = -WARN_EVERY
        self._since_warning = 0
        self._kicking: Optional[asyncio.Task] = None
        self._later: Set[asyncio.Task] = set()   # strong references until each has run

    def defer(self, exim_id: str, why: str) -> None:
        """A message deferred for lack of space (``exim_id`` may be empty: not from Exim)."""
        self.remember(exim_id)
        self._since_warning += 1
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY:
            log.warning("%s: mail that would be held is deferred (Exim keeps it) until space is freed; "
                        "%d message(s) deferred since the last warning", why, self._since_warning)
            self._last_warning, self._since_warning = now, 0

    def remember(self, exim_id: str) -> None:
        """A message Exim deferred for another reason of ours (the daemon was away)."""
        if EXIM_ID.fullmatch(exim_id or ""):
            self._ids[exim_id] = None
            while len(self._ids) > MAX_REMEMBERED:
                self._ids.popitem(last=False)

    def late(self, exim_id: str, delay: float = 1.0) -> None:
        """We decided after Exim stopped waiting (it deferred the address): ask for the message again
        as soon as its delivery attempt has let go of it, rather than at Exim's next retry time."""
        self.remember(exim_id)

        async def soon() -> None:
            await asyncio.sleep(delay)
            await self.retry_now()
        task = asyncio.ensure_future(soon())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    def room_seen(self) -> None:
        """A message was just stored: if any wait, hand them back now, not at the next tick."""
        if self._ids and (self._kicking is None or self._kicking.done()):
            self._kicking = asyncio.ensure_future(self.retry_now())   # kept: a strong reference

    @property
    def pending(self) -> List[str]:
        return list(self._ids)

    async def retry_now(self) -> int:
        """If there is room, hand every remembered message back to Exim; returns how many."""
        if not self._ids or not await self.has_room():
            return 0
        ids, self._ids = list(self._ids), OrderedDict()
        for start in range(0, len(ids), BATCH):
            batch = ids[start:start + BATCH]
            try:
                await self.kick(batch)
            except Exception as exc:   # Exim's own retry times still apply
                log.error("could not ask Exim to retry %d deferred message(s): %s", len(batch), exc)
        for exim_id in ids:
            self._kicked[exim_id] = self._kicked.get(exim_id, 0) + 1
        while len(self._kicked) > MAX_REMEMBERED:
            del self._kicked[next(iter(self._kicked))]
        log.info("asked Exim to deliver %d deferred message(s) now", len(ids))
        return len(ids)

    async def look_again(self) -> int:
        """Of the messages handed back, remember again those still waiting for us; returns how many."""
        if not self._kicked:
            return 0
        kicked, self._kicked = self._kicked, {}
        again = 0
        for exim_id in await self.still_waiting(list(kicked)):
            if kicked[exim_id] >= MAX_KICKS:
                log.warning("%s: still deferred after %d hand-backs to Exim; left to Exim's retry times",
                            exim_id, kicked[exim_id])
                continue
            self._kicked[exim_id] = kicked[exim_id]
            self.remember(exim_id)
            again += 1
        return again

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.look_again()
                await self.retry_now()
            except Exception:
                log.exception("retrying deferred mail failed")


class DirectKick:
    """``<sendmail> -M ids`` run by the daemon itself (no spawner: not started as root)."""

    def __init__(self, sendmail: str):
        self.sendmail = sendmail
        self._running: Set[asyncio.Task] = set()   # strong references until each run ends

    async def __call__(self, ids: Sequence[str]) -> None:
        proc = await asyncio.create_subprocess_exec(
            self.sendmail, "-M", *ids, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        task = asyncio.ensure_future(proc.wait())   # the delivery may take a while: reap it later
        self._running.add(task)
        task.add_done_callback(self._running.discard)
