"""Would-be holds: messages observe mode passed that a sender limit would have held
(:mod:`..core.observe`), one row per limit they found full, written in the transaction that counted
the message; kept as long as the Activity Monitor's statistics."""
import sqlite3
from dataclasses import dataclass
from typing import List, Sequence, Tuple

from ..core.limits import Reached


@dataclass(frozen=True)
class Observed:
    id: int
    at: int
    exim_id: str
    account: str
    sender: str
    recipients: int
    object_id: str
    limit: Reached   # the limit that would have held it (type, name, limit, mode, window)
    used: int        # what counted against it in its window, this message included

    def as_dict(self) -> dict:
        return {"id": self.id, "time": self.at, "exim_id": self.exim_id, "account": self.account,
                "sender": self.sender, "recipients": self.recipients, "object_id": self.object_id,
                "type": self.limit.so_type, "name": self.limit.name, "limit": self.limit.limit,
                "limit_mode": self.limit.limit_mode, "window": self.limit.window, "used": self.used,
                "text": self.limit.text}


def insert(conn: sqlite3.Connection, at: int, exim_id: str, who: Tuple[str, str, str, str], recipients: int,
           reached: Sequence[Reached], used: Sequence[int], object_ids: Sequence[str]) -> None:
    """Within the caller's transaction: ``who`` is the message's (account, domain, sender email, script)."""
    conn.executemany(
        "INSERT INTO am_observed (at, exim_id, account, sender, recipients, object_id, type, name, limit_value,"
        " limit_mode, window, used) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(at, exim_id, who[0], who[2], recipients, oid, r.so_type, r.name, r.limit, r.limit_mode, r.window, u)
         for r, u, oid in zip(reached, used, object_ids)])


def since(conn: sqlite3.Connection, start: int, limit: int, offset: int = 0) -> Tuple[List[Observed], int]:
    """The would-be holds at or after ``start``, newest first (a page), and how many there are."""
    rows = conn.execute("SELECT * FROM am_observed WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ? OFFSET ?",
                        (start, limit, offset)).fetchall()
    total = conn.execute("SELECT COUNT(*) FROM am_observed WHERE at >= ?", (start,)).fetchone()[0]
    return [Observed(r["id"], r["at"], r["exim_id"], r["account"], r["sender"], r["recipients"], r["object_id"],
                     Reached(r["type"], r["name"], r["limit_value"], r["limit_mode"], r["window"]), r["used"])
            for r in rows], total


def prune(conn: sqlite3.Connection, before: int) -> int:
    """Within the caller's transaction."""
    return conn.execute("DELETE FROM am_observed WHERE at < ?", (before,)).rowcount
