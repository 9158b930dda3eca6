"""The checks of a message — its MIME structure, Rspamd's scan, the executables in it — taken so that
one message, or one account, costs itself and not everyone (docs/security.md).

* Before anything else the message is inspected within budgets (:func:`..core.winexec.inspect`:
  parts, nesting, size, time; its precheck is one linear pass): a message beyond them is held
  ``unscannable`` and never sent to Rspamd, which has no such limits of its own.

* At most ``concurrency`` scans run at once, and one account's at most half of them: a flood of one
  account (or a message Rspamd is slow on) waits for that account's own turn while the others' mail
  is scanned (Rspamd's workers are few: one per core).
* The wait for a turn is bounded apart from the scan's own timeout (``rspamd.timeout``): a message
  that waited ``wait`` seconds is deferred — Exim asks again — rather than failing as if Rspamd had.
* A failed scan is told apart: Rspamd is down (it does not answer a ping either), or it answers
  others but not this message. Down: the message waits (deferred, handed back when Rspamd answers)
  up to ``rspamd.max_wait`` and then passes unscanned, flagged — or passes at once with
  ``rspamd.unavailable: pass``. This message's own failure: tried once more later, then held
  ``unscannable``.
"""
import asyncio
import logging
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from ..core.verdict import Scan, Verdict, Whitelist, decide, unscannable
from ..core.winexec import inspect, precheck
from .retry import RetryLedger
from ..rspamd import RspamdClient

log = logging.getLogger(__name__)

INLINE_INSPECT_BYTES = 256 * 1024   # larger messages are inspected off the event loop
DEFER_WHEN_UNAVAILABLE = "defer"
PASS_WHEN_UNAVAILABLE = "pass"
FAILURES_REMEMBERED = 10000

BUSY = "busy"                 # no turn within the wait: try again later
UNAVAILABLE = "unavailable"   # Rspamd does not answer at all
FAILED = "failed"             # Rspamd answers, but not for this message (too slow, refused it)


@dataclass(frozen=True)
class Scanned:
    scan: Optional[Scan]
    failure: str = ""


