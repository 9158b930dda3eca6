"""The quarantine's filesystem: how much room is left, and a reserve for freeing it.

Two mechanisms keep the administrator's controls working on a full disk:

* the **floor** (:mod:`imunifyemail.core.headroom`): below it the store
  refuses new held mail (the daemon defers it), which leaves SQLite room for
  its journal;
* the **reserve**: a preallocated file of ``reserve_bytes`` beside the
  database. Everything that frees space (delete, purge, release) gives the
  reserve back to the filesystem first, so that SQLite can commit the
  deletion even when someone else filled the disk to 100%, then takes it
  again. Releasing it only ever makes room, so a crash in between is harmless.
"""
import errno
import fcntl
import logging
import os
import sqlite3
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from ..core.headroom import Floor, Space, admits, below_floor, floor_for, headroom

log = logging.getLogger(__name__)

RESERVE_NAME = ".reserve"
DEFAULT_RESERVE_BYTES = 8 << 20
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class StorageFull(Exception):
    """No room for held mail now; the message must be deferred, not lost."""


def is_full_error(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT from a file, or SQLite's "database or disk is full"."""
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)   # Python 3.11+
        return code == sqlite3.SQLITE_FULL if code is not None else "disk is full" in str(exc)
    return False


@dataclass(frozen=True)
class SpaceReport:
    space: Space
    floor: Floor

    @property
    def below_floor(self) -> bool:
        return below_floor(self.space, self.floor)

    @property
    def headroom(self) -> int:
        return headroom(self.space, self.floor)

    def describe(self) -> str:
        return (f"{self.space.free_bytes} bytes / {self.space.free_inodes} inodes free, "
                f"floor {self.floor.bytes} bytes / {self.floor.inodes} inodes")


class StorageSpace:
    def __init__(self, storage: Path, min_free_bytes: Optional[int] = None, min_free_inodes: Optional[int] = None,
                 reserve_bytes: int = DEFAULT_RESERVE_BYTES):
        self.storage = Path(storage)
        self.min_free_bytes = min_free_bytes
        self.min_free_inodes = min_free_inodes
        self.reserve_bytes = reserve_bytes

    @classmethod
    def from_config(cls, storage: Path, quarantine_cfg: dict) -> "StorageSpace":
        return cls(storage, quarantine_cfg["min_free_bytes"], quarantine_cfg["min_free_inodes"],
                   quarantine_cfg["reserve_bytes"])

    @property
    def reserve_file(self) -> Path:
        return self.storage / RESERVE_NAME

    # -- reading -------------------------------------------------------------

    def reading(self) -> Space:
        where = self.storage
        while not where.exists() and where != where.parent:   # not made yet: the filesystem it will be on
            where = where.parent
        st = os.statvfs(where)
        return Space(total_bytes=st.f_blocks * st.f_frsize, free_bytes=st.f_bavail * st.f_frsize,
                     total_inodes=st.f_files, free_inodes=st.f_favail)

    def report(self) -> SpaceReport:
        space = self.reading()
        return SpaceReport(space, floor_for(space, self.min_free_bytes, self.min_free_inodes))

    def check_room(self, incoming_bytes: int, freed_bytes: int = 0) -> None:
        """Raise :class:`StorageFull` unless a message of ``incoming_bytes`` leaves the floor free."""
        report = self.report()
        if not admits(report.space, report.floor, incoming_bytes, freed_bytes):
            raise StorageFull(f"quarantine filesystem {self.storage} is below its free-space floor "
                              f"({report.describe()})")

    # -- the reserve -----------------------------------------------------------
    # One open file with an flock: while a freeing operation has given the reserve
    # back, nobody else (the daemon's periodic top-up) may take the room it needs.

    def _open_reserve(self) -> Optional[int]:
        try:
            fd = os.open(self.reserve_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            log.warning("cannot open the quarantine reserve %s: %s", self.reserve_file, exc.strerror)
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:   # truncated and filled: never a file of elsewhere
            os.close(fd)
            log.warning("quarantine reserve %s is not a plain file of its own: left alone", self.reserve_file)
            return None
        if os.geteuid() == 0:   # a root CLI made it: it belongs to the storage's owner
            owner = os.stat(self.storage)
            if (st.st_uid, st.st_gid) != (owner.st_uid, owner.st_gid):
                os.fchown(fd, owner.st_uid, owner.st_gid)
        return fd

    def _fill(self, fd: int) -> bool:
        if os.fstat(fd).st_blocks * 512 >= self.reserve_bytes:
            return True
        try:
            os.posix_fallocate(fd, 0, self.reserve_bytes)
            return True
        except OSError as exc:
            os.ftruncate(fd, 0)   # all or nothing: a partial reserve would only hide the shortage
            if exc.errno not in _FULL_ERRNOS:
                log.warning("cannot allocate the quarantine reserve %s: %s", self.reserve_file, exc.strerror)
            return False

    def take_reserve(self) -> bool:
        """Make sure the reserve holds ``reserve_bytes`` of real blocks; False if
        there is no room for it now (the next freeing operation tries again)."""
        if self.reserve_bytes <= 0:
            return True
        fd = self._open_reserve()
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:   # being freed right now; it is taken back after that
            os.close(fd)
            return False
        try:
            return self._fill(fd)
        finally:
            os.close(fd)

    @contextmanager
    def freeing(self) -> Iterator[None]:
        """Around an operation that frees space: room to commit it even on a full disk."""
        if self.reserve_bytes <= 0:
            yield
            return
        fd = self._open_reserve()
        if fd is None:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            yield
        finally:
            try:
                self._fill(fd)
            finally:
                os.close(fd)
