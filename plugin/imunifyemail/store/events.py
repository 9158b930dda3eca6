"""What happened to mail, for the notifications and the webhook: a message held, an account
contained, a message released by the daemon. Written in the transaction that made it happen; read
in order (``id``) by each notification channel from where it left off (table ``notified``)."""
import sqlite3
from dataclasses import dataclass
from typing import List, Sequence

HELD, CONTAINED, AUTO_RELEASED = "held", "contained", "auto_released"
KINDS = (HELD, CONTAINED, AUTO_RELEASED)


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


def insert(conn: sqlite3.Connection, at: int, kind: str, account: str, reasons: Sequence[str] = (),
           sender: str = "", script: str = "", email_id: str = "") -> None:
    """Within the caller's transaction."""
    conn.execute("INSERT INTO events (at, kind, account, reasons, sender, script, email_id)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?)", (at, kind, account, ",".join(reasons), sender, script, email_id))


def after(conn: sqlite3.Connection, last_id: int, limit: int = 10000) -> List[Event]:
    rows = conn.execute("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit)).fetchall()
    return [Event(r["id"], r["at"], r["kind"], r["account"], tuple(x for x in r["reasons"].split(",") if x),
                  r["sender"], r["script"], r["email_id"]) for r in rows]


def last_id(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]


def prune(conn: sqlite3.Connection, before: int) -> int:
    """Within the caller's transaction."""
    return conn.execute("DELETE FROM events WHERE at < ?", (before,)).rowcount
