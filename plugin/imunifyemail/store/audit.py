"""The audit trail: one row per state change, written by the operation that made it.

Rows are only added (and pruned past the retention period); nothing edits one (but migration 11, which
redacted the webhook URLs recorded in full before).
"""
import json
import sqlite3
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .db import transaction


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: int
    actor: str                 # root, the WHM user, the hosted user, imunifyemaild
    role: str                  # root, whm user, hosted user, daemon
    via: str                   # cli, whm, cpanel, hook, daemon
    account: Optional[str]     # the account concerned; None: the server as a whole
    action: str
    ids: Tuple[str, ...]
    detail: Dict[str, Any]
    outcome: str               # "ok", or what went wrong


def add(conn: sqlite3.Connection, at: int, actor: str, role: str, via: str, account: Optional[str], action: str,
        ids: Sequence[str], detail: Dict[str, Any], outcome: str) -> None:
    with transaction(conn):
        insert(conn, at, actor, role, via, account, action, ids, detail, outcome)


def insert(conn: sqlite3.Connection, at: int, actor: str, role: str, via: str, account: Optional[str],
           action: str, ids: Sequence[str], detail: Dict[str, Any], outcome: str) -> None:
    """Within the caller's transaction (the daemon's: in the one that made the change)."""
    conn.execute("INSERT INTO audit (at, actor, role, via, account, action, ids, detail, outcome)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (at, actor, role, via, account, action, json.dumps(list(ids)),
                  json.dumps(detail, ensure_ascii=False, sort_keys=True), outcome))


def _entry(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(row["id"], row["at"], row["actor"], row["role"], row["via"], row["account"], row["action"],
                      tuple(json.loads(row["ids"])), json.loads(row["detail"]), row["outcome"])


def entries(conn: sqlite3.Connection, since: Optional[int] = None, account: Optional[str] = None,
            limit: int = 100, offset: int = 0) -> Tuple[List[AuditEntry], int]:
    """Newest first, with how many match in all; ``account``: the entries about that account only."""
    where, args = [], []
    if since is not None:
        where.append("at >= ?")
        args.append(since)
    if account is not None:
        where.append("account = ?")
        args.append(account)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    total = conn.execute(f"SELECT count(*) FROM audit{clause}", args).fetchone()[0]
    rows = conn.execute(f"SELECT * FROM audit{clause} ORDER BY at DESC, id DESC LIMIT ? OFFSET ?",
                        [*args, limit, offset]).fetchall()
    return [_entry(r) for r in rows], total


def prune(conn: sqlite3.Connection, before: int) -> int:
    """Entries older than the retention period go (within the caller's transaction)."""
    return conn.execute("DELETE FROM audit WHERE at < ?", (before,)).rowcount
