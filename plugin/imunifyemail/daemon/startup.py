"""Before the daemon serves: its directories, its two sockets, the spawner, then the drop of root.

Started as root it prepares its directories, opens the filter socket (for
Exim's router) and the control socket (for the web app), forks the spawner
(which becomes the Exim user), then drops to ``_imunifyemail`` — keeping
Exim's group, to read the spool and cPanel's map — before the database is
opened, so every file it creates belongs to that user.

Whatever that user can write (the storage, the database files, the metrics
directory) it could have replaced by a link: root changes owners and modes
there by descriptor only (:mod:`..store.confined`), refusing a link. The
sockets' directory stays root's, so nobody else can swap a socket for a link
between its bind and its chown (here or in the web app's gunicorn).
"""
import grp
import os
import pwd
import socket
import stat
from pathlib import Path
from typing import NamedTuple, Optional

from .. import config, paths
from ..store import confined
from .spawner import Spawner


class Sockets(NamedTuple):
    filter: socket.socket      # Exim's router asks for verdicts
    control: socket.socket     # requests from the web app


class StartupError(Exception):
    pass


def gid_of(name: str, key: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise StartupError(f"config {key}: no such group {name!r}") from None


def metrics_gid(cfg: config.Config, daemon_gid: int) -> int:
    """The group that may read the metrics file (``metrics.group``; unset: the daemon's own)."""
    name = cfg["metrics"]["group"]
    return daemon_gid if name is None else gid_of(name, "metrics.group")


def _prepare_dir(path: Path, mode: int, uid: int, gid: int) -> None:
    try:
        confined.prepare_directory(path, mode, uid, gid)
    except confined.Refused as exc:
        raise StartupError(f"{exc.strerror} (remove it; the daemon makes the directory)") from None


def _own_database(storage: Path, uid: int, gid: int) -> None:
    """A root-run ie-cli may have created the database files first: they become the daemon's, by
    descriptor — in the daemon user's own directory, a link or a second name is refused."""
    for name in (paths.DATABASE.rpartition("/")[2] + suffix for suffix in ("", "-wal", "-shm")):
        try:
            confined.own_file(storage, name, uid, gid)
        except confined.Refused as exc:
            raise StartupError(f"{exc.strerror}: the database's files are plain files of the daemon's "
                               "user (remove it and see who made it)") from None


def open_socket(path: Path, uid: int, gid: int, mode: int = 0o660) -> socket.socket:
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise StartupError(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()   # stale socket of a dead daemon
        else:
            raise StartupError(f"{path}: another imunifyemaild is already listening")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o777 & ~mode)   # born with its mode: nothing to chmod by name
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    if os.geteuid() == 0:
        os.chown(path, uid, gid, follow_symlinks=False)
    sock.listen(128)
    sock.setblocking(False)
    return sock


def prepare(cfg: config.Config) -> Sockets:
    """Directories and sockets; drops root when started as root. Both sockets are the daemon's own
    (0600): Exim's routing asks as root, the web app runs as the daemon's user."""
    daemon_cfg = cfg["daemon"]
    socket_path = paths.system_path(cfg["exim"]["socket"])
    control_path = paths.system_path(paths.CONTROL_SOCKET)
    storage = paths.system_path(paths.STORAGE_DIR)
    metrics_dir = paths.system_path(cfg["metrics"]["textfile"]).parent
    if os.geteuid() != 0:
        storage.mkdir(parents=True, exist_ok=True)
        metrics_dir.mkdir(parents=True, exist_ok=True)
        socket_path.parent.mkdir(parents=True, exist_ok=True)
        return Sockets(open_socket(socket_path, os.getuid(), os.getgid(), 0o600),
                       open_socket(control_path, os.getuid(), os.getgid(), 0o600))
    try:
        user = pwd.getpwnam(daemon_cfg["user"])
    except KeyError:
        raise StartupError(f"config daemon.user: no such user {daemon_cfg['user']!r}") from None
    extra = [gid_of(name, "daemon.extra_groups") for name in daemon_cfg["extra_groups"]]
    metrics_group = metrics_gid(cfg, user.pw_gid)
    _prepare_dir(paths.system_path(paths.STATE_DIR), 0o755, 0, 0)
    _prepare_dir(paths.system_path(paths.QUARANTINE_DIR), 0o755, 0, 0)
    _prepare_dir(storage, 0o700, user.pw_uid, user.pw_gid)
    # The metrics file's directory: ours (the default) or one we create; a directory that exists
    # elsewhere (node_exporter's) is the administrator's to open to us, never re-owned here.
    # Ours is set-group-id: the file written in it takes the collector's group (metrics.group).
    if metrics_dir == paths.system_path(paths.METRICS_DIR) or not metrics_dir.exists():
        _prepare_dir(metrics_dir, 0o2750, user.pw_uid, metrics_group)
    _own_database(storage, user.pw_uid, user.pw_gid)
    # Root's, world-traversable: the web app's user socket in here is for every hosted user; each
    # socket's own mode and owner say who may connect. Nobody but root may rename in it.
    for run_dir in {socket_path.parent, control_path.parent}:
        _prepare_dir(run_dir, 0o755, 0, 0)
    sockets = Sockets(open_socket(socket_path, user.pw_uid, user.pw_gid, 0o600),
                      open_socket(control_path, user.pw_uid, user.pw_gid, 0o600))
    os.setgroups(sorted(set(extra)))
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    os.environ["HOME"] = "/"
    return sockets


def start_spawner(cfg: config.Config) -> Optional[Spawner]:
    """The Exim user's helper (``reinject.user``), forked while still root, before anything else is
    opened: it releases held mail and asks Exim to deliver deferred messages now. Unset, or not
    started as root: the daemon runs ``sendmail`` itself."""
    user = cfg["reinject"]["user"]
    if not user or os.geteuid() != 0:
        return None
    return Spawner.start(user, cfg["reinject"]["sendmail"])
