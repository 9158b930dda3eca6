"""Where each notification channel is up to (table ``notified``): the last event it has dealt with
and when it last sent something. The channels and what their rows mean are in
:mod:`imunifyemail.core.notifications`."""
import sqlite3
from typing import Dict, Iterable, Mapping

from ..core.notifications import Cursor


def load(conn: sqlite3.Connection) -> Dict[str, Cursor]:
    return {r["channel"]: Cursor(r["last_event"], r["sent_at"])
            for r in conn.execute("SELECT channel, last_event, sent_at FROM notified")}


def save(conn: sqlite3.Connection, cursors: Mapping[str, Cursor]) -> None:
    """Within the caller's transaction."""
    conn.executemany("INSERT INTO notified (channel, last_event, sent_at) VALUES (?, ?, ?)"
                     " ON CONFLICT (channel) DO UPDATE SET last_event = excluded.last_event,"
                     " sent_at = excluded.sent_at",
                     [(name, c.last_event, c.sent_at) for name, c in cursors.items()])


def forget(conn: sqlite3.Connection, channels: Iterable[str]) -> None:
    """Within the caller's transaction."""
    conn.executemany("DELETE FROM notified WHERE channel = ?", [(name,) for name in channels])
