"""Account subspaces of the quarantine: space limit, used space, state, release quota, releases.

A subspace is created on an account's first held message, or when the
administrator first changes it. Values are stored as given: the rules for
them live in :mod:`imunifyemail.core.accounts`, checked by the callers.

The server's quarantine defaults (space limit, releases limit) are kept in the settings table;
an account follows each of them until it is given its own value (``*_own`` columns). A following
account's row holds the default's current value — written when the default changes — so that
whatever reads a limit (eviction, a user's release quota) reads the row alone.
"""
import json
import sqlite3
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from ..core.accounts import ACTIVE, BLOCK, DEFAULT_RELEASES_PER_HOUR, FOLLOW_DEFAULT
from ..core.window import hour_before
from ..core.metrics import AccountHeld
from . import activity
from .db import transaction


@dataclass(frozen=True)
class AccountInfo:
    name: str
    limit_bytes: int
    used_bytes: int
    state: str
    message_count: int
    deleted_last_hour: int
    releases_limit: int = DEFAULT_RELEASES_PER_HOUR
    contained_at: Optional[int] = None    # blocked by the daemon's containment at (None: not contained)
    limit_bytes_own: bool = False         # False: follows the server's default space limit
    releases_limit_own: bool = False      # False: follows the server's default releases limit

    @property
    def contained(self) -> bool:
        return self.contained_at is not None


# -- the server's quarantine defaults ------------------------------------------------

DEFAULTS_KEY = "quarantine_defaults"


@dataclass(frozen=True)
class QuarantineDefaults:
    limit_bytes: int
    releases_limit: int


def load_defaults(conn: sqlite3.Connection, fallback_limit_bytes: int) -> QuarantineDefaults:
    """The stored defaults; a space limit never set falls back to config.yaml's
    ``quarantine.default_limit_bytes`` (``fallback_limit_bytes``)."""
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (DEFAULTS_KEY,)).fetchone()
    stored = json.loads(row["value"]) if row else {}
    return QuarantineDefaults(int(stored.get("limit_bytes", fallback_limit_bytes)),
                              int(stored.get("releases_limit", DEFAULT_RELEASES_PER_HOUR)))


def save_defaults(conn: sqlite3.Connection, fallback_limit_bytes: int, limit_bytes: Optional[int] = None,
                  releases_limit: Optional[int] = None) -> QuarantineDefaults:
    """Store the given defaults (already checked; None leaves one) and write them into every account
    that follows them, in one transaction."""
    with transaction(conn):
        current = load_defaults(conn, fallback_limit_bytes)
        new = QuarantineDefaults(current.limit_bytes if limit_bytes is None else limit_bytes,
                                 current.releases_limit if releases_limit is None else releases_limit)
        conn.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value ="
                     " excluded.value", (DEFAULTS_KEY, json.dumps({"limit_bytes": new.limit_bytes,
                                                                   "releases_limit": new.releases_limit})))
        conn.execute("UPDATE accounts SET limit_bytes = ? WHERE limit_bytes_own = 0 AND limit_bytes != ?",
                     (new.limit_bytes, new.limit_bytes))
        conn.execute("UPDATE accounts SET releases_limit = ? WHERE releases_limit_own = 0 AND releases_limit != ?",
                     (new.releases_limit, new.releases_limit))
    return new


def ensure_account(conn: sqlite3.Connection, name: str, fallback_limit_bytes: int, now: int) -> sqlite3.Row:
    """The account's row, created with the server's defaults if needed (inside the caller's transaction)."""
    row = conn.execute("SELECT * FROM accounts WHERE name = ?", (name,)).fetchone()
    if row is None:
        defaults = load_defaults(conn, fallback_limit_bytes)
        conn.execute("INSERT INTO accounts (name, limit_bytes, state, releases_limit, created_at)"
                     " VALUES (?, ?, ?, ?, ?)", (name, defaults.limit_bytes, ACTIVE, defaults.releases_limit, now))
        row = conn.execute("SELECT * FROM accounts WHERE name = ?", (name,)).fetchone()
    return row


