"""Containment, as stored: an account's spam and winexec holds of the last hour (the ``held`` events,
written with each held message) and its block by the daemon. The rule is :mod:`..core.containment`."""
import sqlite3
from typing import Optional

from ..core import containment as rules
from . import accounts
from .db import CONTAINMENT_HOLDS


def held_since(conn: sqlite3.Connection, account: str, since: int, at_most: int) -> int:
    """How many of the account's messages were held as spam or winexec after ``since``, counted up to
    ``at_most`` (past the threshold the exact number does not matter: the cost stays bounded)."""
    return conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM events INDEXED BY events_contained_by"
                        f" WHERE account = ? AND at > ? AND {CONTAINMENT_HOLDS} LIMIT ?)",
                        (account, since, at_most)).fetchone()[0]


def contain_if_over(conn: sqlite3.Connection, account: str, now: int, threshold: int) -> Optional[int]:
    """Inside the transaction that held one of the account's spam or winexec messages: block the
    account if that took it over ``threshold``. Returns the count that did, or None."""
    row = conn.execute("SELECT state, state_changed_at FROM accounts WHERE name = ?", (account,)).fetchone()
    if row is None or not rules.applies(account, row["state"], threshold):
        return None
    held = held_since(conn, account, rules.window_start(now, row["state_changed_at"]), threshold + 1)
    if not rules.over(threshold, held) or not accounts.contain(conn, account, now):
        return None
    return held
