"""Our Rspamd settings in Rspamd's override files, beside whatever the administrator keeps there.

Rspamd's stock ``rspamd.conf`` and ``modules.d/*.conf`` include fixed names only:
``$LOCAL_CONFDIR/local.d/NAME`` (priority 1, merged) and ``override.d/NAME`` (priority 10). Our
settings are files of the package, ``/usr/share/imunifyemail/rspamd/{local.d,override.d}/NAME``
(``rpm/rspamd/``); each ``/etc/rspamd/<dir>/NAME`` gets a marked block (:mod:`.marked_blocks`) that
includes ours::

    # BEGIN imunifyemail rspamd (...)
    .include(try=false; priority=2; duplicate=merge) "/usr/share/imunifyemail/rspamd/local.d/options.inc"
    # END imunifyemail rspamd

appended to the administrator's file, whose text stays byte for byte, or alone in a new file. In UCL
the higher priority replaces a key and equal priorities make a list of both values (two
``bind_socket`` are two listeners), so ours never share one with the administrator's (UCL keeps 4
bits of priority: 0-15):

- ``local.d``: 2, above the administrator's ``local.d`` (1), below Rspamd's dynamic settings (5) and
  ``override.d`` (10). For a key both set, ours applies; the administrator changes one of ours in
  ``override.d/NAME``, as Rspamd documents for overriding.
- ``override.d``: 15, the highest: nothing replaces our ``bind_socket`` (no TCP listener) or our
  ``enabled = false``. The administrator's other keys of a worker stay theirs.

``try=false``: should the package's file be gone while the block is there, Rspamd refuses to start
instead of listening on its stock TCP ports.

:func:`remove` (the RPM's erase) takes the blocks out again and deletes a file it made, unless lines
were added to it: the administrator's files are as they were before the install. Both are idempotent
and all or nothing: everything is read and checked before the first file is written, and a failed
write puts back the files already written.
"""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from . import admin_files, marked_blocks, paths
from .errors import ActionError

PRIORITIES = {"local.d": "priority=2; duplicate=merge", "override.d": "priority=15"}
BLOCK = "rspamd"
NOTE_ADDED = "the imunifyemail package's Rspamd settings, added to this file: removed when it is erased"
NOTE_MADE = ("the imunifyemail package's Rspamd settings, in a file it made: removed when it is erased, "
             "the file too unless lines were added")
_UNSAFE_IN_PATH = ('"', "\\", "$", "\n")   # UCL would read them as the string's end, an escape, a variable


class RspamdFilesError(ActionError):
    """Nothing was changed; says which file and why."""


# -- the files' text (no I/O) --------------------------------------------------------------------

def include(share: Path, subdir: str, name: str) -> str:
    """The line that includes the package's ``share/subdir/name``."""
    path = str(share / subdir / name)
    if any(c in path for c in _UNSAFE_IN_PATH) or not path.startswith("/"):
        raise RspamdFilesError(f"{path}: not a path Rspamd's .include can name")
    return f'.include(try=false; {PRIORITIES[subdir]}) "{path}"\n'


def _made_by_us(text: str) -> bool:
    return marked_blocks.found(text, BLOCK).startswith(f"{marked_blocks.BEGIN}{BLOCK} ({NOTE_MADE})")


def with_ours(text: Optional[str], line: str) -> str:
    """The file ``text`` (None: there is none) with our block around ``line``; ``text`` itself when it
    has that block already (wherever in the file)."""
    if text is None:
        return marked_blocks.render(BLOCK, NOTE_MADE, line)
    want = marked_blocks.render(BLOCK, NOTE_MADE if _made_by_us(text) else NOTE_ADDED, line)
    admin = marked_blocks.strip(text)   # also refuses a block without its END line
    if marked_blocks.present(text) == [BLOCK] and marked_blocks.found(text, BLOCK) == want:
        return text
    return marked_blocks.append(admin, want)


def without_ours(text: str) -> Optional[str]:
    """The file ``text`` without our block; None (delete it) when we made it and nothing was added."""
    admin = marked_blocks.strip(text)
    return None if admin == "" and _made_by_us(text) else admin


# -- the files -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    path: Path                 # /etc/rspamd/<dir>/<name>
    before: Optional[str]      # None: there was no file
    after: Optional[str]       # None: the file is deleted

    def describe(self) -> str:
        if self.after is None:
            return f"{self.path}: removed (it held only Imunify Email's settings)"
        if self.before is None:
            return f"{self.path}: made, with Imunify Email's settings"
        if marked_blocks.present(self.after) and marked_blocks.present(self.before):
            return f"{self.path}: Imunify Email's settings brought up to date (the rest of the file unchanged)"
        if marked_blocks.present(self.after):
            return f"{self.path}: Imunify Email's settings added (the rest of the file unchanged)"
        return f"{self.path}: Imunify Email's settings taken out (the rest of the file unchanged)"


