"""Mail Exim deferred on our account, handed back to it as soon as we can take it.

Exim retries a deferred message at its own retry times (an hour or more
apart on cPanel), so the daemon keeps the Exim ids of what it had deferred
and asks Exim to deliver them now (``exim -M``, as the Exim user through the
spawner: Exim's admin user):

* mail deferred because the quarantine's filesystem was below its floor: once
  space has been freed (the headroom above the floor grew by ``SPACE_STEP``
  since its lowest point) or, at the latest, every ``SPACE_BACKOFF`` seconds —
  never in a loop against a disk that is still full;
* mail deferred because Rspamd did not answer (``rspamd.unavailable: defer``): as
  soon as it answers a ping again, or once the message has waited ``rspamd.max_wait``
  (then it passes unscanned, flagged);
* mail deferred for any other reason of ours (the daemon was away — found at
  start by :func:`imunifyemail.exim.queue.deferred_by_filter` —, it answered
  after the router stopped waiting, or no scan turn was free): at the next tick.

``exim -M`` silently skips a message another Exim process holds locked (its
own delivery attempt still finishing, say), so a tick after each hand-back
the ledger looks again: a message still waiting for our router (and not
deferred for space meanwhile) is handed back again, up to ``MAX_KICKS``
times. The warning about the floor is logged once a minute, not per message.
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
SPACE_STEP = 256 * 1024    # freed bytes that are worth handing space-deferred mail back for
SPACE_BACKOFF = 300.0      # and at the latest this often while there is any headroom at all

Kick = Callable[[Sequence[str]], Awaitable[None]]
StillWaiting = Callable[[Sequence[str]], Awaitable[List[str]]]
Headroom = Callable[[], Awaitable[int]]
Ready = Callable[[], Awaitable[bool]]


async def _never_ready() -> bool:
    return False


def _add(ids: "OrderedDict[str, None]", exim_id: str) -> None:
    if EXIM_ID.fullmatch(exim_id or ""):
        ids[exim_id] = None
        while len(ids) > MAX_REMEMBERED:
            ids.popitem(last=False)


class RetryLedger:
    def __init__(self, kick: Kick, headroom: Headroom, still_waiting: StillWaiting, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, rspamd_ready: Ready = _never_ready,
                 wall: Callable[[], float] = time.time):
        self.kick = kick
        self.headroom = headroom
        self.still_waiting = still_waiting
        self.rspamd_ready = rspamd_ready
        self.interval = interval
        self.clock = clock
        self.wall = wall   # the daemon's clock: when a message may stop waiting for Rspamd
        self._ids: "OrderedDict[str, None]" = OrderedDict()     # to hand back at the next tick
        self._space: "OrderedDict[str, None]" = OrderedDict()   # to hand back once space is freed
        self._rspamd: "OrderedDict[str, float]" = OrderedDict()  # to hand back once Rspamd answers (or then)
        self._kicked: Dict[str, int] = {}   # handed back, to look at again: how many times so far
        self._lowest_room = 0
        self._space_kicked_at = -SPACE_BACKOFF
        self._last_warning = -WARN_EVERY
        self._since_warning = 0
        self._kicking: Optional[asyncio.Task] = None
        self._later: Set[asyncio.Task] = set()   # strong references until each has run

    def defer(self, exim_id: str, why: str) -> None:
        """A message deferred for lack of space (``exim_id`` may be empty: not from Exim)."""
        now = self.clock()
        if not self._space:   # the first one waiting: there was no room for it just now
            self._lowest_room, self._space_kicked_at = 0, now
        _add(self._space, exim_id)
        self._since_warning += 1
        if now - self._last_warning >= WARN_EVERY:
            log.warning("%s: mail that would be held is deferred (Exim keeps it) until space is freed; "
                        "%d message(s) deferred since the last warning", why, self._since_warning)
            self._last_warning, self._since_warning = now, 0

    def wait_for_rspamd(self, exim_id: str, give_up_at: float) -> None:
        """A message deferred because Rspamd did not answer: handed back as soon as it does, or at
        ``give_up_at`` (the daemon's clock), when it may pass unscanned."""
        if EXIM_ID.fullmatch(exim_id or ""):
            self._rspamd[exim_id] = give_up_at
            while len(self._rspamd) > MAX_REMEMBERED:
                self._rspamd.popitem(last=False)

    async def _rspamd_to_hand_back(self) -> List[str]:
        if not self._rspamd:
            return []
        if await self.rspamd_ready():
            ids, self._rspamd = list(self._rspamd), OrderedDict()
            log.info("Rspamd answers again: %d message(s) deferred meanwhile are handed back", len(ids))
            return ids
        now = self.wall()
        due = [i for i, at in self._rspamd.items() if at <= now]
        for exim_id in due:
            del self._rspamd[exim_id]
        return due

    def remember(self, exim_id: str) -> None:
        """A message Exim deferred for another reason of ours (the daemon was away)."""
        _add(self._ids, exim_id)

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
        """A message was just stored: if any wait, see whether to hand them back now, not at the next tick."""
        if (self._ids or self._space) and (self._kicking is None or self._kicking.done()):
            self._kicking = asyncio.ensure_future(self.retry_now())   # kept: a strong reference

    @property
    def pending(self) -> List[str]:
        return [*self._ids, *self._space, *self._rspamd]

    async def _space_to_hand_back(self) -> List[str]:
        """The space-deferred ids, if space was freed since the lowest point (or the backoff passed)."""
        if not self._space:
            return []
        room = await self.headroom()
        lowest = min(self._lowest_room, room)
        now = self.clock()
        if room <= 0 or (room < lowest + SPACE_STEP and now - self._space_kicked_at < SPACE_BACKOFF):
            self._lowest_room = lowest
            return []
        self._lowest_room, self._space_kicked_at = room, now
        ids, self._space = list(self._space), OrderedDict()
        return ids

    async def retry_now(self) -> int:
        """Hand back what is due (see the module's description); returns how many."""
        ids = list(dict.fromkeys([*self._ids, *await self._space_to_hand_back(), *await self._rspamd_to_hand_back()]))
        self._ids = OrderedDict()
        if not ids:
            return 0
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
        """Of the messages handed back, remember again those still waiting for us (and not deferred for
        space meanwhile: those wait for room); returns how many."""
        if not self._kicked:
            return 0
        kicked, self._kicked = self._kicked, {}
        again = 0
        for exim_id in await self.still_waiting(list(kicked)):
            if exim_id in self._space or exim_id in self._rspamd:
                continue
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
