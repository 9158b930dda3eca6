"""The SQLite database: connection settings and versioned migrations.

One file holds the quarantine metadata and the runtime settings, so a
setting changed by ``ie-cli`` is seen by the daemon at its next message
(``PRAGMA data_version`` tells a connection that someone else committed).
Durability stays on: WAL with ``synchronous=FULL``. A migration never drops
quarantined mail, and a database that fails to open is never recreated.
An existing database is backed up before its first migration (:mod:`.backups`);
without that copy nothing is migrated.
"""
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional, Union

from ..core import features
from ..core.limits import script_name
from . import backups, search

# The held events containment counts (core/containment.COUNTED), written out literally: SQLite uses a
# partial index only for a query that repeats its condition term for term (store/containment.py).
CONTAINMENT_HOLDS = ("kind = 'held' AND ((',' || reasons || ',') LIKE '%,spam,%'"
                     " OR (',' || reasons || ',') LIKE '%,winexec,%')")

MIGRATIONS: List[Union[str, Callable[[sqlite3.Connection], None]]] = [
    # 1: the quarantine and the settings
    """
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        limit_bytes INTEGER NOT NULL CHECK (limit_bytes >= 0),
        used_bytes INTEGER NOT NULL DEFAULT 0,
        message_count INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'block')),
        created_at INTEGER NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        email_id TEXT NOT NULL UNIQUE,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        received_at INTEGER NOT NULL,
        sender TEXT NOT NULL,
        recipients TEXT NOT NULL,
        subject TEXT NOT NULL,
        header_from TEXT NOT NULL DEFAULT '',
        size_bytes INTEGER NOT NULL,
        reasons TEXT NOT NULL,
        filter_score REAL,
        filter_action TEXT NOT NULL DEFAULT '',
        script_raw TEXT NOT NULL DEFAULT '',
        script_domain TEXT NOT NULL DEFAULT '',
        script_path TEXT NOT NULL DEFAULT '',
        exim_id TEXT NOT NULL DEFAULT '',
        file TEXT NOT NULL
    );
    CREATE INDEX messages_by_account ON messages (account_id, received_at, id);
    CREATE INDEX messages_by_time ON messages (received_at, id);
    CREATE TABLE evictions (
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        at INTEGER NOT NULL,
        count INTEGER NOT NULL
    );
    CREATE INDEX evictions_by_account ON evictions (account_id, at);
    CREATE TABLE whitelist (
        list TEXT NOT NULL CHECK (list IN ('authuser', 'sender')),
        kind TEXT NOT NULL CHECK (kind IN ('email', 'domain')),
        value TEXT NOT NULL,
        PRIMARY KEY (list, value)
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: a release in progress claims its message, so two releases cannot both send it
    """
    ALTER TABLE messages ADD COLUMN claimed_at INTEGER
    """,
    # 3: the Activity Monitor: sender objects, minute buckets (statistics) and
    # per-message events of the last hour (exact sliding-window limits)
    """
    CREATE TABLE sender_objects (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL CHECK (type IN ('account', 'domain', 'sender_email', 'script')),
        name TEXT NOT NULL,
        account_id TEXT NOT NULL,
        parent_id TEXT NOT NULL,
        limit_override INTEGER CHECK (limit_override IS NULL OR limit_override >= 0),
        created_at INTEGER NOT NULL,
        UNIQUE (type, parent_id, name)
    );
    CREATE INDEX sender_objects_by_account ON sender_objects (account_id, type);
    CREATE INDEX sender_objects_by_name ON sender_objects (type, name);
    CREATE TABLE am_buckets (
        object_id TEXT NOT NULL,
        bucket INTEGER NOT NULL,
        messages INTEGER NOT NULL DEFAULT 0,
        recipients INTEGER NOT NULL DEFAULT 0,
        quarantined INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (object_id, bucket)
    ) WITHOUT ROWID;
    CREATE INDEX am_buckets_by_time ON am_buckets (bucket);
    CREATE TABLE am_events (
        object_id TEXT NOT NULL,
        at REAL NOT NULL,
        recipients INTEGER NOT NULL
    );
    CREATE INDEX am_events_by_object ON am_events (object_id, at);
    CREATE INDEX am_events_by_time ON am_events (at)
    """,
    # 4: a hosted user's releases per hour (the quota, and who released what when)
    """
    ALTER TABLE accounts ADD COLUMN releases_limit INTEGER NOT NULL DEFAULT 5 CHECK (releases_limit >= 0);
    CREATE TABLE releases (
        email_id TEXT NOT NULL,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        via TEXT NOT NULL
    );
    CREATE INDEX releases_by_account ON releases (account_id, at);
    ALTER TABLE messages ADD COLUMN script_name TEXT NOT NULL DEFAULT ''
    """,
    # 5: the sender object name of each message's script ("Go to quarantine" of a script object)
    lambda conn: _backfill_script_names(conn),
    # 6: the search index (subject, sender, recipients), kept by triggers in the row's transaction
    lambda conn: search.create_index(conn),
    # 7: each message's verdict by Exim id (the single pass: the same answer for every recipient and retry)
    """
    CREATE TABLE verdicts (
        exim_id TEXT PRIMARY KEY,
        verdict TEXT NOT NULL CHECK (verdict IN ('pass', 'hold')),
        fields TEXT NOT NULL,
        at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX verdicts_by_time ON verdicts (at)
    """,
    # 8: the audit trail (who changed what), what happened to mail (held, contained, released by the
    # daemon) for notifications, where each notification channel is up to, contained accounts, and
    # the recipient whitelist
    """
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('root', 'whm user', 'hosted user', 'daemon')),
        via TEXT NOT NULL CHECK (via IN ('cli', 'whm', 'cpanel', 'hook', 'daemon')),
        account TEXT,
        action TEXT NOT NULL,
        ids TEXT NOT NULL DEFAULT '[]',
        detail TEXT NOT NULL DEFAULT '{}',
        outcome TEXT NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (at);
    CREATE INDEX audit_by_account ON audit (account, at);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('held', 'contained', 'auto_released')),
        account TEXT NOT NULL,
        reasons TEXT NOT NULL DEFAULT '',
        sender TEXT NOT NULL DEFAULT '',
        script TEXT NOT NULL DEFAULT '',
        email_id TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX events_by_time ON events (at);
    CREATE INDEX events_by_account ON events (account, kind, at);
    CREATE TABLE notified (
        channel TEXT PRIMARY KEY,
        last_event INTEGER NOT NULL,
        sent_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    ALTER TABLE accounts ADD COLUMN contained_at INTEGER;
    CREATE TABLE whitelist_new (
        list TEXT NOT NULL CHECK (list IN ('authuser', 'sender', 'recipient')),
        kind TEXT NOT NULL CHECK (kind IN ('email', 'domain')),
        value TEXT NOT NULL,
        PRIMARY KEY (list, value)
    );
    INSERT INTO whitelist_new SELECT list, kind, value FROM whitelist;
    DROP TABLE whitelist;
    ALTER TABLE whitelist_new RENAME TO whitelist
    """,
    # 9: held rate-limited mail waiting for automatic release, by account and age (a partial index:
    # the daemon looks for it every few seconds, among however much spam); when the administrator
    # last set an account's state (containment counts from then)
    """
    CREATE INDEX messages_waiting ON messages (account_id, received_at, id) WHERE reasons = 'ratelimit';
    ALTER TABLE accounts ADD COLUMN state_changed_at INTEGER
    """,
    # 10: the limits a message held for ratelimit found full, for the digest and the webhook (JSON);
    # the holds containment counts, by account and time (each spam hold counts them: a covering index)
    """
    ALTER TABLE events ADD COLUMN limits TEXT NOT NULL DEFAULT '';
    CREATE INDEX events_contained_by ON events (account, at, kind, reasons) WHERE """ + CONTAINMENT_HOLDS,
    # 11: a hosted user's release quota counts recipients: each release's (a release noted before
    # counts as its message's recipients if that row is still there, else as one); the webhook URLs
    # the audit trail recorded in full lose all but their scheme and host (they may carry a token)
    lambda conn: _count_release_recipients_redact_urls(conn),
    # 12: a stamp that every change to what the daemon's settings snapshot holds moves on (triggers: so
    # every writer does, in its own transaction); the mail path reads it per message on a connection
    # of its own, which the daemon's own counting commits do not disturb (store/settings.py)
    lambda conn: _settings_stamp(conn),
    # 13: a sender object's own observe setting (NULL: the server's), and the messages
    # observe mode passed that a limit would have held, one row per limit they found full
    """
    ALTER TABLE sender_objects ADD COLUMN observe INTEGER CHECK (observe IS NULL OR observe IN (0, 1));
    CREATE TABLE am_observed (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        exim_id TEXT NOT NULL DEFAULT '',
        account TEXT NOT NULL,
        sender TEXT NOT NULL DEFAULT '',
        recipients INTEGER NOT NULL,
        object_id TEXT NOT NULL,
        type TEXT NOT NULL,
        name TEXT NOT NULL,
        limit_value INTEGER NOT NULL,
        limit_mode INTEGER NOT NULL,
        window TEXT NOT NULL DEFAULT 'hour',
        used INTEGER NOT NULL
    );
    CREATE INDEX am_observed_by_time ON am_observed (at)
    """,
    # 14: a whitelist entry that ends by itself (NULL: permanent), and a sender object's
    # hourly limit raised until a time (its own limit, or the server default, applies again after)
    """
    ALTER TABLE whitelist ADD COLUMN expires_at INTEGER;
    CREATE INDEX whitelist_expiring ON whitelist (expires_at) WHERE expires_at IS NOT NULL;
    ALTER TABLE sender_objects ADD COLUMN raised_limit INTEGER CHECK (raised_limit IS NULL OR raised_limit > 0);
    ALTER TABLE sender_objects ADD COLUMN raised_until INTEGER;
    CREATE INDEX sender_objects_raised ON sender_objects (raised_until) WHERE raised_until IS NOT NULL
    """,
    # 15: whether an account's space limit and releases limit are its own (1)
    # or follow the server's defaults (0: a new default is written into them, store/accounts.py). Own
    # are those the administrator set (the audit trail says so) and releases limits other than the
    # only default there was (5)
    """
    ALTER TABLE accounts ADD COLUMN limit_bytes_own INTEGER NOT NULL DEFAULT 0 CHECK (limit_bytes_own IN (0, 1));
    ALTER TABLE accounts ADD COLUMN releases_limit_own INTEGER NOT NULL DEFAULT 0
        CHECK (releases_limit_own IN (0, 1));
    UPDATE accounts SET limit_bytes_own = 1 WHERE name IN (SELECT account FROM audit
        WHERE action = 'account edit' AND account IS NOT NULL AND json_valid(detail)
        AND json_extract(detail, '$.limit_bytes') IS NOT NULL);
    UPDATE accounts SET releases_limit_own = 1 WHERE releases_limit != 5 OR name IN (SELECT account FROM audit
        WHERE action = 'account edit' AND account IS NOT NULL AND json_valid(detail)
        AND json_extract(detail, '$.releases_limit') IS NOT NULL)
    """,
    # 16: an account's own switch of the incoming filter (no row: on), the daily
    # spam/ham counts of the mail it received (day: UTC YYYY-MM-DD), and each recipient's copy routed
    # (Exim id / address), so that a retry gets the same answer and is not counted again
    """
    CREATE TABLE incoming_routed (
        key TEXT PRIMARY KEY,
        fields TEXT NOT NULL,
        at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX incoming_routed_by_time ON incoming_routed (at);
    CREATE TABLE incoming_accounts (
        account TEXT PRIMARY KEY,
        enabled INTEGER NOT NULL CHECK (enabled IN (0, 1))
    );
    CREATE TABLE incoming_daily (
        account TEXT NOT NULL,
        day TEXT NOT NULL,
        spam INTEGER NOT NULL DEFAULT 0,
        ham INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (account, day)
    );
    CREATE INDEX incoming_daily_by_day ON incoming_daily (day)
    """,
    # 17: a sender object's own daily limit (NULL: the server's default for its type)
    """
    ALTER TABLE sender_objects ADD COLUMN daily_override INTEGER CHECK (daily_override IS NULL OR daily_override >= 0)
    """,
    # 18: each sender object's hourly sums of its minute buckets (issue 19, observe's suggestions: 30 days
    # of hours instead of 43,200 minutes), rolled up by the daemon's housekeeping; the hours [first, hour)
    # the rollup holds (no row: nothing rolled up yet, store/am_hours.py)
    """
    CREATE TABLE am_hours (
        object_id TEXT NOT NULL,
        hour INTEGER NOT NULL,
        messages INTEGER NOT NULL,
        recipients INTEGER NOT NULL,
        PRIMARY KEY (object_id, hour)
    ) WITHOUT ROWID;
    CREATE INDEX am_hours_by_hour ON am_hours (hour);
    CREATE TABLE am_hours_done (id INTEGER PRIMARY KEY CHECK (id = 1), first INTEGER NOT NULL,
                                hour INTEGER NOT NULL)
    """,
]

# What store/settings.Snapshot is read from: a change to any of these moves the stamp on. Accounts only
# by their state (blocked, contained) and name, not by what each hold adds to their usage.
_SNAPSHOT_SOURCES = (("whitelist", ("INSERT", "DELETE", "UPDATE")), ("settings", ("INSERT", "DELETE", "UPDATE")),
                     ("accounts", ("INSERT", "DELETE", "UPDATE OF state, contained_at, name")))


def _settings_stamp(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE settings_stamp (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)")
    conn.execute("INSERT INTO settings_stamp (id, n) VALUES (1, 0)")
    for table, changes in _SNAPSHOT_SOURCES:
        for change in changes:
            name = f"{table}_{change.split()[0].lower()}_moves_settings_stamp"
            conn.execute(f"CREATE TRIGGER {name} AFTER {change} ON {table}"
                         " BEGIN UPDATE settings_stamp SET n = n + 1 WHERE id = 1; END")


def _count_release_recipients_redact_urls(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE releases ADD COLUMN recipients INTEGER NOT NULL DEFAULT 1 CHECK (recipients >= 1)")
    conn.execute("UPDATE releases SET recipients = (SELECT MAX(json_array_length(m.recipients), 1) FROM messages m"
                 " WHERE m.email_id = releases.email_id)"
                 " WHERE EXISTS (SELECT 1 FROM messages m WHERE m.email_id = releases.email_id)")
    _redact_recorded_urls(conn)


def _redact_recorded_urls(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT id, detail FROM audit WHERE action = 'server settings'"
                        " AND instr(detail, '\"webhook_url\"') > 0").fetchall()
    for entry_id, text in rows:
        try:
            detail = json.loads(text)
            change = detail["webhook_url"]
            redacted = {k: features.redacted_url(v) if isinstance(v, str) else v for k, v in change.items()}
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
        detail["webhook_url"] = redacted
        conn.execute("UPDATE audit SET detail = ? WHERE id = ?",
                     (json.dumps(detail, ensure_ascii=False, sort_keys=True), entry_id))


def _backfill_script_names(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT id, script_domain, script_path FROM messages WHERE script_path != ''").fetchall()
    conn.executemany("UPDATE messages SET script_name = ? WHERE id = ?",
                     [(script_name(r[1], r[2]), r[0]) for r in rows])


WAL_SIZE_LIMIT = 4 << 20   # a reset WAL is cut back to this: a full disk gets its space back


class DatabaseError(Exception):
    pass


def connect(path: Path, readonly: bool = False, synchronous: str = "FULL") -> sqlite3.Connection:
    """Open the database (creating and migrating it unless ``readonly``). ``synchronous`` NORMAL
    (the mail path's counting) fsyncs the WAL at checkpoints only; whatever must survive a power
    cut — a held message's row — is written under :func:`durable`."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA temp_store = MEMORY")   # no temporary files on a full disk
    if not readonly:
        # Switching takes a lock the busy timeout does not wait for, and another process may be
        # recovering the WAL right now (a daemon restarted after kill -9): read first, retry a while.
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        deadline = time.monotonic() + 10
        while mode != "wal":
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        if mode != "wal":
            raise DatabaseError(f"{path}: cannot switch to WAL journal mode (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        try:
            migrate(conn)
        except BaseException:
            conn.close()   # the caller gets no connection: none is left holding the files
            raise
        if synchronous != "FULL":
            conn.execute(f"PRAGMA synchronous = {'NORMAL' if synchronous == 'NORMAL' else 'FULL'}")
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def database_file(conn: sqlite3.Connection) -> Optional[Path]:
    """The file of the connection's main database (None in memory)."""
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main":
            return Path(row[2]) if row[2] else None
    return None


def migrate(conn: sqlite3.Connection, clock: Callable[[], float] = time.time) -> None:
    """Bring the schema up to date, one transaction per version. Before the first step applied to a
    database that existed (schema 1 or later when this began) it is backed up, in that step's
    transaction: nobody commits in between, and a step rolled back takes its backup with it."""
    current = schema_version(conn)
    if current > len(MIGRATIONS):
        raise DatabaseError(
            f"database schema {current} is newer than this imunifyemail ({len(MIGRATIONS)}): "
            "refusing to touch it")
    database = database_file(conn) if current > 0 else None   # a new database has nothing to keep
    backed_up = False
    for version in range(current + 1, len(MIGRATIONS) + 1):
        made: Optional[Path] = None
        try:
            with transaction(conn):
                found = schema_version(conn)
                if found >= version:  # another process migrated meanwhile
                    continue
                if database is not None and not backed_up:
                    made = _backup(database, found, clock)
                    backed_up = True
                _apply(conn, version)
        except BaseException:
            if made is not None:   # nothing was migrated: the database is still what the backup holds
                backups.discard(made)
            raise
    if backed_up:
        backups.prune(database)


def _backup(database: Path, version: int, clock: Callable[[], float]) -> Path:
    try:
        return backups.make(database, version, clock)
    except backups.BackupError as exc:
        raise DatabaseError(f"{database}: not migrated from schema {version} to {len(MIGRATIONS)}, "
                            f"as no backup of it could be made first: {exc}") from None


def _apply(conn: sqlite3.Connection, version: int) -> None:
    step = MIGRATIONS[version - 1]
    if callable(step):
        step(conn)
    else:
        for statement in step.split(";"):
            if statement.strip():
                conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")


class transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``/``ROLLBACK``: short write transactions. Inside another
    transaction (the daemon's group commit, daemon/store_worker.py) it is a savepoint of it: its
    failure undoes its own work only, and its work is committed with the outer transaction."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self._nested = False

    def __enter__(self) -> sqlite3.Connection:
        self._nested = self.conn.in_transaction
        self.conn.execute("SAVEPOINT nested" if self._nested else "BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._nested:
            try:
                self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
            except sqlite3.Error:
                if self.conn.in_transaction:   # a COMMIT that failed (a full disk) may leave it open
                    self.conn.execute("ROLLBACK")
                raise
        elif exc_type is None:
            self.conn.execute("RELEASE nested")
        else:
            self.conn.execute("ROLLBACK TO nested")
            self.conn.execute("RELEASE nested")


class durable:
    """A transaction fsynced at its commit whatever the connection's default (``synchronous=FULL``)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._was = self.conn.execute("PRAGMA synchronous").fetchone()[0]
        if self._was != 2:
            self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
        except sqlite3.Error:
            if self.conn.in_transaction:   # a COMMIT that failed may leave it open
                self.conn.execute("ROLLBACK")
            raise
        finally:
            if self._was != 2:
                self.conn.execute(f"PRAGMA synchronous = {self._was}")


Clock = Callable[[], float]
system_clock: Clock = time.time


class Checkpointer:
    """WAL checkpoints off the message path.

    The connection that commits past the WAL's auto-checkpoint size pays for
    the checkpoint (milliseconds: the p99 of a message's commit, measured).
    The daemon turns auto-checkpoints off on its own connection and lets this
    thread run passive checkpoints, which do not block its writes.
    """

    def __init__(self, path: Path, interval: float = 2.0):
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        conn = connect(self.path)
        try:
            while not self._stop.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.OperationalError:   # busy now; the next round catches up
                    pass
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def no_auto_checkpoint(conn: sqlite3.Connection) -> sqlite3.Connection:
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    return conn
