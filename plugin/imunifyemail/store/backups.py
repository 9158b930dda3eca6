"""A copy of the database before a migration changes it.

Before the first migration a run applies to an existing database, the database is copied beside it
as ``<name>.v<schema>-<UTC YYYYmmdd-HHMMSS>.bak`` (``quarantine.db.v10-20250102-030405.bak``): a
complete SQLite file in rollback-journal mode, opened like any database (``sqlite3 FILE``), owned
and moded like the database. The copy is SQLite's online backup of the last committed state, the
WAL's content included, taken while the migrating connection holds the write lock, so nothing is
committed between the copy and the migration. It is written under a temporary name, fsynced and
renamed: a ``.bak`` file is always whole. The newest :data:`KEEP` backups stay; older ones go.
"""
import logging
import os
import re
import sqlite3
import stat
import time
from pathlib import Path
from typing import Callable, List, Tuple

from .space import is_full_error

log = logging.getLogger(__name__)

KEEP = 3   # backups of one database kept: the last three upgrades can be undone
TMP_SUFFIX = ".tmp"
_STAMP = "%Y%m%d-%H%M%S"


class BackupError(Exception):
    """No backup could be made; the caller migrates nothing."""


def backup_path(database: Path, version: int, at: float) -> Path:
    return database.with_name(f"{database.name}.v{version}-{time.strftime(_STAMP, time.gmtime(at))}.bak")


def _pattern(database: Path) -> "re.Pattern[str]":
    return re.compile(rf"{re.escape(database.name)}\.v(\d+)-(\d{{8}}-\d{{6}})\.bak({re.escape(TMP_SUFFIX)})?")


def _found(database: Path) -> Tuple[List[Path], List[Path]]:
    """(the database's backups newest first — by the time in their name, then the schema —, the
    temporary copies a crashed backup left)."""
    pattern = _pattern(database)
    done: List[Tuple[str, int, Path]] = []
    partial: List[Path] = []
    for entry in os.scandir(database.parent):
        m = pattern.fullmatch(entry.name)
        if m and entry.is_file(follow_symlinks=False):
            if m.group(3):
                partial.append(Path(entry.path))
            else:
                done.append((m.group(2), int(m.group(1)), Path(entry.path)))
    return [p for _, _, p in sorted(done, reverse=True)], partial


def existing(database: Path) -> List[Path]:
    """The database's backups, newest first."""
    return _found(database)[0]


def make(database: Path, version: int, clock: Callable[[], float] = time.time) -> Path:
    """Copy ``database`` (at schema ``version``) to its backup; :class:`BackupError` says why not, and
    nothing is left behind then. The caller holds the database's write lock."""
    target = backup_path(database, version, clock())
    tmp = target.with_name(target.name + TMP_SUFFIX)
    try:
        for stale in _found(database)[1]:   # nobody else backs up while we hold the write lock
            _remove(stale)
        owner = os.stat(database)
        _create_like(tmp, owner)
        _copy(database, tmp)
        os.rename(tmp, target)
        _fsync_directory(target.parent)
    except (OSError, sqlite3.Error) as exc:
        _remove(tmp)
        raise BackupError(_why(exc, database)) from None
    log.info("database %s at schema %d backed up to %s", database, version, target)
    return target


def _create_like(path: Path, owner: os.stat_result) -> None:
    """An empty file (an empty SQLite database) with the database's owner and mode, made by descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != (owner.st_uid, owner.st_gid):
            try:
                os.fchown(fd, owner.st_uid, owner.st_gid)
            except PermissionError:   # not root: the copy stays ours, in the same private directory
                log.warning("%s: cannot give it the database's owner %d:%d", path, owner.st_uid, owner.st_gid)
        os.fchmod(fd, stat.S_IMODE(owner.st_mode))
    finally:
        os.close(fd)


def _copy(database: Path, path: Path) -> None:
    # A connection of its own: SQLite refuses to back up from one that holds a write transaction
    # (the migrating one does); a reader sees the last commit, the WAL's included.
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, isolation_level=None)
    try:
        target = sqlite3.connect(str(path), isolation_level=None)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode = DELETE")   # one self-contained file, no -wal beside it
        finally:
            target.close()
    finally:
        source.close()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _why(exc: BaseException, database: Path) -> str:
    if is_full_error(exc):
        size = _size(database)
        return (f"no room on the filesystem of {database.parent} (a backup needs about {size} bytes): free space "
                f"there (older backups {database.name}.v*.bak may go) and start again")
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename or database.parent}"
    return str(exc)


def _size(database: Path) -> int:
    """The database's bytes, its WAL's included (a little more than its backup takes)."""
    total = 0
    for suffix in ("", "-wal"):
        try:
            total += os.stat(f"{database}{suffix}").st_size
        except OSError:
            pass
    return total


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + "-journal")):
        try:
            os.unlink(leftover)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove %s: %s", leftover, exc.strerror)


def discard(path: Path) -> None:
    """Remove a backup the migration did not need after all (it rolled back: the database is that copy)."""
    _remove(path)


def prune(database: Path, keep: int = KEEP) -> List[Path]:
    """Delete all but the newest ``keep`` backups; the ones deleted. Its failure is logged, never
    raised: the migration it follows is done."""
    gone = []
    try:
        for path in existing(database)[keep:]:
            os.unlink(path)
            gone.append(path)
    except OSError as exc:
        log.warning("pruning the backups of %s: %s", database, exc.strerror or exc)
    if gone:
        log.info("older backups of %s deleted (the newest %d kept): %s", database, keep,
                 ", ".join(p.name for p in gone))
    return gone
