"""What a sender object sent over the last 24 hours (its daily limit), to the minute, cheaply.

The day is the object's minute buckets: this minute and the 1439 before it (:func:`day_start`). Summing
1440 rows for each object of each message would cost the mail path more than the rest of its limit
step, so each object's sum of the window's *past* minutes is kept here and slid on as minutes pass:
the minutes that became past are added (a few rows), those that leave the window are taken off — from
the buckets of the window's next minutes of leaving, read a little ahead (a bucket read costs more than
a range seek: an hour read ahead cost more than it saved). Per message, for its objects: one statement
of primary-key ranges, most of them empty.

Past minutes change only where the caller calls :meth:`DayCounts.forget`: a count taken back, and — for
a connection that does not count mail itself — another connection's commit (the caller watches
``PRAGMA data_version``). Pruning deletes only buckets older than a day (:meth:`DayCounts.prune`). An
object's first look after a start (or a forget, or a day without a look) sums its day once.
"""
import sqlite3
from dataclasses import dataclass, replace
from typing import Dict, List, Sequence, Tuple

from ..core.window import DAY

BUCKET_SECONDS = 60   # store/activity.py's minute buckets
AHEAD = 120           # how far past the window's start the buckets that leave it next are read


def bucket_of(at: float) -> int:
    return int(at) // BUCKET_SECONDS * BUCKET_SECONDS


def day_start(now: float) -> int:
    """The first minute bucket of the daily limits' window at ``now``: this minute and the 1439
    before it. A bucket counts while ``bucket > now - DAY``, as an event at ``bucket`` would."""
    return bucket_of(now) - DAY + BUCKET_SECONDS


@dataclass
class _Sums:
    """One object's day: the sums of its minutes from the window's start up to ``settled`` (exclusive),
    and the buckets that leave the window next (those from its start up to ``read_to``, oldest first).
    The last minute before the current one is not settled: a transaction that wrote it may still be
    rolled back (the store thread commits a group of messages at once), so it is read again."""
    settled: int
    messages: int
    recipients: int
    leaving: List[Tuple[int, int, int]]
    read_to: int


# Each part yields (object id, kind, bucket, messages, recipients); a statement is a UNION ALL of them
# (an OR of ranges would make SQLite read all the object's buckets).
_DAY = ("SELECT ?, 'd', 0, SUM(messages), SUM(recipients) FROM am_buckets"   # past minutes as one row
        " WHERE object_id = ? AND bucket >= ? AND bucket < ? HAVING COUNT(*) > 0")
_NEW = "SELECT ?, 'n', bucket, messages, recipients FROM am_buckets WHERE object_id = ? AND bucket >= ? AND bucket <= ?"
_AHEAD = "SELECT ?, 'a', bucket, messages, recipients FROM am_buckets WHERE object_id = ? AND bucket >= ? AND bucket < ?"
_PARTS = " UNION ALL ".join((_DAY, _NEW, _AHEAD))


class DayCounts:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self._sums: Dict[str, _Sums] = {}

    def forget(self) -> None:
        self._sums.clear()

    def prune(self, now: float, deleted_before: int) -> None:
        """Before buckets older than ``deleted_before`` are deleted: forget the objects not looked at for a
        day (their next look sums the day anyway) and any whose buckets still to leave might go unread."""
        idle = bucket_of(now) - DAY
        self._sums = {oid: s for oid, s in self._sums.items() if s.settled > idle and s.read_to >= deleted_before}

    def of(self, object_id: str, now: float) -> Tuple[int, int]:
        """(messages, recipients) the object sent in the last 24 hours up to ``now``."""
        return self.of_many((object_id,), now)[object_id]

    def of_many(self, object_ids: Sequence[str], now: float) -> Dict[str, Tuple[int, int]]:
        """The same for several objects (a message's), in one statement."""
        minute, start = bucket_of(now), day_start(now)
        settled = minute - BUCKET_SECONDS
        parts: List[str] = []
        params: List[object] = []
        sums: Dict[str, _Sums] = {}
        for oid in dict.fromkeys(object_ids):
            # Every object gets all three parts (an empty range where one is not needed): one statement
            # per number of objects, which SQLite prepares once, not one per combination.
            known = self._sums.get(oid)
            if known is not None and known.settled < minute <= known.settled + DAY - BUCKET_SECONDS:
                s = replace(known, leaving=list(known.leaving))   # kept only once the statement has run
                day, new, ahead = (0, 0), (s.settled, minute), (0, 0)
                if start > s.read_to:   # past what was read ahead: the gap, and what leaves next
                    ahead = (s.read_to, start + AHEAD)
                    s.read_to = start + AHEAD
            else:   # first sight, a day gone by, or the clock set back: the whole day
                s = _Sums(settled, 0, 0, [], start + AHEAD)
                day, new, ahead = (start, settled), (settled, minute), (start, start + AHEAD)
            parts.append(_PARTS)
            params += (oid, oid, *day, oid, oid, *new, oid, oid, *ahead)
            sums[oid] = s
        recent = {oid: [0, 0] for oid in sums}   # the minute before this one, and this one
        for oid, kind, bucket, messages, recipients in self.conn.execute(" UNION ALL ".join(parts), params):
            s = sums[oid]
            if kind == "a":
                s.leaving.append((bucket, messages, recipients))
            elif kind == "d" or bucket < settled:
                s.messages += messages or 0
                s.recipients += recipients or 0
            else:
                recent[oid][0] += messages
                recent[oid][1] += recipients
        out = {}
        for oid, s in sums.items():
            s.leaving.sort()
            gone = 0
            while gone < len(s.leaving) and s.leaving[gone][0] < start:   # left the window: taken off
                s.messages -= s.leaving[gone][1]
                s.recipients -= s.leaving[gone][2]
                gone += 1
            del s.leaving[:gone]
            s.settled = settled
            self._sums[oid] = s
            out[oid] = (s.messages + recent[oid][0], s.recipients + recent[oid][1])
        return out
