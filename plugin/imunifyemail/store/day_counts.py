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
from typing import Dict, Tuple

from ..core.window import DAY

BUCKET_SECONDS = 60   # store/activity.py's minute buckets


def bucket_of(at: float) -> int:
    return int(at) // BUCKET_SECONDS * BUCKET_SECONDS


def day_start(now: float) -> int:
    """The first minute bucket of the daily limits' window at ``now``: this minute and the 1439
    before it. A bucket counts while ``bucket > now - DAY``, as an event at ``bucket`` would."""
    return bucket_of(now) - DAY + BUCKET_SECONDS


# One statement per object and minute passed: the minutes that left the window (negative) and those from
# the last look to this one, ranges of the primary key (an OR of them would make SQLite read all the
# object's buckets); this minute's kept apart. Columns: past messages, past recipients, this minute's.
_SLID = ("SELECT COALESCE(SUM(CASE WHEN bucket < :minute THEN m END), 0),"
         " COALESCE(SUM(CASE WHEN bucket < :minute THEN r END), 0),"
         " COALESCE(SUM(CASE WHEN bucket = :minute THEN m END), 0),"
         " COALESCE(SUM(CASE WHEN bucket = :minute THEN r END), 0) FROM ("
         "SELECT bucket, -messages AS m, -recipients AS r FROM am_buckets"
         " WHERE object_id = :id AND bucket >= :gone_from AND bucket < :gone_to"
         " UNION ALL SELECT bucket, messages, recipients FROM am_buckets"
         " WHERE object_id = :id AND bucket >= :since AND bucket <= :minute)")


class DayCounts:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        # object id -> (the minute when summed, messages and recipients of the window's minutes before it)
        self._past: Dict[str, Tuple[int, int, int]] = {}

    def forget(self) -> None:
        self._past.clear()

    def of(self, object_id: str, now: float) -> Tuple[int, int]:
        """(messages, recipients) the object sent in the last 24 hours up to ``now``."""
        minute = bucket_of(now)
        known = self._past.get(object_id)
        if known is not None and known[0] == minute:
            current = self.conn.execute("SELECT messages, recipients FROM am_buckets WHERE object_id = ?"
                                        " AND bucket = ?", (object_id, minute)).fetchone() or (0, 0)
            return known[1] + current[0], known[2] + current[1]
        start = day_start(now)
        if known is not None and known[0] < minute <= known[0] + DAY - BUCKET_SECONDS:
            # the window's start moved from known's to now's: what left it goes, what became past comes
            since, past_messages, past_recipients = known
            gone_from = day_start(since)
        else:   # first sight, a day gone by, or the clock set back: the whole day
            since, past_messages, past_recipients = start, 0, 0
            gone_from = start   # nothing gone
        moved = self.conn.execute(_SLID, {"id": object_id, "minute": minute, "since": since, "gone_from": gone_from,
                                          "gone_to": start}).fetchone()
        self._past[object_id] = (minute, past_messages + moved[0], past_recipients + moved[1])
        return past_messages + moved[0] + moved[2], past_recipients + moved[1] + moved[3]
