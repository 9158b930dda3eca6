"""Verdicts remembered by Exim message id: the same answer for every recipient and every retry.

A verdict is written in the very transaction that stores the held message or
counts the passed one, so after a crash between that commit and the answer,
Exim's retry finds it: no second copy, no second count. Kept for as long as
Exim may keep a message in its queue.
"""
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Dict, Optional

KEEP_SECONDS = 10 * 86400   # beyond Exim's own 4 days of retries and 8 days of frozen mail


@dataclass(frozen=True)
class Remembered:
    exim_id: str
    verdict: str
    fields: Dict[str, str] = field(default_factory=dict)


def remember(conn: sqlite3.Connection, r: Remembered, now: int, **more: str) -> None:
    """Inside the caller's transaction; the first verdict of a message stays."""
    if not r.exim_id:
        return
    conn.execute("INSERT OR IGNORE INTO verdicts (exim_id, verdict, fields, at) VALUES (?, ?, ?, ?)",
                 (r.exim_id, r.verdict, json.dumps({**r.fields, **more}), now))


def recall(conn: sqlite3.Connection, exim_id: str) -> Optional[Remembered]:
    row = conn.execute("SELECT verdict, fields FROM verdicts WHERE exim_id = ?", (exim_id,)).fetchone()
    return Remembered(exim_id, row[0], json.loads(row[1])) if row else None


def prune(conn: sqlite3.Connection, now: int) -> None:
    conn.execute("DELETE FROM verdicts WHERE at < ?", (now - KEEP_SECONDS,))
