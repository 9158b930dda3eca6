"""``imunifyemaild``: the filter daemon (foreground; systemd supervises it).

Started as root it prepares its directories, opens its socket, then drops to
``_imunifyemail`` (keeping the ``mail`` group to read cPanel's map) before it
opens the database, so every file it creates belongs to that user.
"""
import argparse
import asyncio
import grp
import logging
import os
import pwd
import signal
import socket
import stat
import sys
import time
from pathlib import Path
from typing import Optional

from .. import __version__, config, paths
from ..cpanel import AccountDirectory
from ..store import db
from ..store.activity import Activity
from ..store.quarantine import Quarantine
from ..store.settings import SettingsCache
from ..store.space import StorageSpace
from .lmtp import FilterHandler, protocol_factory
from .pipeline import Filter, StoreWorker
from .retry import DirectKick, RetryLedger
from ..reinject import SCANNED, session_command
from .reinject import Reinjector
from .rspamd import RspamdClient
from .spawner import SpawnError, Spawner

log = logging.getLogger("imunifyemaild")


class StartupError(Exception):
    pass


def _gid(name: str, key: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise StartupError(f"config {key}: no such group {name!r}") from None


def _prepare_dir(path: Path, mode: int, uid: int, gid: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def _open_socket(path: Path, uid: int, gid: int) -> socket.socket:
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
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    if os.geteuid() == 0:
        os.chown(path, uid, gid)
    os.chmod(path, 0o660)
    sock.listen(128)
    sock.setblocking(False)
    return sock


def prepare(cfg: config.Config) -> socket.socket:
    """Directories and socket; drops root when started as root."""
    daemon_cfg, lmtp_cfg = cfg["daemon"], cfg["lmtp"]
    socket_gid = _gid(lmtp_cfg["socket_group"], "lmtp.socket_group")
    socket_path = paths.system_path(lmtp_cfg["socket"])
    storage = paths.system_path(paths.STORAGE_DIR)
    if os.geteuid() != 0:
        storage.mkdir(parents=True, exist_ok=True)
        socket_path.parent.mkdir(parents=True, exist_ok=True)
        return _open_socket(socket_path, os.getuid(), socket_gid)
    try:
        user = pwd.getpwnam(daemon_cfg["user"])
    except KeyError:
        raise StartupError(f"config daemon.user: no such user {daemon_cfg['user']!r}") from None
    extra = [_gid(name, "daemon.extra_groups") for name in daemon_cfg["extra_groups"]]
    state = paths.system_path(paths.STATE_DIR)
    _prepare_dir(state, 0o755, 0, 0)
    _prepare_dir(paths.system_path(paths.QUARANTINE_DIR), 0o755, 0, 0)
    _prepare_dir(storage, 0o700, user.pw_uid, user.pw_gid)
    database = paths.system_path(paths.DATABASE)
    for suffix in ("", "-wal", "-shm"):   # a root-run ie-cli may have created them first
        f = Path(str(database) + suffix)
        if f.exists():
            os.chown(f, user.pw_uid, user.pw_gid)
    _prepare_dir(socket_path.parent, 0o750, user.pw_uid, socket_gid)
    sock = _open_socket(socket_path, user.pw_uid, socket_gid)
    os.setgroups(sorted(set(extra)))
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    os.environ["HOME"] = "/"
    return sock


def start_spawner(cfg: config.Config) -> Optional[Spawner]:
    """Re-injection as the Exim user (``reinject.user``): forked while still root,
    before anything else is opened. Unset, or not started as root: the daemon
    runs ``sendmail`` itself."""
    user = cfg["reinject"]["user"]
    if not user or os.geteuid() != 0:
        return None
    return Spawner.start(user, session_command(cfg["reinject"]["sendmail"], SCANNED))


PRUNE_INTERVAL = 300.0


def _retry_kick(cfg: config.Config, spawner: Optional[Spawner]):
    """How deferred mail is handed back to Exim: as the Exim user when there is a spawner."""
    if spawner is None:
        return DirectKick(cfg["reinject"]["sendmail"])

    async def kick(ids) -> None:
        await asyncio.get_running_loop().run_in_executor(None, spawner.retry, ids)
    return kick


def _room_check(quarantine: Quarantine):
    async def has_room() -> bool:   # statvfs and the reserve: off the event loop
        def check() -> bool:
            quarantine.space.take_reserve()
            return not quarantine.space.report().below_floor
        return await asyncio.get_running_loop().run_in_executor(None, check)
    return has_room


async def _prune_periodically(store: StoreWorker, retention_seconds: int) -> None:
    while True:
        try:
            await store.call(store.activity.prune, retention_seconds)
        except Exception:  # a busy database now is no reason to stop pruning later
            log.exception("pruning Activity Monitor counters failed")
        await asyncio.sleep(PRUNE_INTERVAL)


async def serve(cfg: config.Config, sock: socket.socket, clock: db.Clock = time.time,
                stop: Optional[asyncio.Event] = None, spawner: Optional[Spawner] = None) -> None:
    """Serve until ``stop`` is set (SIGTERM/SIGINT set it when not given)."""
    database = paths.system_path(paths.DATABASE)
    conn = db.no_auto_checkpoint(db.connect(database))
    checkpointer = db.Checkpointer(database)
    checkpointer.start()
    storage = paths.system_path(paths.STORAGE_DIR)
    quarantine = Quarantine(conn, storage, cfg["quarantine"]["default_limit_bytes"], clock=clock,
                            space=StorageSpace.from_config(storage, cfg["quarantine"]))
    files, rows = quarantine.reconcile()
    log.info("quarantine reconciled: %d orphan file(s), %d orphan row(s)", files, rows)
    if not quarantine.space.take_reserve():
        log.warning("no room for the quarantine's %d-byte reserve yet: deleting on a full disk may fail",
                    quarantine.space.reserve_bytes)
    store = StoreWorker(quarantine, SettingsCache(conn, cfg["filter"]["spam_actions"]), Activity(conn, clock))
    rspamd = RspamdClient(cfg["rspamd"]["url"], cfg["rspamd"]["timeout"])
    reinjector = Reinjector(cfg["reinject"]["sendmail"], SCANNED, cfg["reinject"]["timeout"], spawner)
    deferrals = RetryLedger(_retry_kick(cfg, spawner), _room_check(quarantine))
    flt = Filter(store, rspamd, AccountDirectory(), reinjector, deferrals)
    handler = FilterHandler(flt, cfg["lmtp"]["max_recipients"])
    loop = asyncio.get_running_loop()
    factory = protocol_factory(handler, cfg["lmtp"]["max_message_bytes"],
                               _gid(cfg["lmtp"]["socket_group"], "lmtp.socket_group"))
    server = await loop.create_unix_server(factory, sock=sock)
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    pruner = asyncio.ensure_future(
        _prune_periodically(store, cfg["activity_monitor"]["retention_days"] * 86400))
    retrier = asyncio.ensure_future(deferrals.run())
    log.info("imunifyemaild %s listening on %s", __version__, sock.getsockname())
    await stop.wait()
    log.info("stopping: no new connections; finishing messages in flight")
    pruner.cancel()
    retrier.cancel()
    server.close()
    try:
        await asyncio.wait_for(server.wait_closed(), 30)
    except asyncio.TimeoutError:
        log.warning("messages still in flight after 30s: Exim will retry them")
    await reinjector.close()
    await rspamd.close()
    store.shutdown()
    checkpointer.stop()
    conn.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="imunifyemaild", description="imunifyemail outbound filter daemon")
    parser.add_argument("--check-config", action="store_true", help="validate the configuration and exit")
    parser.add_argument("--version", action="version", version=f"imunifyemaild {__version__}")
    args = parser.parse_args(argv)
    try:
        cfg = config.load()
    except config.ConfigError as exc:
        print(f"imunifyemaild: {exc}", file=sys.stderr)
        return 1
    if args.check_config:
        print("configuration OK")
        return 0
    logging.basicConfig(level=cfg["daemon"]["log_level"], stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiosmtpd logs every connection at INFO; our own line per message says what matters.
    logging.getLogger("mail.log").setLevel(max(logging.WARNING, logging.getLogger().level))
    spawner = None
    try:
        spawner = start_spawner(cfg)
        sock = prepare(cfg)
        asyncio.run(serve(cfg, sock, spawner=spawner))
    except (StartupError, SpawnError, db.DatabaseError) as exc:
        print(f"imunifyemaild: {exc}", file=sys.stderr)
        return 1
    finally:
        if spawner is not None:
            spawner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
