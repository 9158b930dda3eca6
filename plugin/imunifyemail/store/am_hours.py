"""Each sender object's hourly sums of its minute buckets (``am_hours``), rolled up off the mail path.

The daemon's housekeeping (``Activity.prune``, on the store thread: the mail path waits while it
runs) rolls up the complete hours since the last rollup, and STEP_HOURS of the past not rolled up yet, so
that each run is short even on a server with 30 days of minute buckets (the first days after an
upgrade backfill STEP_HOURS per run: 30 days in 10 hours). ``am_hours_done`` says which hours are rolled up: ``[first, hour)``.
Readers take those from here and every other minute from ``am_buckets``; without a row (the daemon has
not rolled up yet) everything comes from the minute buckets. Minute buckets stay the truth: nothing
here is read on the mail path.
"""
import sqlite3
from typing import Optional, Sequence, Tuple

from ..core.window import HOUR

STEP_HOURS = 6   # at most this many hours summed forward, and as many backward, per run (a short pause)


def span(conn: sqlite3.Connection) -> Optional[Tuple[int, int]]:
    """The hours rolled up, ``(first, end)``: from ``first`` up to (not including) ``end``; None: none."""
    row = conn.execute("SELECT first, hour FROM am_hours_done WHERE id = 1").fetchone()
    return (row[0], row[1]) if row is not None else None


def done(conn: sqlite3.Connection) -> Optional[int]:
    """The first hour (its start) after the rolled-up ones; None: nothing is rolled up."""
    found = span(conn)
    return found[1] if found is not None else None


def _sum(conn: sqlite3.Connection, start: int, end: int) -> None:
    # WHERE before ON CONFLICT: SQLite's rule for an upsert from a SELECT. A conflict means the clock
    # went back: the buckets' sums replace the row.
    conn.execute(
        f"INSERT INTO am_hours (object_id, hour, messages, recipients)"
        f" SELECT object_id, bucket / {HOUR} * {HOUR} AS h, SUM(messages), SUM(recipients) FROM am_buckets"
        f" WHERE bucket >= ? AND bucket < ? GROUP BY object_id, h"
        f" ON CONFLICT (object_id, hour) DO UPDATE SET messages = excluded.messages,"
        f" recipients = excluded.recipients", (start, end))


def roll_up(conn: sqlite3.Connection, now: float) -> None:
    """Sum the complete hours since the last rollup and the hours of the past before the first one (inside
    the caller's transaction), each at most STEP_HOURS: the first run starts at the current hour."""
    current = int(now) // HOUR * HOUR
    first, end = span(conn) or (current, current)
    if end < current:   # forward: normally the one hour just complete
        step = min(current, end + STEP_HOURS * HOUR)
        _sum(conn, end, step)
        end = step
    if conn.execute("SELECT 1 FROM am_buckets WHERE bucket < ? LIMIT 1", (first,)).fetchone():   # backward
        _sum(conn, first - STEP_HOURS * HOUR, first)
        first -= STEP_HOURS * HOUR
    conn.execute("INSERT INTO am_hours_done (id, first, hour) VALUES (1, ?, ?)"
                 " ON CONFLICT (id) DO UPDATE SET first = excluded.first, hour = excluded.hour", (first, end))


def prune(conn: sqlite3.Connection, cutoff: int) -> None:
    """Keep the minute buckets' retention (inside the caller's transaction, before the buckets before
    ``cutoff`` go): the hours wholly before it go, and the hour it falls in loses what its minutes
    about to go had (only those since the last prune are left), so its sums stay theirs."""
    hour = int(cutoff) // HOUR * HOUR
    conn.execute("DELETE FROM am_hours WHERE hour < ?", (hour,))
    rolled = span(conn)
    if rolled is None or not rolled[0] <= hour < rolled[1] or hour == cutoff:
        return
    going = "SELECT {} FROM am_buckets b WHERE b.object_id = am_hours.object_id AND b.bucket >= :h AND b.bucket < :c"
    conn.execute(f"UPDATE am_hours SET messages = messages - ({going.format('SUM(messages)')}),"
                 f" recipients = recipients - ({going.format('SUM(recipients)')})"
                 f" WHERE hour = :h AND object_id IN (SELECT object_id FROM am_buckets WHERE bucket >= :h AND bucket < :c)",
                 {"h": hour, "c": int(cutoff)})


def uncount(conn: sqlite3.Connection, object_id: str, bucket: int, recipients: int) -> None:
    """Take one message back from a rolled-up hour, as from its minute bucket (inside the caller's
    transaction; the caller has taken it from the bucket)."""
    rolled = span(conn)
    if rolled is not None and rolled[0] <= bucket < rolled[1]:
        conn.execute("UPDATE am_hours SET messages = messages - 1, recipients = recipients - ?"
                     " WHERE object_id = ? AND hour = ? AND messages > 0",
                     (recipients, object_id, bucket // HOUR * HOUR))


def delete_objects(conn: sqlite3.Connection, object_ids: Sequence[str]) -> None:
    conn.executemany("DELETE FROM am_hours WHERE object_id = ?", [(i,) for i in object_ids])
