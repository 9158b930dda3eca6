"""What happened to mail, for the notifications and the webhook: a message held, an account
contained, a message released by the daemon. Written in the transaction that made it happen; read
in order (``id``) by each notification channel from where it left off (table ``notified``)."""
import json
import sqlite3
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

from ..core.limits import HOURLY, Reached
from ..core.notifications import AUTO_RELEASED, CONTAINED, HELD

# the kinds of event (the core's words) are this module's vocabulary too
__all__ = ["AUTO_RELEASED", "CONTAINED", "HELD", "Event", "after", "all_after", "id_before", "insert", "last_id",
           "limits_of", "prune"]


@dataclass(frozen=True)
class Event:
    id: int
    at: int
    kind: str
    account: str
    reasons: Sequence[str]
    sender: str
    script: str
    email_id: str
    limits: Tuple[Reached, ...] = ()   # held for ratelimit: the limits it found full


def insert(conn: sqlite3.Connection, at: int, kind: str, account: str, reasons: Sequence[str] = (),
           sender: str = "", script: str = "", email_id: str = "", limits: Sequence[Reached] = ()) -> None:
    """Within the caller's transaction."""
    conn.execute("INSERT INTO events (at, kind, account, reasons, sender, script, email_id, limits)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (at, kind, account, ",".join(reasons), sender, script, email_id,
                  json.dumps([r.as_dict() for r in limits]) if limits else ""))


def _limits(text: str) -> Tuple[Reached, ...]:
    if not text:
        return ()
    return tuple(Reached(d["type"], d["name"], d["limit"], d["limit_mode"], d.get("window", HOURLY)) for d in json.loads(text))


def limits_of(conn: sqlite3.Connection, email_id: str, held_at: int) -> Tuple[Reached, ...]:
    """The limits a held message found full, as its ``held`` event recorded them (its row's
    ``received_at`` is the event's time: an indexed look-up); () when none are (left) recorded."""
    row = conn.execute("SELECT limits FROM events WHERE at = ? AND kind = ? AND email_id = ?",
                       (held_at, HELD, email_id)).fetchone()
    return _limits(row["limits"]) if row is not None else ()


def after(conn: sqlite3.Connection, last_id: int, limit: int = 10000, upto: Optional[int] = None) -> List[Event]:
    """Up to ``limit`` events after ``last_id`` (and not after ``upto``), oldest first."""
    rows = conn.execute("SELECT * FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                        (last_id, upto if upto is not None else 1 << 62, limit)).fetchall()
    return [Event(r["id"], r["at"], r["kind"], r["account"], tuple(x for x in r["reasons"].split(",") if x),
                  r["sender"], r["script"], r["email_id"], _limits(r["limits"])) for r in rows]


def all_after(conn: sqlite3.Connection, last_id: int, upto: int, page: int = 10000) -> Iterator[Event]:
    """Every event in (``last_id``, ``upto``], read a page at a time."""
    while True:
        batch = after(conn, last_id, page, upto)
        yield from batch
        if len(batch) < page:
            return
        last_id = batch[-1].id


def last_id(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]


def id_before(conn: sqlite3.Connection, at: int) -> int:
    """The id after which the events at or after ``at`` come (the last id if there are none)."""
    first = conn.execute("SELECT min(id) FROM events WHERE at >= ?", (at,)).fetchone()[0]
    return first - 1 if first is not None else last_id(conn)


def prune(conn: sqlite3.Connection, before: int) -> int:
    """Within the caller's transaction. The newest event always stays: SQLite numbers a new row
    after the highest one left, so ids keep growing and no channel's cursor is ever overtaken by
    new events that reuse old ids."""
    return conn.execute("DELETE FROM events WHERE at < ? AND id < (SELECT max(id) FROM events)",
                        (before,)).rowcount