class _Turns:
    """Counted turns, in all and per account (asyncio's Condition: created on first use, in the loop).

    A free turn is taken at once and a turn nobody waits for is given back at once: the Condition,
    its lock and a timed wait (a task) only when a message must wait — not on every message."""

    def __init__(self, total: int, per_account: int):
        self.total, self.per_account = total, per_account
        self.busy = 0
        self.by_account: Counter = Counter()
        self.waiting = 0
        self._changed: Optional[asyncio.Condition] = None

    def _cond(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def _free(self, account: str) -> bool:
        return self.busy < self.total and self.by_account[account] < self.per_account

    def _take(self, account: str) -> None:
        self.busy += 1
        self.by_account[account] += 1

    async def take(self, account: str, wait: float) -> bool:
        if not self.waiting and self._free(account):   # nobody queued ahead of it
            self._take(account)
            return True
        cond = self._cond()
        self.waiting += 1
        try:
            async with cond:
                try:
                    await asyncio.wait_for(cond.wait_for(lambda: self._free(account)), wait)
                except asyncio.TimeoutError:
                    return False
                self._take(account)
                return True
        finally:
            self.waiting -= 1

    async def give_back(self, account: str) -> None:
        self.busy -= 1
        self.by_account[account] -= 1
        if self.by_account[account] <= 0:
            del self.by_account[account]
        if self.waiting:
            cond = self._cond()
            async with cond:
                cond.notify_all()


class ScanGate:
    def __init__(self, rspamd: RspamdClient, concurrency: int, wait: float):
        self.rspamd = rspamd
        self.wait = wait
        self._turns = _Turns(concurrency, max(1, concurrency // 2))

    async def scan(self, raw: bytes, sender: str, recipients: Sequence[str], account: str, ip: str,
                   queue_id: str, user: Optional[str] = None) -> Scanned:
        """``user``: who Rspamd is told sent it (the account unless given: inbound mail names its SMTP
        AUTH user, usually none)."""
        if not await self._turns.take(account, self.wait):
            return Scanned(None, BUSY)
        try:
            scan = await self.rspamd.scan(raw, sender, recipients, user=account if user is None else user, ip=ip,
                                          queue_id=queue_id)
        finally:
            await self._turns.give_back(account)
        if scan is not None:
            return Scanned(scan)
        return Scanned(None, FAILED if await self.rspamd.ping() else UNAVAILABLE)

    async def available(self) -> bool:
        return await self.rspamd.ping()


@dataclass(frozen=True)
class Checked:
    """A verdict, or why the message must wait (``verdict`` None: Exim asks again later)."""
    verdict: Optional[Verdict]
    scan: Optional[Scan] = None
    wait_reason: str = ""


class Checks:
    def __init__(self, gate: ScanGate, deferrals: RetryLedger, clock: Callable[[], float],
                 unavailable: str = DEFER_WHEN_UNAVAILABLE, max_wait: float = 3600):
        self.gate = gate
        self.deferrals = deferrals
        self.clock = clock
        self.unavailable = unavailable
        self.max_wait = max_wait
        self._failed: "OrderedDict[str, None]" = OrderedDict()   # Exim ids Rspamd failed on once already

    async def check(self, exim_id: str, raw: bytes, sender: str, remote: Sequence[str], account: str, ip: str,
                    received_at: float, settings, whitelist: Whitelist) -> Checked:
        # Inspected first: a message beyond the budgets (a part bomb, even one inside an attached
        # message) is held without ever reaching Rspamd.
        inspection = await self._inspect(raw)
        executables = [f"{f.location} ({f.why})" for f in inspection.findings]
        if inspection.beyond:
            return Checked(unscannable(inspection.beyond, None, executables))
        scanned = await self.gate.scan(raw, sender, remote, account, ip, exim_id)
        if scanned.failure and not (executables and not settings.allow_winexec):   # an executable holds it anyway
            failed = self._failed_scan(exim_id, scanned.failure, received_at, executables)
            if failed is not None:
                return failed
        return Checked(decide(settings, scanned.scan, executables, whitelist.covers_recipients(remote)),
                       scanned.scan)

    def _failed_scan(self, exim_id: str, failure: str, received_at: float,
                     executables: Sequence[str]) -> Optional[Checked]:
        """What a failed scan means for the message; None: it passes unscanned (flagged)."""
        if failure == BUSY:
            self.deferrals.remember(exim_id)
            return Checked(None, wait_reason="no scan turn free")
        if failure == FAILED:
            if exim_id not in self._failed:
                self._failed[exim_id] = None
                while len(self._failed) > FAILURES_REMEMBERED:
                    self._failed.popitem(last=False)
                self.deferrals.remember(exim_id)
                return Checked(None, wait_reason="Rspamd could not scan it: trying once more")
            del self._failed[exim_id]
            return Checked(unscannable("Rspamd could not scan it (twice) while it scanned other mail", None,
                                       executables))
        give_up_at = received_at + self.max_wait
        if self.unavailable == DEFER_WHEN_UNAVAILABLE and self.clock() < give_up_at:
            self.deferrals.wait_for_rspamd(exim_id, give_up_at)
            return Checked(None, wait_reason="Rspamd unavailable")
        return None

    async def _inspect(self, raw: bytes):
        # precheck (one linear pass) decides a bomb on the event loop; only a large message that
        # passes it is walked off the loop
        if len(raw) <= INLINE_INSPECT_BYTES or precheck(raw):
            return inspect(raw)
        return await asyncio.get_running_loop().run_in_executor(None, inspect, raw)


def wait_turn_seconds(exim_timeout: float, rspamd_timeout: float) -> float:
    """How long a message may wait for a scan turn: what Exim's timeout leaves after the scan's own."""
    return max(0.5, exim_timeout - rspamd_timeout - 5)
