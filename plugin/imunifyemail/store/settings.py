"""Runtime settings kept in the database: whitelist, filter settings, the server's sender limits and
the server's features.

Changed by ``ie-cli`` and the web UI, read by the daemon for every message. :class:`SettingsCache`
re-reads them only when the settings stamp has moved since the last read (triggers move it with every
change to the whitelist, the settings or an account's state, in the writer's own transaction: store/db.py,
migration 12), so a change applies to the very next message and an unchanged one costs one indexed read
— also on a connection whose process commits all the time (the daemon's counting), which
``PRAGMA data_version`` would take for a change every time.
"""
import json
import sqlite3
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

from ..core import features
from ..core.features import Features
from ..core.limits import ServerLimits
from ..core.verdict import FILTER_SETTINGS, FilterSettings, Whitelist
from .accounts import blocked_accounts, contained_accounts
from .db import transaction

def whitelist_entries(conn: sqlite3.Connection, list_name: str) -> Dict[str, List[str]]:
    rows = conn.execute("SELECT kind, value FROM whitelist WHERE list = ? ORDER BY rowid",
                        (list_name,)).fetchall()
    return {"emails": [r["value"] for r in rows if r["kind"] == "email"],
            "domains": [r["value"] for r in rows if r["kind"] == "domain"]}


def whitelist_add(conn: sqlite3.Connection, list_name: str, entries: Sequence[Tuple[str, str]]) -> None:
    """Add (kind, value) pairs, all or nothing; already present entries are kept."""
    with transaction(conn):
        conn.executemany("INSERT OR IGNORE INTO whitelist (list, kind, value) VALUES (?, ?, ?)",
                         [(list_name, kind, value) for kind, value in entries])


def whitelist_remove(conn: sqlite3.Connection, list_name: str, values: Sequence[str]) -> List[str]:
    """Remove values, all or nothing; returns the values that were not listed
    (and then removes none)."""
    with transaction(conn):
        missing = [v for v in values if conn.execute(
            "SELECT 1 FROM whitelist WHERE list = ? AND value = ?", (list_name, v)).fetchone() is None]
        if missing:
            return missing
        conn.executemany("DELETE FROM whitelist WHERE list = ? AND value = ?",
                         [(list_name, v) for v in values])
    return []


def load_server_limits(conn: sqlite3.Connection) -> ServerLimits:
    row = conn.execute("SELECT value FROM settings WHERE key = 'am_server'").fetchone()
    stored = json.loads(row["value"]) if row else {}
    return ServerLimits(**{k: int(v) for k, v in stored.items() if k in ServerLimits.__dataclass_fields__})


def save_server_limits(conn: sqlite3.Connection, changes: dict) -> ServerLimits:
    """Store the given values (already checked) over the current ones."""
    with transaction(conn):
        current = load_server_limits(conn).as_dict()
        current.update(changes)
        conn.execute("INSERT INTO settings (key, value) VALUES ('am_server', ?)"
                     " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (json.dumps(current),))
    return load_server_limits(conn)


def load_whitelist(conn: sqlite3.Connection) -> Whitelist:
    rows = conn.execute("SELECT list, kind, value FROM whitelist").fetchall()

    def values(list_name: str, kind: str) -> frozenset:
        return frozenset(r["value"] for r in rows if r["list"] == list_name and r["kind"] == kind)
    return Whitelist(
        sender_emails=values("sender", "email"),
        sender_domains=values("sender", "domain"),
        authusers=frozenset(r["value"] for r in rows if r["list"] == "authuser"),
        recipient_emails=values("recipient", "email"),
        recipient_domains=values("recipient", "domain"),
    )


def load_filter_settings(conn: sqlite3.Connection, spam_actions: Sequence[str]) -> FilterSettings:
    stored = _stored(conn, "filter")
    base = FilterSettings(spam_actions=tuple(spam_actions))
    return replace(base, **{k: bool(v) for k, v in stored.items() if k in FILTER_SETTINGS})


def save_filter_settings(conn: sqlite3.Connection, changes: Dict[str, bool]) -> None:
    """Store the given switches (already checked) over the current ones."""
    _merge(conn, "filter", changes)


def _stored(conn: sqlite3.Connection, key: str) -> dict:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return json.loads(row["value"]) if row else {}


def _merge(conn: sqlite3.Connection, key: str, changes: Dict[str, object]) -> dict:
    """The stored object under ``key`` with ``changes`` over it, written in one transaction."""
    with transaction(conn):
        stored = _stored(conn, key)
        stored.update(changes)
        conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)"
                     " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, json.dumps(stored)))
    return stored


def load_features(conn: sqlite3.Connection) -> Features:
    return features.from_stored(_stored(conn, "features"))


def save_features(conn: sqlite3.Connection, changes: Dict[str, object]) -> Features:
    """Store the given settings (already checked) over the current ones; returns them all."""
    return features.from_stored(_merge(conn, "features", changes))


@dataclass(frozen=True)
class Snapshot:
    whitelist: Whitelist
    filter: FilterSettings
    blocked_accounts: frozenset
    server_limits: ServerLimits
    features: Features = Features()
    contained_accounts: frozenset = frozenset()   # blocked by containment (whitelisted senders pass)


class SettingsCache:
    """The daemon's view of the runtime settings, refreshed on change."""

    def __init__(self, conn: sqlite3.Connection, spam_actions: Sequence[str]):
        self.conn = conn
        self.spam_actions = tuple(spam_actions)
        self._version: Optional[int] = None
        self._snapshot: Optional[Snapshot] = None

    def get(self) -> Snapshot:
        version = self.conn.execute("SELECT n FROM settings_stamp WHERE id = 1").fetchone()[0]
        if self._snapshot is None or version != self._version:
            self._snapshot = Snapshot(
                whitelist=load_whitelist(self.conn),
                filter=load_filter_settings(self.conn, self.spam_actions),
                blocked_accounts=blocked_accounts(self.conn),
                server_limits=load_server_limits(self.conn),
                features=load_features(self.conn),
                contained_accounts=contained_accounts(self.conn),
            )
            self._version = version
        return self._snapshot
