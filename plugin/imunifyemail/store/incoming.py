"""The incoming filter's store: each account's switch, and the daily spam/ham counts of its mail.

A recipient's copy is counted once however often Exim asks about it (a retry after a timeout or a
crash): its routing is remembered under its own key in the verdicts table, in the transaction that
counts it (kept as long as Exim may keep a message).
"""
import json
import sqlite3
import time
from typing import List, Optional

from ..core.incoming import HAM, SPAM
from .db import transaction
from .verdicts import KEEP_SECONDS


def day_of(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def account_enabled(conn: sqlite3.Connection, account: str) -> bool:
    row = conn.execute("SELECT enabled FROM incoming_accounts WHERE account = ?", (account,)).fetchone()
    return row is None or bool(row[0])


def set_account(conn: sqlite3.Connection, account: str, enabled: bool) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO incoming_accounts (account, enabled) VALUES (?, ?)"
                     " ON CONFLICT (account) DO UPDATE SET enabled = excluded.enabled", (account, int(enabled)))


def accounts_off(conn: sqlite3.Connection) -> List[str]:
    return [r[0] for r in conn.execute("SELECT account FROM incoming_accounts WHERE enabled = 0 ORDER BY account")]


def recall(conn: sqlite3.Connection, key: str) -> Optional[dict]:
    row = conn.execute("SELECT fields FROM incoming_routed WHERE key = ?", (key,)).fetchone()
    return json.loads(row[0]) if row else None


def record(conn: sqlite3.Connection, key: str, fields: dict, account: Optional[str], counted: Optional[str],
           now: float) -> bool:
    """Remember one copy's routing and count it; False (nothing counted) when it was known already."""
    with transaction(conn):
        cur = conn.execute("INSERT OR IGNORE INTO incoming_routed (key, fields, at) VALUES (?, ?, ?)",
                           (key, json.dumps(fields), int(now)))
        if cur.rowcount != 1:
            return False
        conn.execute("DELETE FROM incoming_routed WHERE at < ?", (int(now) - KEEP_SECONDS,))
        if account is not None and counted in (SPAM, HAM):
            conn.execute(f"INSERT INTO incoming_daily (account, day, {counted}) VALUES (?, ?, 1)"
                         f" ON CONFLICT (account, day) DO UPDATE SET {counted} = {counted} + 1",
                         (account, day_of(now)))
    return True


def daily(conn: sqlite3.Connection, since_day: str, account: Optional[str] = None) -> List[dict]:
    """Rows ``{account, day, spam, ham}`` from ``since_day`` on, newest day first."""
    sql = "SELECT account, day, spam, ham FROM incoming_daily WHERE day >= ?"
    args: list = [since_day]
    if account is not None:
        sql += " AND account = ?"
        args.append(account)
    rows = conn.execute(sql + " ORDER BY day DESC, account", args).fetchall()
    return [{"account": r[0], "day": r[1], "spam": r[2], "ham": r[3]} for r in rows]
