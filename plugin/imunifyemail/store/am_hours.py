"""Each sender object's hourly sums of its minute buckets (``am_hours``), rolled up off the mail path.

The daemon's housekeeping (``Activity.prune``) rolls up every complete hour since the last rollup in
one grouped insert, and moves the mark (``am_hours_done``: the first hour not rolled up) on. Readers
take complete hours before the mark from here and only later minutes from ``am_buckets``; without a
mark (the daemon has not rolled up yet) everything comes from the minute buckets. Minute buckets stay
the truth: nothing here is read on the mail path.
"""
import sqlite3
from typing import Optional, Sequence

from ..core.window import HOUR


def done(conn: sqlite3.Connection) -> Optional[int]:
    """The first hour (its start) not rolled up yet; None: nothing is."""
    row = conn.execute("SELECT hour FROM am_hours_done WHERE id = 1").fetchone()
    return row[0] if row is not None else None


def roll_up(conn: sqlite3.Connection, now: float) -> None:
    """Sum every complete hour since the mark (inside the caller's transaction). The first time, all
    of the minute buckets' past hours."""
    mark = done(conn)
    current = int(now) // HOUR * HOUR
    if mark is not None and mark >= current:
        return
    # WHERE before ON CONFLICT: SQLite's rule for an upsert from a SELECT. A conflict means the
    # mark was lost or the clock went back: the buckets' sums replace the row.
    conn.execute(
        f"INSERT INTO am_hours (object_id, hour, messages, recipients)"
        f" SELECT object_id, bucket / {HOUR} * {HOUR} AS h, SUM(messages), SUM(recipients) FROM am_buckets"
        f" WHERE bucket >= ? AND bucket < ? GROUP BY object_id, h"
        f" ON CONFLICT (object_id, hour) DO UPDATE SET messages = excluded.messages,"
        f" recipients = excluded.recipients",
        (mark if mark is not None else 0, current))
    conn.execute("INSERT INTO am_hours_done (id, hour) VALUES (1, ?)"
                 " ON CONFLICT (id) DO UPDATE SET hour = excluded.hour", (current,))


def prune(conn: sqlite3.Connection, cutoff: int) -> None:
    """Keep the minute buckets' retention (inside the caller's transaction, before the buckets before
    ``cutoff`` go): the hours wholly before it go, and the hour it falls in loses what its minutes
    about to go had (only those since the last prune are left), so its sums stay theirs."""
    hour = int(cutoff) // HOUR * HOUR
    conn.execute("DELETE FROM am_hours WHERE hour < ?", (hour,))
    mark = done(conn)
    if mark is None or hour >= mark or hour == cutoff:
        return
    going = "SELECT {} FROM am_buckets b WHERE b.object_id = am_hours.object_id AND b.bucket >= :h AND b.bucket < :c"
    conn.execute(f"UPDATE am_hours SET messages = messages - ({going.format('SUM(messages)')}),"
                 f" recipients = recipients - ({going.format('SUM(recipients)')})"
                 f" WHERE hour = :h AND object_id IN (SELECT object_id FROM am_buckets WHERE bucket >= :h AND bucket < :c)",
                 {"h": hour, "c": int(cutoff)})


def uncount(conn: sqlite3.Connection, object_id: str, bucket: int, recipients: int) -> None:
    """Take one message back from a rolled-up hour, as from its minute bucket (inside the caller's
    transaction; the caller has taken it from the bucket)."""
    mark = done(conn)
    if mark is not None and bucket < mark:
        conn.execute("UPDATE am_hours SET messages = messages - 1, recipients = recipients - ?"
                     " WHERE object_id = ? AND hour = ? AND messages > 0",
                     (recipients, object_id, bucket // HOUR * HOUR))


def delete_objects(conn: sqlite3.Connection, object_ids: Sequence[str]) -> None:
    conn.executemany("DELETE FROM am_hours WHERE object_id = ?", [(i,) for i in object_ids])
