"""Reading and rewriting a configuration file we share with the administrator (``/etc/exim.conf.local``,
``/etc/rspamd/local.d/*``): byte for byte, atomically, keeping what the administrator gave it.

Text is read and written with ``surrogateescape``: bytes that are not UTF-8 go back out unchanged. A
rewrite goes to a temporary file in the same directory, renamed over the file, so a reader (Rspamd,
``buildeximconf``) sees the old file or the new one, never half of one; the file keeps its mode and
owner (a new one is root's, 0644). A symbolic link is followed: the file it names is rewritten and the
link stays (configuration management often links these files).
"""
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Optional

NEW_FILE_MODE = 0o644


def real(path: Path) -> Path:
    """The file ``path`` names: itself, or what its symbolic link points at."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def read(path: Path) -> Optional[str]:
    """The file's text, or None when there is no file."""
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return None


def replace(path: Path, text: str) -> None:
    """Atomically; keeps the file's owner and mode (new file: root, 0644)."""
    target = real(path)
    try:
        st = target.stat()
        mode, owner = st.st_mode & 0o7777, (st.st_uid, st.st_gid)
    except FileNotFoundError:
        mode, owner = NEW_FILE_MODE, None
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=str(target.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if owner is not None and os.geteuid() == 0:
            os.chown(tmp, *owner)
        os.rename(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def delete(path: Path) -> None:
    """The file, if there is one (a link: the link only, never the file it names)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
