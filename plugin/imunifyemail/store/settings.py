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

from ..core import features, trust
from ..core.features import Features
from ..core.limits import ServerLimits
from ..core.verdict import FILTER_SETTINGS, FilterSettings, Whitelist
from .accounts import blocked_accounts, contained_accounts
from .db import Clock, system_clock, transaction

def whitelist_entries(conn: sqlite3.Connection, list_name: str, now: float) -> Dict[str, object]:
    """The list's emails and domains in force at ``now``, and when each ends (``expires_at``: None
    when permanent)."""
    rows = [r for r in conn.execute("SELECT kind, value, expires_at FROM whitelist WHERE list = ? ORDER BY rowid",
                                    (list_name,)) if trust.applies(r["expires_at"], now)]
    return {"emails": [r["value"] for r in rows if r["kind"] == "email"],
            "domains": [r["value"] for r in rows if r["kind"] == "domain"],
            "expires_at": {r["value"]: r["expires_at"] for r in rows}}


def whitelist_expiry(conn: sqlite3.Connection, list_name: str, value: str, now: float) -> Optional[int]:
    """When an entry in force at ``now`` ends (None: permanent); KeyError when it is not in force."""
    row = conn.execute("SELECT expires_at FROM whitelist WHERE list = ? AND value = ?", (list_name, value)).fetchone()
    if row is None or not trust.applies(row["expires_at"], now):
        raise KeyError(value)
    return row["expires_at"]


def whitelist_add(conn: sqlite3.Connection, list_name: str, entries: Sequence[Tuple[str, str]],
                  expires_at: Optional[int] = None) -> None:
    """Add (kind, value) pairs, all or nothing, until ``expires_at`` (None: for good). An entry already
    present takes the new end; a permanent one stays permanent, and a permanent add makes it so."""
    with transaction(conn):
        conn.executemany(
            "INSERT INTO whitelist (list, kind, value, expires_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (list, value) DO UPDATE SET kind = excluded.kind, expires_at ="
            " CASE WHEN whitelist.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL"
            " ELSE excluded.expires_at END",
            [(list_name, kind, value, expires_at) for kind, value in entries])


def prune_whitelist(conn: sqlite3.Connection, now: float) -> List[Tuple[str, str, int]]:
    """Delete the entries that have ended by ``now`` (inside the caller's transaction); (list, value, end)
    of each. Deleting moves the settings stamp: the snapshots are re-read without them."""
    ended = [(r[0], r[1], r[2]) for r in conn.execute(
        "SELECT list, value, expires_at FROM whitelist WHERE expires_at IS NOT NULL AND expires_at <= ?"
        " ORDER BY expires_at", (now,)) if not trust.applies(r[2], now)]
    conn.executemany("DELETE FROM whitelist WHERE list = ? AND value = ? AND expires_at = ?", ended)
    return ended


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


def load_whitelist(conn: sqlite3.Connection, now: float) -> Whitelist:
    """The whitelists in force at ``now``, with the ends still to come (:meth:`Whitelist.at`)."""
    rows = conn.execute("SELECT list, kind, value, expires_at FROM whitelist").fetchall()

    def values(list_name: str, kind: str) -> frozenset:
        return frozenset(r["value"] for r in rows if r["list"] == list_name and r["kind"] == kind)
    return Whitelist(
        sender_emails=values("sender", "email"),
        sender_domains=values("sender", "domain"),
        authusers=frozenset(r["value"] for r in rows if r["list"] == "authuser"),
        recipient_emails=values("recipient", "email"),
        recipient_domains=values("recipient", "domain"),
        expiring=tuple(sorted(((r["list"], r["value"], r["expires_at"]) for r in rows if r["expires_at"] is not None),
                              key=lambda e: e[2])),
    ).at(now)


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

    def __init__(self, conn: sqlite3.Connection, spam_actions: Sequence[str], clock: Clock = system_clock):
        self.conn = conn
        self.clock = clock
        self.spam_actions = tuple(spam_actions)
        self._version: Optional[int] = None
        self._snapshot: Optional[Snapshot] = None

    def get(self) -> Snapshot:
        """The settings in force now: a whitelist entry that ended since the last read is left out
        from that very moment (no change moved the stamp: the housekeeping deletes it later)."""
        now = self.clock()
        version = self.conn.execute("SELECT n FROM settings_stamp WHERE id = 1").fetchone()[0]
        if self._snapshot is not None and version == self._version:
            live = self._snapshot.whitelist.at(now)
            if live is not self._snapshot.whitelist:
                self._snapshot = replace(self._snapshot, whitelist=live)
        else:
            self._snapshot = Snapshot(
                whitelist=load_whitelist(self.conn, now),
                filter=load_filter_settings(self.conn, self.spam_actions),
                blocked_accounts=blocked_accounts(self.conn),
                server_limits=load_server_limits(self.conn),
                features=load_features(self.conn),
                contained_accounts=contained_accounts(self.conn),
            )
            self._version = version
        return self._snapshot
