"""What a sender object sent over the last 24 hours (its daily limit), to the minute, cheaply.

The day is the object's minute buckets: this minute and the 1439 before it (:func:`day_start`). Summing
1440 rows for each object of each message would cost the mail path more than the rest of its limit
step, so each object's sum of the window's *past* minutes is kept here, slid on as minutes pass (the
minutes that left the window taken off, those that became past added: a few rows), and only the
current minute is read each time. Past minutes change only where the caller calls
:meth:`DayCounts.forget`: a count taken back, pruning, and — for a connection that does not count mail
itself — another connection's commit (the caller watches ``PRAGMA data_version``). An object's first
look after a start (or a forget) sums its day once.
"""
import sqlite3
from typing import Dict, List, Sequence, Tuple

from ..core.window import DAY

BUCKET_SECONDS = 60   # store/activity.py's minute buckets


def bucket_of(at: float) -> int:
    return int(at) // BUCKET_SECONDS * BUCKET_SECONDS


def day_start(now: float) -> int:
    """The first minute bucket of the daily limits' window at ``now``: this minute and the 1439
    before it. A bucket counts while ``bucket > now - DAY``, as an event at ``bucket`` would."""
    return bucket_of(now) - DAY + BUCKET_SECONDS


class DayCounts:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        # object id -> (the minute when summed, messages and recipients of the window's minutes before it)
        self._past: Dict[str, Tuple[int, int, int]] = {}

    def forget(self) -> None:
        self._past.clear()

    def of(self, object_id: str, now: float) -> Tuple[int, int]:
        """(messages, recipients) the object sent in the last 24 hours up to ``now``."""
        return self.of_many((object_id,), now)[object_id]

    def of_many(self, object_ids: Sequence[str], now: float) -> Dict[str, Tuple[int, int]]:
        """The same for several objects (a message's), in one statement of primary-key ranges, one after
        another (an OR of them would make SQLite read all the object's buckets): for each object, the
        minutes that left the window since its last look (taken off) and those from then to this one
        (few rows, summed here), or on first sight its whole day summed by SQLite; this minute apart."""
        minute, start = bucket_of(now), day_start(now)
        parts: List[str] = []
        params: List[object] = []
        past: Dict[str, List[int]] = {}
        current: Dict[str, List[int]] = {}
        for oid in dict.fromkeys(object_ids):
            known = self._past.get(oid)
            current[oid] = [0, 0]
            if known is not None and known[0] <= minute <= known[0] + DAY - BUCKET_SECONDS:
                past[oid] = [known[1], known[2]]
                if known[0] < minute:   # what left the window meanwhile
                    parts.append(_GONE)
                    params += (oid, oid, day_start(known[0]), start)
                parts.append(_SINCE)
                params += (oid, oid, known[0], minute)
            else:   # first sight, a day gone by, or the clock set back: the whole day
                past[oid] = [0, 0]
                parts += (_DAY, _SINCE)
                params += (oid, start, oid, start, minute, oid, oid, minute, minute)
        for oid, bucket, messages, recipients in self.conn.execute(" UNION ALL ".join(parts), params):
            into = current[oid] if bucket == minute else past[oid]
            into[0] += messages or 0
            into[1] += recipients or 0
        out = {}
        for oid, (messages, recipients) in past.items():
            self._past[oid] = (minute, messages, recipients)
            out[oid] = (messages + current[oid][0], recipients + current[oid][1])
        return out


_GONE = "SELECT ?, bucket, -messages, -recipients FROM am_buckets WHERE object_id = ? AND bucket >= ? AND bucket < ?"
_SINCE = "SELECT ?, bucket, messages, recipients FROM am_buckets WHERE object_id = ? AND bucket >= ? AND bucket <= ?"
_DAY = ("SELECT ?, ?, SUM(messages), SUM(recipients) FROM am_buckets"   # the past minutes, as one row
        " WHERE object_id = ? AND bucket >= ? AND bucket < ?")