def _info(conn: sqlite3.Connection, row: sqlite3.Row, now: int) -> AccountInfo:
    deleted = conn.execute("SELECT COALESCE(SUM(count), 0) FROM evictions WHERE account_id = ? AND at > ?",
                           (row["id"], hour_before(now))).fetchone()[0]
    return AccountInfo(row["name"], row["limit_bytes"], row["used_bytes"], row["state"], row["message_count"],
                       deleted, row["releases_limit"], row["contained_at"], bool(row["limit_bytes_own"]),
                       bool(row["releases_limit_own"]))


def list_accounts(conn: sqlite3.Connection, now: int, name_contains: Optional[str] = None, offset: int = 0,
                  limit: int = -1) -> List[AccountInfo]:
    """Accounts in name order (those whose name contains ``name_contains``), a page of them."""
    where, params = ("WHERE instr(name, ?) > 0", [name_contains]) if name_contains else ("", [])
    rows = conn.execute(f"SELECT * FROM accounts {where} ORDER BY name LIMIT ? OFFSET ?",
                        (*params, limit, offset)).fetchall()
    return [_info(conn, r, now) for r in rows]


def held_totals(conn: sqlite3.Connection, top: int) -> Tuple[int, int, Tuple[AccountHeld, ...]]:
    """(messages held, their bytes, the ``top`` accounts holding the most): two queries however many
    accounts (the metrics file)."""
    messages, size = conn.execute("SELECT COALESCE(SUM(message_count), 0), COALESCE(SUM(used_bytes), 0)"
                                  " FROM accounts").fetchone()
    rows = conn.execute("SELECT name, message_count, used_bytes FROM accounts WHERE message_count > 0"
                        " ORDER BY message_count DESC, name LIMIT ?", (top,)).fetchall() if top else []
    return messages, size, tuple(AccountHeld(r[0], r[1], r[2]) for r in rows)


def count_accounts(conn: sqlite3.Connection, name_contains: Optional[str] = None) -> int:
    if name_contains:
        return conn.execute("SELECT COUNT(*) FROM accounts WHERE instr(name, ?) > 0", (name_contains,)).fetchone()[0]
    return conn.execute("SELECT COUNT(*) FROM accounts").fetchone()[0]


def get_account(conn: sqlite3.Connection, name: str, now: int) -> Optional[AccountInfo]:
    row = conn.execute("SELECT * FROM accounts WHERE name = ?", (name,)).fetchone()
    return _info(conn, row, now) if row is not None else None


def update_account(conn: sqlite3.Connection, name: str, fallback_limit_bytes: int, now: int,
                   state: Optional[str] = None, limit_bytes: Optional[int] = None,
                   releases_limit: Optional[int] = None) -> AccountInfo:
    """Change what is given (None leaves it), creating the subspace if needed. A limit given becomes
    the account's own; ``FOLLOW_DEFAULT`` makes it follow the server's default again. Setting the state
    (either) is the administrator's decision: it ends a containment and restarts its count."""
    with transaction(conn):
        row = ensure_account(conn, name, fallback_limit_bytes, now)
        defaults = load_defaults(conn, fallback_limit_bytes)
        if state is not None:
            conn.execute("UPDATE accounts SET state = ? WHERE id = ?", (state, row["id"]))
        for column, value, default in (("limit_bytes", limit_bytes, defaults.limit_bytes),
                                        ("releases_limit", releases_limit, defaults.releases_limit)):
            if value is not None:
                follow = value == FOLLOW_DEFAULT
                conn.execute(f"UPDATE accounts SET {column} = ?, {column}_own = ? WHERE id = ?",
                             (default if follow else value, 0 if follow else 1, row["id"]))
        if state is not None:
            conn.execute("UPDATE accounts SET contained_at = NULL, state_changed_at = ? WHERE id = ?",
                         (now, row["id"]))
    return get_account(conn, name, now)


