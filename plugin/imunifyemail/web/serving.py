"""How gunicorn serves the web app (read by ``gunicorn.conf.py``; the ``imunifyemail-web`` command).

The master runs as root: it binds the two unix sockets, makes the per-install
secret at first start, and then sets who may connect — ``admin.sock`` root
only (WHM's CGI runs as root), ``user.sock`` every local user (the app tells
them apart by the socket peer's uid). Workers run as ``_imunifyemail``, with
its own group alone: none of Exim's (``mail``), which the daemon keeps.

The sandbox alone adds a loopback HTTP listener (``IMUNIFYEMAIL_WEB_DEV_LISTEN``,
e.g. ``127.0.0.1:8765``) with an identity chooser; any other address is refused.
"""
import ipaddress
import logging
import os
import pwd
import secrets
import stat
import sys
from pathlib import Path
from typing import List, Optional, Tuple

from .. import config, paths
from ..store import confined

DEV_LISTEN_ENV = "IMUNIFYEMAIL_WEB_DEV_LISTEN"
SECRET_BYTES = 32

log = logging.getLogger(__name__)


class ServingError(Exception):
    pass


def dev_listener() -> Optional[Tuple[str, int]]:
    """The sandbox's loopback listener, if asked for; anything but a loopback address is refused."""
    value = os.environ.get(DEV_LISTEN_ENV, "").strip()
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    try:
        if not sep or not ipaddress.ip_address(host).is_loopback or not 0 < int(port) < 65536:
            raise ValueError
    except ValueError:
        raise ServingError(f"{DEV_LISTEN_ENV}={value!r}: the development listener must be a loopback "
                           "address and port (e.g. 127.0.0.1:8765)") from None
    return host, int(port)


def binds() -> List[str]:
    out = [f"unix:{paths.system_path(paths.ADMIN_SOCKET)}", f"unix:{paths.system_path(paths.USER_SOCKET)}"]
    dev = dev_listener()
    if dev is not None:
        out.append(f"[{dev[0]}]:{dev[1]}" if ":" in dev[0] else f"{dev[0]}:{dev[1]}")
    return out


def worker_account() -> Optional[pwd.struct_passwd]:
    """``daemon.user`` of the config when started as root (workers never run as root)."""
    if os.geteuid() != 0:
        return None
    name = config.load()["daemon"]["user"]
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ServingError(f"config daemon.user: no such user {name!r}") from None


def keep_groups(owner: Optional[pwd.struct_passwd]) -> None:
    """The workers' supplementary groups: their own group alone (not the master's, root's). Not the
    daemon's ``extra_groups`` either: Exim's group reads the whole spool, and the pages need none
    of it (an account is found by ``/var/cpanel/users/<name>``, mail through the daemon)."""
    if owner is None:
        return
    os.setgroups([owner.pw_gid])


def ensure_secret(owner: Optional[pwd.struct_passwd]) -> Path:
    """The per-install secret: made at first start (0600, the workers' user), never a default."""
    path = paths.system_path(paths.WEB_SECRET)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _make_secret(path)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
    return path


def _make_secret(path: Path) -> None:
    """Written whole, on disk, under a name of its own, then linked into place: a first start killed
    halfway (``systemctl restart`` during it, a crash) leaves no empty secret that would stop every
    start after it. A start that made one meanwhile wins: its secret is kept."""
    tmp = path.with_name(path.name + ".new")
    try:
        tmp.unlink()   # left by a start that died here
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(SECRET_BYTES) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink()


def prepare(owner: Optional[pwd.struct_passwd]) -> None:
    """In the master, before binding: the runtime directory, and a usable secret."""
    run_dir = paths.system_path(paths.ADMIN_SOCKET).parent
    if os.geteuid() == 0:
        # Root's (as the daemon leaves it): gunicorn chowns each socket by name right after binding
        # it, so nobody else may be able to put a link in its place meanwhile.
        try:
            confined.prepare_directory(run_dir, 0o755, 0, 0)
        except confined.Refused as exc:
            raise ServingError(exc.strerror) from None
    elif not run_dir.is_dir():   # systemd's RuntimeDirectory= makes it; a bare start makes it here
        run_dir.mkdir(parents=True, mode=0o755)
    ensure_secret(owner)
    read_secret()


def read_secret() -> bytes:
    """The secret, or ServingError: missing, too short, or readable by others."""
    path = paths.system_path(paths.WEB_SECRET)
    try:
        st = os.stat(path, follow_symlinks=False)
        text = path.read_text().strip()
    except OSError as exc:
        raise ServingError(f"{path}: {exc.strerror}: start imunifyemail-web as root once to create it") from None
    if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077:
        raise ServingError(f"{path}: must be a plain file readable by its owner only (mode 0600)")
    if len(text) < SECRET_BYTES * 2:
        raise ServingError(f"{path}: too short to be a secret")
    return text.encode()


def restrict_sockets() -> None:
    """admin.sock: root only; user.sock: every local user (identified by the app)."""
    admin = paths.system_path(paths.ADMIN_SOCKET)
    user = paths.system_path(paths.USER_SOCKET)
    if os.geteuid() == 0:
        os.chown(admin, 0, 0, follow_symlinks=False)
    os.chmod(admin, 0o600)
    os.chmod(user, 0o666)


def main() -> None:
    """``imunifyemail-web``: gunicorn with the packaged ``gunicorn.conf.py`` (foreground)."""
    from gunicorn.app.wsgiapp import run
    conf = Path(__file__).with_name("gunicorn.conf.py")
    sys.argv = [sys.argv[0], "--config", str(conf), *sys.argv[1:]]
    run()
