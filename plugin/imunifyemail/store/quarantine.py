"""The quarantine: one file per message, metadata in SQLite.

Write order, so that a crash at any instant leaves no half-visible message:
the file is written under a temporary name, fsynced, renamed into place and
its directory fsynced; only then is the row committed, and only then is the
message acknowledged. Deletion is the reverse: rows first, files after.
:meth:`Quarantine.reconcile` (run at daemon start) removes files without a
row (never acknowledged: Exim still holds those messages) and rows whose
file vanished.

Paths are built from the account's numeric id and the UUID we generated —
never from a name or id taken from input — and every file is reached through
:mod:`.confined`: the storage and the database belong to the daemon's user, so
a path read back from a row is taken only in that form and never through a link.
"""
import json
import logging
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

from ..core.accounts import release_cost
from ..core.limits import Reached, script_name
from ..core.message import ScriptHeader
from . import accounts as account_rows
from .accounts import AccountInfo
from .confined import TMP_PREFIX, StorageFiles
from .db import Clock, durable, system_clock, transaction
from .listing import ALL_ACCOUNTS, ListQuery, NotFound, StoredMessage, get_message, list_messages, scope_clause
from . import events, verdicts
from .space import StorageFull, StorageSpace, is_full_error
from .verdicts import Remembered

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewMessage:
    account: str
    sender: str
    recipients: Tuple[str, ...]
    subject: str
    reasons: Tuple[str, ...]
    header_from: str = ""
    filter_score: Optional[float] = None
    filter_action: str = ""
    script: ScriptHeader = ScriptHeader()
    exim_id: str = ""
    limits: Tuple[Reached, ...] = ()   # held for ratelimit: the limits it found full (for the notifications)


def _unlink_one(stored: StorageFiles, rel: str, found: bool = False) -> None:
    try:
        if found:
            stored.unlink_found(rel)
        else:
            stored.unlink(rel)
    except FileNotFoundError:
        pass
    except OSError as exc:  # reconcile() collects it at the next start; a path not the store's stays refused
        log.error("cannot delete quarantine file %s: %s", rel, exc.strerror)


# One message for Quarantine.add_many: add()'s arguments.
Hold = Tuple[NewMessage, bytes, Optional[Remembered], Optional[Callable[[], None]]]


@dataclass(frozen=True)
class Freed:
    """What a deletion gave back: messages and bytes."""
    count: int
    bytes: int