def is_blocked(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT state FROM accounts WHERE name = ?", (name,)).fetchone()
    return row is not None and row["state"] == BLOCK


def blocked_accounts(conn: sqlite3.Connection) -> frozenset:
    return frozenset(r[0] for r in conn.execute("SELECT name FROM accounts WHERE state = ?", (BLOCK,)))


def contained_accounts(conn: sqlite3.Connection) -> frozenset:
    """The blocked accounts whose block is the daemon's containment."""
    return frozenset(r[0] for r in conn.execute(
        "SELECT name FROM accounts WHERE state = ? AND contained_at IS NOT NULL", (BLOCK,)))


def contain(conn: sqlite3.Connection, name: str, now: int) -> bool:
    """Block an active account as contained (inside the caller's transaction); False if it was not active."""
    return conn.execute("UPDATE accounts SET state = ?, contained_at = ? WHERE name = ? AND state = ?",
                        (BLOCK, now, name, ACTIVE)).rowcount > 0


# -- releases ---------------------------------------------------------------------

def record_release(conn: sqlite3.Connection, email_id: str, account: str, now: int, actor: str, via: str,
                   recipients: int) -> None:
    """Note a release to ``recipients`` recipients (inside the caller's transaction); kept for the
    release window."""
    conn.execute("INSERT INTO releases (email_id, account_id, at, actor, via, recipients)"
                 " SELECT ?, id, ?, ?, ?, ? FROM accounts WHERE name = ?",
                 (email_id, now, actor, via, recipients, account))
    conn.execute("DELETE FROM releases WHERE at < ?", (now - 30 * 86400,))


def releases_since(conn: sqlite3.Connection, account: str, since: int, actors: Sequence[str] = ()) -> int:
    """How many recipients the account's messages released since ``since`` (by ``actors``, if given)
    were sent to: what a hosted user's release quota counts."""
    sql = ("SELECT COALESCE(SUM(r.recipients), 0) FROM releases r JOIN accounts a ON a.id = r.account_id"
           " WHERE a.name = ? AND r.at >= ?")
    params: list = [account, since]
    if actors:
        sql += f" AND r.actor IN ({','.join('?' * len(actors))})"
        params += list(actors)
    return conn.execute(sql, params).fetchone()[0]


def window_start(now: int) -> int:
    return int(hour_before(now))


# -- an account's subspace as a whole (the cPanel account hooks) ----------------------

def rename_account(conn: sqlite3.Connection, old: str, new: str) -> bool:
    """Give the subspace another name (inside the caller's transaction): its messages,
    evictions and releases follow by id. False when ``old`` has no subspace."""
    return conn.execute("UPDATE accounts SET name = ? WHERE name = ?", (new, old)).rowcount > 0


def delete_account(conn: sqlite3.Connection, name: str) -> Optional[int]:
    """Delete the subspace row of an account without messages (inside the caller's
    transaction; evictions and releases go with it); its id, None if it had none."""
    row = conn.execute("SELECT id FROM accounts WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    conn.execute("DELETE FROM accounts WHERE id = ?", (row["id"],))
    return row["id"]


def message_count(conn: sqlite3.Connection, name: str) -> int:
    return conn.execute("SELECT COUNT(*) FROM messages WHERE account_id = (SELECT id FROM accounts WHERE name = ?)",
                        (name,)).fetchone()[0]


def rename_with_objects(conn: sqlite3.Connection, old: str, new: str) -> Tuple[bool, bool]:
    """Rename the subspace and the Activity Monitor's account object in one transaction:
    (subspace renamed, object renamed)."""
    with transaction(conn):
        return rename_account(conn, old, new), activity.rename_account_object(conn, old, new)


def delete_with_objects(conn: sqlite3.Connection, name: str) -> Tuple[Optional[int], int]:
    """Delete an emptied subspace and the account's Activity Monitor objects in one
    transaction: (the subspace's id or None, objects deleted). Messages held meanwhile
    make it refuse (:class:`AccountNotEmpty`): nothing is deleted then."""
    with transaction(conn):
        if message_count(conn, name):
            raise AccountNotEmpty(name)
        return delete_account(conn, name), activity.delete_account_objects(conn, name)


class AccountNotEmpty(Exception):
    pass
