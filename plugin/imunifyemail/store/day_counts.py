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
        """The same for several objects (a message's), in one statement: for each, the minutes that left
        the window since its last look (taken off), those from then to this one, and this one —
        ranges of the primary key, one after another (an OR of them would make SQLite read all the
        object's buckets)."""
        minute, start = bucket_of(now), day_start(now)
        parts: List[str] = []
        params: List[object] = []
        base: Dict[str, Tuple[int, int]] = {}
        for oid in dict.fromkeys(object_ids):
            known = self._past.get(oid)
            if known is not None and known[0] <= minute <= known[0] + DAY - BUCKET_SECONDS:
                since, base[oid] = known[0], (known[1], known[2])
                if since < minute:   # what left the window meanwhile
                    parts.append(_GONE)
                    params += (oid, oid, day_start(since), start)
            else:   # first sight, a day gone by, or the clock set back: the whole day
                since, base[oid] = start, (0, 0)
            parts.append(_SINCE)
            params += (oid, oid, since, minute)
        rows = {r[0]: r[1:] for r in self.conn.execute(_SUMS.format(" UNION ALL ".join(parts)),
                                                         (minute, minute, minute, minute, *params))}
        out = {}
        for oid, (messages, recipients) in base.items():
            past_m, past_r, now_m, now_r = rows.get(oid, (0, 0, 0, 0))
            self._past[oid] = (minute, messages + past_m, recipients + past_r)
            out[oid] = (messages + past_m + now_m, recipients + past_r + now_r)
        return out


_GONE = ("SELECT ? AS id, bucket, -messages AS m, -recipients AS r FROM am_buckets"
         " WHERE object_id = ? AND bucket >= ? AND bucket < ?")
_SINCE = ("SELECT ? AS id, bucket, messages AS m, recipients AS r FROM am_buckets"
          " WHERE object_id = ? AND bucket >= ? AND bucket <= ?")
# Per object: its past minutes' change (messages, recipients), then this minute's.
_SUMS = ("SELECT id, SUM(CASE WHEN bucket < ? THEN m ELSE 0 END), SUM(CASE WHEN bucket < ? THEN r ELSE 0 END),"
         " SUM(CASE WHEN bucket = ? THEN m ELSE 0 END), SUM(CASE WHEN bucket = ? THEN r ELSE 0 END)"
         " FROM ({}) GROUP BY id")