class Quarantine:
    def __init__(self, conn: sqlite3.Connection, storage_dir: Path, default_limit_bytes: int,
                 clock: Clock = system_clock, space: Optional[StorageSpace] = None):
        self.conn = conn
        self.storage = Path(storage_dir)
        self.default_limit_bytes = default_limit_bytes
        self.clock = clock
        self.space = space or StorageSpace(self.storage)

    # -- writing ---------------------------------------------------------

    def _ensure_account(self, name: str) -> sqlite3.Row:
        return account_rows.ensure_account(self.conn, name, self.default_limit_bytes, int(self.clock()))

    def account_id(self, name: str) -> int:
        """The account's id, creating its subspace (committed) if needed."""
        row = self.conn.execute("SELECT id FROM accounts WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return row["id"]
        with durable(self.conn):
            return self._ensure_account(name)["id"]

    def add(self, msg: NewMessage, raw: bytes, remember: Optional[Remembered] = None,
            within: Optional[Callable[[], None]] = None) -> StoredMessage:
        """Store durably; returns only once file and row are both on disk.

        :class:`StorageFull` when the filesystem is below its floor (counting what
        quota eviction would free) or turns out full while writing: nothing is
        stored then, and the caller defers the message. ``remember`` (the verdict)
        and ``within`` (e.g. counting it) happen in the transaction that stores it."""
        [outcome] = self.add_many([(msg, raw, remember, within)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def add_many(self, holds: Sequence[Hold]) -> List[Union[StoredMessage, Exception]]:
        """:meth:`add` for several messages at once (the daemon's holds queued together): each file
        written and fsynced, the directories they went into fsynced once, every row in one durable
        commit, a savepoint each. Each outcome is its own: the message stored, or the exception
        :meth:`add` would raise for it. A failed commit stores none of them."""
        outcomes: List[Union[StoredMessage, Exception, None]] = [None] * len(holds)
        written: List[Tuple[int, str, str]] = []   # (which, its file, its email id)
        stored: List[Tuple[int, List[str]]] = []   # (which, the files its eviction frees)
        try:
            with StorageFiles(self.storage, create=True) as files:
                for n, (msg, raw, _, _) in enumerate(holds):
                    try:
                        written.append((n, *self._write(files, msg, raw)))
                    except Exception as exc:
                        outcomes[n] = self._failure(exc)
                files.sync_directories()
            now = int(self.clock())
            with durable(self.conn):
                for n, rel, email_id in written:
                    msg, raw, remember, within = holds[n]
                    try:
                        with transaction(self.conn):   # a savepoint: only this message undone
                            evicted = self._insert(msg, len(raw), rel, email_id, now, remember, within)
                    except Exception as exc:
                        outcomes[n] = self._failure(exc)
                        self._unlink([rel])
                        continue
                    outcomes[n] = StoredMessage(email_id, msg.account, now, msg.sender, list(msg.recipients),
                                                msg.subject, len(raw), list(msg.reasons), msg.filter_score,
                                                msg.filter_action, msg.script, msg.header_from, rel)
                    stored.append((n, evicted))
        except BaseException as exc:   # the storage, a directory's fsync or the commit: none is stored
            self._unlink(rel for _, rel, _ in written)
            if not isinstance(exc, Exception):
                raise
            failure = self._failure(exc)
            outcomes = [o if isinstance(o, Exception) else failure for o in outcomes]
            return outcomes
        self._unlink(rel for _, evicted in stored for rel in evicted)
        return outcomes

    def _write(self, files: StorageFiles, msg: NewMessage, raw: bytes) -> Tuple[str, str]:
        """The message's file, written and fsynced (its directory not yet): (its path, its email id)."""
        size = len(raw)
        existing = self.conn.execute("SELECT * FROM accounts WHERE name = ?", (msg.account,)).fetchone()
        self.space.check_room(size, self._eviction_bytes(existing, size) if existing is not None else 0)
        email_id = str(uuid.uuid4())
        account_id = existing["id"] if existing is not None else self.account_id(msg.account)
        return files.write(account_id, email_id, raw, sync_directory=False), email_id

    def _failure(self, exc: Exception) -> Exception:
        """What a caller of :meth:`add` gets for ``exc``: a full filesystem as :class:`StorageFull`."""
        if isinstance(exc, (OSError, sqlite3.OperationalError)) and is_full_error(exc):
            return StorageFull(f"quarantine filesystem {self.storage} is full: "
                               f"{getattr(exc, 'strerror', None) or exc}")
        return exc

    def _insert(self, msg: NewMessage, size: int, rel: str, email_id: str, now: int,
                remember: Optional[Remembered], within: Optional[Callable[[], None]]) -> List[str]:
        """The message's row and what goes with it (inside the caller's transaction); returns the files
        of the messages evicted to make room (deleted once committed)."""
        script = script_name(msg.script.domain, msg.script.path)
        acct = self._ensure_account(msg.account)
        evicted = self._evict_for(acct, size, now)
        self.conn.execute(
            "INSERT INTO messages (email_id, account_id, received_at, sender, recipients, subject,"
            " header_from, size_bytes, reasons, filter_score, filter_action, script_raw,"
            " script_domain, script_path, script_name, exim_id, file)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (email_id, acct["id"], now, msg.sender, json.dumps(list(msg.recipients), ensure_ascii=False),
             msg.subject, msg.header_from, size, ",".join(msg.reasons), msg.filter_score,
             msg.filter_action, msg.script.raw, msg.script.domain, msg.script.path, script,
             msg.exim_id, rel))
        self.conn.execute(
            "UPDATE accounts SET used_bytes = used_bytes + ?, message_count = message_count + 1"
            " WHERE id = ?", (size, acct["id"]))
        events.insert(self.conn, now, events.HELD, msg.account, msg.reasons, msg.sender, script, email_id,
                      msg.limits)
        if remember is not None:
            verdicts.remember(self.conn, remember, now, email_id=email_id)
        if within is not None:
            within()
        return evicted

    def _eviction_bytes(self, acct: sqlite3.Row, incoming: int) -> int:
        """How many bytes storing ``incoming`` more would evict from the account now."""
        excess = acct["used_bytes"] + incoming - acct["limit_bytes"]
        if excess <= 0:
            return 0
        freed = 0
        for row in self.conn.execute("SELECT size_bytes FROM messages WHERE account_id = ?"
                                     " ORDER BY received_at, id", (acct["id"],)):
            freed += row["size_bytes"]
            if freed >= excess:
                break
        return freed

    def _evict_for(self, acct: sqlite3.Row, incoming: int, now: int) -> List[str]:
        """Delete the account's oldest messages until the new one fits (a message
        larger than the whole limit is still kept: mail is never dropped on arrival)."""
        excess = acct["used_bytes"] + incoming - acct["limit_bytes"]
        if excess <= 0:
            return []
        victims, freed = [], 0
        cursor = self.conn.execute(
            "SELECT id, size_bytes, file FROM messages WHERE account_id = ? ORDER BY received_at, id",
            (acct["id"],))
        for row in cursor:
            victims.append(row)
            freed += row["size_bytes"]
            if freed >= excess:
                break
        cursor.close()
        if not victims:
            return []
        self.conn.executemany("DELETE FROM messages WHERE id = ?", [(v["id"],) for v in victims])
        self.conn.execute(
            "UPDATE accounts SET used_bytes = used_bytes - ?, message_count = message_count - ? WHERE id = ?",
            (freed, len(victims), acct["id"]))
        self.conn.execute("INSERT INTO evictions (account_id, at, count) VALUES (?, ?, ?)",
                          (acct["id"], now, len(victims)))
        self.conn.execute("DELETE FROM evictions WHERE at < ?", (now - 86400,))
        log.info("quarantine of %s full: deleted %d oldest message(s), %d bytes",
                 acct["name"], len(victims), freed)
        return [v["file"] for v in victims]

    def _unlink(self, files: Iterable[str]) -> None:
        files = list(files)
        if not files:
            return
        try:
            with StorageFiles(self.storage) as stored:
                for rel in files:
                    _unlink_one(stored, rel)
        except OSError as exc:   # the storage directory itself: reconcile() collects them at the next start
            log.error("cannot delete %d quarantine file(s): %s", len(files), exc.strerror)

    # -- reading (store/listing.py, store/accounts.py) ---------------------------

    def list(self, q: ListQuery) -> Tuple[List[StoredMessage], int]:
        return list_messages(self.conn, q)

    def get(self, email_id: str, account: Optional[str] = ALL_ACCOUNTS) -> StoredMessage:
        return get_message(self.conn, email_id, account)

    def read(self, msg: StoredMessage) -> bytes:
        """The message's file (any process, any thread: no database access). An OSError says why
        not — :class:`.confined.Refused` when its row's path is not the store's own."""
        with StorageFiles(self.storage) as files:
            return files.read(msg.file, msg.email_id)

    def remembered(self, exim_id: str) -> Optional[Remembered]:
        return verdicts.recall(self.conn, exim_id)

    def accounts(self) -> List[AccountInfo]:
        return account_rows.list_accounts(self.conn, int(self.clock()))

    def account(self, name: str) -> Optional[AccountInfo]:
        return account_rows.get_account(self.conn, name, int(self.clock()))

    # -- releasing -------------------------------------------------------

    def claim(self, email_ids: Sequence[str], ttl: float) -> List[str]:
        """Mark messages as being released; all or none. Returns the ids another
        release holds a claim on younger than ``ttl`` seconds (then nothing is claimed)."""
        now = int(self.clock())
        with durable(self.conn):
            busy = [e for e in email_ids if self.conn.execute(
                "SELECT 1 FROM messages WHERE email_id = ? AND claimed_at > ?",
                (e, now - ttl)).fetchone() is not None]
            if not busy:
                self.conn.executemany("UPDATE messages SET claimed_at = ? WHERE email_id = ?",
                                      [(now, e) for e in email_ids])
        return busy

    def unclaim(self, email_ids: Sequence[str]) -> None:
        with durable(self.conn):
            self.conn.executemany("UPDATE messages SET claimed_at = NULL WHERE email_id = ?",
                                  [(e,) for e in email_ids])

    # -- removing --------------------------------------------------------

    def remove(self, email_ids: Sequence[str], account: Optional[str] = ALL_ACCOUNTS,
               released_by: Optional[Tuple[str, str]] = None,
               within: Optional[Callable[[], None]] = None) -> Freed:
        """Delete messages; if any id is not found (in scope), nothing is deleted.
        ``released_by`` (actor, via): they were released, and are noted as such;
        ``within`` (e.g. the daemon's audit entry) happens in the transaction that deletes them.

        Files go first, then rows, with the reserve given back meanwhile: this
        works on a completely full disk. A crash between the two leaves rows
        without files, which :meth:`reconcile` removes."""
        where, args = scope_clause(account)
        rows = []
        for email_id in dict.fromkeys(email_ids):
            row = self.conn.execute(
                f"SELECT m.id, m.email_id, m.account_id, m.size_bytes, m.file, m.recipients, a.name AS account"
                f" FROM messages m"
                f" JOIN accounts a ON a.id = m.account_id WHERE m.email_id = ? AND {where}",
                (email_id, *args)).fetchone()
            if row is None:
                raise NotFound(email_id)
            rows.append(row)
        with self.space.freeing():
            self._unlink(r["file"] for r in rows)
            with durable(self.conn):
                if released_by is not None:
                    for row in rows:
                        account_rows.record_release(self.conn, row["email_id"], row["account"],
                                                    int(self.clock()), *released_by,
                                                    recipients=release_cost(json.loads(row["recipients"])))
                if within is not None:
                    within()
                return self._delete_rows(rows)

    def _delete_rows(self, rows: Sequence[sqlite3.Row]) -> Freed:
        """Delete the rows still there (inside the caller's transaction)."""
        count = size = 0
        for row in rows:
            if self.conn.execute("DELETE FROM messages WHERE id = ?", (row["id"],)).rowcount:
                self.conn.execute(
                    "UPDATE accounts SET used_bytes = used_bytes - ?, message_count = message_count - 1"
                    " WHERE id = ?", (row["size_bytes"], row["account_id"]))
                count += 1
                size += row["size_bytes"]
        return Freed(count, size)

    # -- purging -------------------------------------------------------

    PURGE_BATCH = 500

    def purge_account(self, name: Optional[str]) -> Freed:
        """Delete every message of an account (of all accounts for ``None``), in
        batches (each one a short transaction, files first), so that a purge of
        a million messages works on a full disk and never holds the writer long.
        Mail held while it runs is left alone."""
        where, args = scope_clause(name)
        newest = self.conn.execute(f"SELECT MAX(m.id) FROM messages m WHERE {where}", args).fetchone()[0]
        count = size = 0
        if newest is None:
            return Freed(0, 0)
        with self.space.freeing():
            while True:
                rows = self.conn.execute(
                    f"SELECT m.id, m.account_id, m.size_bytes, m.file FROM messages m"
                    f" WHERE {where} AND m.id <= ? ORDER BY m.id LIMIT ?",
                    (*args, newest, self.PURGE_BATCH)).fetchall()
                if not rows:
                    break
                self._unlink(r["file"] for r in rows)
                with durable(self.conn):
                    freed = self._delete_rows(rows)
                count, size = count + freed.count, size + freed.bytes
        return Freed(count, size)

    def remove_account_dirs(self, account_id: int) -> None:
        """Remove the (emptied) directories of a deleted subspace; a file left in
        them keeps its directory (never deleted blindly)."""
        try:
            with StorageFiles(self.storage) as files:
                for path, exc in files.remove_account(account_id):
                    log.warning("quarantine directory %s kept: %s", path, exc.strerror)
        except OSError as exc:
            log.warning("quarantine directories of account %s kept: %s", account_id, exc.strerror)

    # -- crash recovery --------------------------------------------------

    def reconcile(self) -> Tuple[int, int]:
        """Make files and rows agree after a crash; returns (files removed, rows removed)."""
        known = {r[0] for r in self.conn.execute("SELECT file FROM messages")}
        seen = set()
        orphan_files = 0
        unreadable: List[str] = []
        if self.storage.is_dir():
            with StorageFiles(self.storage) as files:
                for rel in list(files.walk(unreadable)):
                    if rel in known:
                        seen.add(rel)
                        continue
                    name = rel.rpartition("/")[2]
                    if name.startswith(TMP_PREFIX) or name.endswith(".eml"):
                        _unlink_one(files, rel, found=True)
                        orphan_files += 1
        # A directory the daemon may not read (made by hand as root, say) hides its files: their rows
        # are kept, not taken for lost, and the daemon starts all the same (mail must not wait on it).
        for directory in unreadable:
            log.error("quarantine: %s cannot be read by this process: the messages in it are kept, but cannot "
                      "be shown or released until it belongs to the quarantine's owner again (chown -R)",
                      self.storage / directory)
        missing = {rel for rel in known - seen if not any(rel.startswith(d + "/") for d in unreadable)}
        if missing:
            with durable(self.conn):
                for rel in missing:
                    row = self.conn.execute("SELECT id, account_id, size_bytes FROM messages WHERE file = ?",
                                            (rel,)).fetchone()
                    self.conn.execute("DELETE FROM messages WHERE id = ?", (row["id"],))
                    self.conn.execute(
                        "UPDATE accounts SET used_bytes = used_bytes - ?, message_count = message_count - 1"
                        " WHERE id = ?", (row["size_bytes"], row["account_id"]))
            log.error("quarantine: %d message row(s) had no file and were removed", len(missing))
        if orphan_files:
            log.warning("quarantine: removed %d file(s) of unacknowledged messages", orphan_files)
        return orphan_files, len(missing)
