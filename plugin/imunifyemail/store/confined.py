"""Files in directories the daemon's user can write, reached by descriptor and never through a link.

The quarantine's storage directory belongs to ``_imunifyemail``, and so does the database that says
where each message is; root (``ie-cli``, the cPanel hooks, the daemon's start-up) reads, deletes and
re-owns files there. Whatever that user can write is therefore a path of its choosing, and root must
not follow it: a message's path is accepted only in the exact form the store writes
(``<account id>/<2 hex>/<uuid>.eml``) and walked one component at a time from a descriptor of the
storage directory with ``O_NOFOLLOW``; ownership and modes change by descriptor (``fchown``,
``fchmod``) on what was opened, never by name. A link, or anything but the expected kind of file,
is refused with :class:`Refused` (an ``OSError`` naming the path and why), never followed.
"""
import errno
import os
import re
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO put in a file's place is opened (then refused) instead of hanging the opener.
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
TMP_PREFIX = ".tmp-"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_STORED = re.compile(rf"([1-9][0-9]{{0,18}})/([0-9a-f]{{2}})/({re.escape(TMP_PREFIX)})?({_UUID})(\.eml)?")
FORM = "<account id>/<2 hex>/<uuid>.eml"

PathLike = Union[str, Path]


class Refused(OSError):
    """A path root must not take: not the form the store writes, a link, or the wrong kind of file."""

    def __init__(self, path: PathLike, why: str):
        super().__init__(errno.EPERM, f"{path}: {why}: refused")


def message_path(account_id: int, email_id: str) -> str:
    """The path, relative to the storage directory, the store gives a message's file."""
    return f"{int(account_id)}/{email_id[:2]}/{email_id}.eml"


def split_stored(rel: str, email_id: Optional[str] = None) -> Tuple[str, str, str]:
    """(account directory, shard directory, file name) of a stored message's path, or :class:`Refused`
    unless it is exactly what :func:`message_path` (or the write's temporary name) gives — for
    ``email_id``, when given."""
    found = _STORED.fullmatch(rel) if isinstance(rel, str) else None
    if found is None or found.group(2) != found.group(4)[:2] or bool(found.group(3)) == bool(found.group(5)):
        raise Refused(repr(rel), f"not a quarantine file path ({FORM})")
    if email_id is not None and (found.group(3) or found.group(4) != email_id):
        raise Refused(repr(rel), f'not the quarantine file of email "{email_id}"')
    account, shard, name = rel.split("/")
    return account, shard, name


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "is a symbolic link"
    if exc.errno == errno.ENOTDIR:
        return "is not a directory"
    return exc.strerror or str(exc)


