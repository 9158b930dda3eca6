"""When held rate-limited mail may leave on its own (automatic release): a schedule, no I/O.

A message held only for ``ratelimit`` waits in its account's queue, oldest first. It may leave once
every *limited* sender object it belongs to has room for it in each of its windows — the last 60
minutes, and the last 24 hours where a daily limit applies (the rule of :func:`.limits.offenders`:
what the object sent in the window plus this message's weight stays within its limit), and never before an older waiting message that shares a limited object with it:
no overtaking, so a big message is not starved by small ones behind it. A message heavier than one
of its limits can never leave on its own; it is left out (and blocks nobody), as is one with more
recipients than the server's cap on one message (it would be over it again). A message whose
sender (address or domain) has been whitelisted since is under no limit, as it would be on the mail
path: it may leave at once (:func:`exempt`), still counted.

:func:`schedule` simulates exactly that, message by message in queue order, counting what the ones
before it will have sent. The daemon releases what is due now; the lists show the rest as "expected
to leave" — a forecast, since mail sent meanwhile takes room too.
"""
import bisect
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from . import limits
from .verdict import RATELIMIT, Whitelist

WINDOW = limits.WINDOW_SECONDS


def waits_for_room(reasons: Sequence[str]) -> bool:
    """Held only because a sender limit was reached (what automatic release may send)."""
    return tuple(reasons) == (RATELIMIT,)


def exempt(whitelist: Whitelist, sender: str, domain: str) -> bool:
    """No limit applies to the message any more: its sender or the sender's domain is whitelisted
    (the held row keeps no authenticated user, so that whitelist cannot be looked up here)."""
    return whitelist.covers(limits.SENDER_EMAIL, sender) or whitelist.covers(limits.DOMAIN, domain)


@dataclass(frozen=True)
class Window:
    """One limit of a sender object: its effective limit (> 0), what the object sent in the window, as
    (time, weight) pairs — the weight by the limit mode (1, or the recipients) — and the window's length."""
    limit: int
    sent: Tuple[Tuple[float, int], ...]
    seconds: int = WINDOW


@dataclass(frozen=True)
class Queued:
    """A waiting message: its key, the ids of its sender objects, its remote recipients, and whether
    it is over the server's cap on recipients (:func:`.limits.over_cap`: it never leaves on its own)."""
    key: str
    objects: Tuple[str, ...]
    recipients: int
    capped: bool = False


class _Object:
    """One limited object during the simulation; the times asked about it never go back, so what
    left its window is dropped for good."""

    def __init__(self, window: Window):
        self.limit = window.limit
        self.seconds = window.seconds
        self.sent: List[Tuple[float, int]] = sorted(window.sent)
        self.head = 0
        self.total = sum(w for _, w in self.sent)
        self.ready = float("-inf")   # when the last message scheduled on it leaves

    def _expire(self, t: float) -> None:
        while self.head < len(self.sent) and self.sent[self.head][0] <= t - self.seconds:
            self.total -= self.sent[self.head][1]
            self.head += 1

    def room_from(self, t: float, cost: int) -> float:
        """The earliest time at or after ``t`` with room for ``cost`` (cost <= limit). What was sent
        at ``at`` counts while ``at > now - seconds``, so it stops counting at ``at + seconds``."""
        self._expire(t)
        total, i = self.total, self.head
        while total + cost > self.limit:
            at, w = self.sent[i]
            total -= w
            t = max(t, at + self.seconds)
            i += 1
        return t

    def take(self, t: float, cost: int) -> None:
        bisect.insort(self.sent, (t, cost), lo=self.head)
        self.total += cost
        self.ready = t


def schedule(now: float, queue: Sequence[Queued], windows: Mapping[str, Sequence[Window]],
             limit_mode: int) -> Dict[str, Optional[float]]:
    """For each queued message (in queue order, oldest first), when it may leave: ``now`` or later,
    or None when it never can (heavier than a limit, over the cap). ``windows``: each limited object's
    limits (hourly, daily); objects absent from it are unlimited."""
    objects = {oid: [_Object(w) for w in ws if w.limit > 0] for oid, ws in windows.items()}
    out: Dict[str, Optional[float]] = {}
    for q in queue:
        cost = limits.weight(limit_mode, q.recipients)
        mine = [w for o in dict.fromkeys(q.objects) for w in objects.get(o, ())]
        if q.capped or any(cost > o.limit for o in mine):
            out[q.key] = None
            continue
        t = max([now, *(o.ready for o in mine)])
        for o in mine:   # each object's room only grows with time: the latest of them is the answer
            t = max(t, o.room_from(t, cost))
        for o in mine:
            o.take(t, cost)
        out[q.key] = t
    return out


def due(now: float, when: Optional[float]) -> bool:
    return when is not None and when <= now