def etc_dir() -> Path:
    return paths.system_path(paths.RSPAMD_ETC)


def share_dir() -> Path:
    return paths.system_path(paths.RSPAMD_SHARE)


def _read(path: Path) -> Optional[str]:
    """The file's text, None when there is none; refuses what cannot be read or rewritten in place."""
    real = admin_files.real(path)
    if path.is_symlink() and not real.exists():
        raise RspamdFilesError(f"{path}: a link to {real}, which does not exist: fix or remove the link")
    if not real.exists():
        return None
    if not real.is_file():
        raise RspamdFilesError(f"{path}: not a regular file")
    try:
        text = admin_files.read(real)
    except OSError as exc:
        raise RspamdFilesError(f"{path}: cannot be read ({exc.strerror})") from None
    if not os.access(real, os.W_OK) or not os.access(real.parent, os.W_OK | os.X_OK):
        raise RspamdFilesError(f"{path}: cannot be rewritten (read-only file system or immutable file?)")
    return text


def _shipped(share: Path) -> Dict[str, List[str]]:
    """subdir -> the names the package ships there."""
    shipped = {}
    for subdir in PRIORITIES:
        folder = share / subdir
        if not folder.is_dir():
            raise RspamdFilesError(f"{folder}: not found: is the imunifyemail package complete?")
        shipped[subdir] = sorted(f.name for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
        for name in shipped[subdir]:
            if not os.access(folder / name, os.R_OK):
                raise RspamdFilesError(f"{folder / name}: cannot be read")
    return shipped


def _carrying_ours(etc: Path, subdir: str) -> List[str]:
    """Names in ``etc/subdir`` whose file has one of our blocks."""
    folder = etc / subdir
    if not folder.is_dir():
        return []
    names = []
    for f in sorted(folder.iterdir()):
        if f.is_file() and not f.name.startswith("."):
            try:
                text = admin_files.read(f)
            except OSError as exc:
                raise RspamdFilesError(f"{f}: cannot be read ({exc.strerror})") from None
            if text is not None and marked_blocks.BEGIN in text:
                names.append(f.name)
    return names


def _change(path: Path, make) -> Optional[Change]:
    before = _read(path)
    try:
        after = make(before)
    except marked_blocks.BlockError as exc:
        raise RspamdFilesError(f"{path}: {exc}") from None
    return None if after == before else Change(path, before, after)


def _check_dir(etc: Path, subdir: str) -> None:
    folder = etc / subdir
    if not etc.is_dir():
        raise RspamdFilesError(f"{etc}: not found: is Rspamd installed?")
    if folder.exists() and not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
        raise RspamdFilesError(f"{folder}: not a directory we can write in")


def plan_install(etc: Path, share: Path) -> List[Change]:
    """What :func:`install` would change: our block in each file the package ships, out of any file
    it no longer ships."""
    shipped = _shipped(share)
    changes = []
    for subdir, names in shipped.items():
        _check_dir(etc, subdir)
        for name in names:
            line = include(share, subdir, name)
            changes.append(_change(etc / subdir / name, lambda text, line=line: with_ours(text, line)))
        for name in _carrying_ours(etc, subdir):
            if name not in names:
                changes.append(_change(etc / subdir / name, without_ours))
    return [c for c in changes if c is not None]


def plan_remove(etc: Path) -> List[Change]:
    changes = [_change(etc / subdir / name, without_ours)
               for subdir in PRIORITIES for name in _carrying_ours(etc, subdir)]
    return [c for c in changes if c is not None]


def apply(changes: List[Change]) -> None:
    """Write them all, or (a write failed) put back those written and raise."""
    done: List[Change] = []
    try:
        for change in changes:
            _write(change.path, change.after)
            done.append(change)
    except OSError as exc:
        for change in reversed(done):
            _write(change.path, change.before)
        raise RspamdFilesError(f"{change.path}: {exc.strerror or exc}; the files changed before it "
                               "are as they were") from None


def _write(path: Path, text: Optional[str]) -> None:
    if text is None:
        admin_files.delete(path)
    else:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        admin_files.replace(path, text)


def install(etc: Optional[Path] = None, share: Optional[Path] = None) -> List[Change]:
    changes = plan_install(etc or etc_dir(), share or share_dir())
    apply(changes)
    return changes


def remove(etc: Optional[Path] = None) -> List[Change]:
    changes = plan_remove(etc or etc_dir())
    apply(changes)
    return changes