def open_directory(path: PathLike, dir_fd: Optional[int] = None, shown: Optional[PathLike] = None) -> int:
    """A descriptor of the directory at ``path`` (in ``dir_fd``; ``shown`` in messages); :class:`Refused`
    if it is a link or not a directory. Other errors (missing, no permission) are raised as they are."""
    try:
        return os.open(path, DIRECTORY, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        why = _why(exc)
    try:   # O_DIRECTORY|O_NOFOLLOW says ENOTDIR of a link: tell which it was
        if stat.S_ISLNK(os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            why = "is a symbolic link"
    except OSError:
        pass
    raise Refused(path if shown is None else shown, why)


def prepare_directory(path: Path, mode: int, uid: int, gid: int) -> None:
    """Make ``path`` a directory of ``uid``:``gid`` with ``mode``, changed on the directory opened
    (a link put in its place is refused, never followed). Its parents are made as they are: they
    are root's (the caller's) to choose."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, 0o700)   # private until it has its owner and mode
    except FileExistsError:
        pass
    fd = open_directory(path)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def open_lone_file(dir_fd: int, name: str, shown: PathLike, flags: int = _FILE) -> int:
    """A descriptor of ``name`` in ``dir_fd`` if it is a regular file with no other name (a hard link
    to a file elsewhere is as bad as a symbolic one); :class:`Refused` otherwise."""
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO):   # ENXIO: a socket
            raise Refused(shown, _why(exc) if exc.errno != errno.ENXIO else "is not a regular file") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        raise Refused(shown, "is not a regular file" if not stat.S_ISREG(st.st_mode)
                      else f"has {st.st_nlink} hard links")
    return fd


def own_file(directory: Path, name: str, uid: int, gid: int) -> bool:
    """Give the file ``name`` of ``directory`` to ``uid``:``gid`` by descriptor; False if there is no
    such file. A link or anything but a lone regular file is :class:`Refused`."""
    dir_fd = open_directory(directory)
    try:
        try:
            fd = open_lone_file(dir_fd, name, directory / name)
        except FileNotFoundError:
            return False
        try:
            st = os.fstat(fd)
            if (st.st_uid, st.st_gid) != (uid, gid):
                os.fchown(fd, uid, gid)
        finally:
            os.close(fd)
        return True
    finally:
        os.close(dir_fd)


@contextmanager
def acting_as_owner_of(directory: Path) -> Iterator[None]:
    """Root, within: acts as the owner of ``directory`` (effective uid and gid), so that whatever it
    opens in there by name — SQLite opening the database — it opens with no more right than that
    owner: a link to a file of root's is not followed into it. Anyone else: no change."""
    if os.geteuid() != 0:
        yield
        return
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        yield
        return
    if st.st_uid == 0:
        yield
        return
    egid = os.getegid()
    os.setegid(st.st_gid)
    try:
        os.seteuid(st.st_uid)
        try:
            yield
        finally:
            os.seteuid(0)
    finally:
        os.setegid(egid)


class StorageFiles:
    """The message files under one storage directory, within ``with``: one descriptor of the
    directory (opened ``O_NOFOLLOW``) and of each account and shard directory walked to."""

    def __init__(self, storage: Path, create: bool = False):
        self.storage = Path(storage)
        self.create = create   # make the storage directory if there is none yet
        self._top: Optional[int] = None
        self._dirs: Dict[Tuple[str, ...], int] = {}
        self._unsynced: Dict[int, None] = {}   # directories written into whose fsync is still due

    def __enter__(self) -> "StorageFiles":
        try:
            self._top = open_directory(self.storage)
        except FileNotFoundError:
            if not self.create:
                raise
            self.storage.mkdir(parents=True, exist_ok=True)
            self._top = open_directory(self.storage)
        return self

    def __exit__(self, *exc) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()
        if self._top is not None:
            os.close(self._top)
            self._top = None

    def _dir(self, *names: str, create: bool = False) -> int:
        """The directory ``names`` below the storage directory, each step ``O_NOFOLLOW``; made (0700,
        its parent fsynced) when ``create``."""
        if not names:
            return self._top
        fd = self._dirs.get(names)
        if fd is not None:
            return fd
        parent = self._dir(*names[:-1], create=create)
        if create:
            try:
                os.mkdir(names[-1], 0o700, dir_fd=parent)
            except FileExistsError:
                pass
            else:
                os.fsync(parent)
        fd = open_directory(names[-1], dir_fd=parent, shown=self._shown(*names))
        self._dirs[names] = fd
        return fd

    def _shown(self, *names: str) -> Path:
        return self.storage.joinpath(*names)

    # -- messages -------------------------------------------------------------

    def write(self, account_id: int, email_id: str, raw: bytes, sync_directory: bool = True) -> str:
        """Store ``raw`` durably as the message's file: written under a temporary name, fsynced,
        renamed into place, its directory fsynced — or, with ``sync_directory`` False, left for
        :meth:`sync_directories` (several files, one fsync of their directory). Returns its path
        relative to the storage."""
        rel = message_path(account_id, email_id)
        account, shard, name = split_stored(rel, email_id)
        directory = self._dir(account, shard, create=True)
        tmp = TMP_PREFIX + email_id
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=directory)
        try:
            view = memoryview(raw)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp, dir_fd=directory)   # a half-written file must not wait for reconcile() to go
            raise
        os.close(fd)
        os.rename(tmp, name, src_dir_fd=directory, dst_dir_fd=directory)
        if sync_directory:
            os.fsync(directory)
        else:
            self._unsynced[directory] = None
        return rel

    def sync_directories(self) -> None:
        """fsync the directories :meth:`write` left unsynced: their new names are on disk after this."""
        while self._unsynced:
            directory = next(iter(self._unsynced))
            os.fsync(directory)
            del self._unsynced[directory]

    def read(self, rel: str, email_id: Optional[str] = None) -> bytes:
        """The bytes of the stored file ``rel`` (of ``email_id`` when given)."""
        account, shard, name = split_stored(rel, email_id)
        fd = open_lone_file(self._dir(account, shard), name, self._shown(account, shard, name))
        with os.fdopen(fd, "rb") as fh:
            return fh.read()

    def unlink(self, rel: str) -> None:
        """Delete the stored file ``rel`` (FileNotFoundError when it, or its directory, is gone)."""
        account, shard, name = split_stored(rel)
        os.unlink(name, dir_fd=self._dir(account, shard))

    def unlink_found(self, rel: str) -> None:
        """Delete a file :meth:`walk` found, whatever its name (a leftover of a crash)."""
        names = rel.split("/")
        if len(names) < 2 or any(n in ("", ".", "..") for n in names):
            raise Refused(repr(rel), "not a path below the storage directory")
        os.unlink(names[-1], dir_fd=self._dir(*names[:-1]))

    def remove_account(self, account_id: int) -> Iterator[Tuple[Path, OSError]]:
        """Remove an account's (emptied) directories; yields each one kept and why (a file left in it
        is never deleted blindly, a link is removed as a name, never followed)."""
        account = str(int(account_id))
        try:
            fd = self._dir(account)
        except FileNotFoundError:
            return
        for entry in list(os.scandir(fd)):
            if entry.is_dir(follow_symlinks=False):
                try:
                    os.rmdir(entry.name, dir_fd=fd)
                except OSError as exc:
                    yield self._shown(account, entry.name), exc
        for names in [n for n in self._dirs if n[0] == account]:
            os.close(self._dirs.pop(names))
        try:
            os.rmdir(account, dir_fd=self._top)
        except OSError as exc:
            yield self._shown(account), exc

    def walk(self, unreadable: Optional[List[str]] = None) -> Iterator[str]:
        """The path (relative to the storage) of every file below the storage's own top level, found
        without descending into a link. A directory this process may not read is passed over and its
        relative path added to ``unreadable`` (its files are neither seen nor missing)."""
        yield from self._walk(self._top, (), unreadable)

    def _walk(self, fd: int, names: Tuple[str, ...], unreadable: Optional[List[str]]) -> Iterator[str]:
        for entry in list(os.scandir(fd)):
            if entry.is_dir(follow_symlinks=False):
                try:
                    sub = open_directory(entry.name, dir_fd=fd)
                except (Refused, FileNotFoundError):   # replaced or gone meanwhile
                    continue
                except PermissionError:
                    if unreadable is None:
                        raise
                    unreadable.append("/".join(names + (entry.name,)))
                    continue
                try:
                    yield from self._walk(sub, names + (entry.name,), unreadable)
                finally:
                    os.close(sub)
            elif names:
                yield "/".join(names + (entry.name,))
