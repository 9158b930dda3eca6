"""``imunifyemaild``: the filter daemon (foreground; systemd supervises it).

:mod:`.startup` prepares it as root (directories, sockets, spawner) and drops
to ``_imunifyemail``; :func:`serve` then answers Exim's router (verdicts) and the web
app over the control socket until SIGTERM.
"""
import argparse
import asyncio
import logging
import pwd
import signal
import sys
import time
from typing import Optional

import uvloop

from .. import __version__, config, paths, sdnotify
from ..context import Context
from ..core.metrics import MailCounters
from ..cpanel import AccountDirectory
from ..exim.queue import deferred_by_filter, still_deferred_by_filter
from ..exim.spool import Spool
from ..ops.audit import insert_daemon
from ..store import db
from ..store.quarantine import Quarantine
from ..store.settings import SettingsCache
from .autorelease import EVERY as AUTO_RELEASE_EVERY, AutoReleaser, interrupted
from .control import ControlServer, releaser_for
from .incoming import Incoming
from .metrics import MetricsFile
from .pipeline import LocalDomains, Pipeline
from .store_worker import Reader, StoreWorker
from .retry import DirectKick, RetryLedger
from ..rspamd import RspamdClient
from .scanner import Scanner
from .scanning import Checks, ScanGate, wait_turn_seconds
from .spawner import SpawnError, Spawner
from .startup import Sockets, StartupError, prepare, start_spawner

log = logging.getLogger("imunifyemaild")


PRUNE_INTERVAL = 300.0


def _retry_kick(cfg: config.Config, spawner: Optional[Spawner]):
    """How deferred mail is handed back to Exim: as the Exim user when there is a spawner."""
    if spawner is None:
        return DirectKick(cfg["reinject"]["sendmail"])

    async def kick(ids) -> None:
        await asyncio.get_running_loop().run_in_executor(None, spawner.retry, ids)
    return kick


def exim_uid(cfg: config.Config, spool: Spool) -> Optional[int]:
    """The Exim user's uid (its own messages, bounces, are the server's): ``reinject.user``, else the
    owner of Exim's spool directory."""
    user = cfg["reinject"]["user"]
    try:
        return pwd.getpwnam(user).pw_uid if user else spool.directory.stat().st_uid
    except (KeyError, OSError) as exc:
        log.warning("cannot tell the Exim user (%s): Exim's own bounces will count as unverified mail", exc)
        return None


SETTLE = 30.0   # by then every delivery attempt that began before we listened has logged its outcome


async def _after_an_outage(spool: Spool, deferrals: RetryLedger, settle: float = SETTLE) -> None:
    """At start: what Exim deferred because we were not answering waits for its retry time (an
    hour or more); have it delivered now instead. Looked for twice: an attempt that failed just
    before we listened may log its deferral only after the first look."""
    for look in (0, 1):
        if look:
            await asyncio.sleep(settle)
        try:
            waiting = await asyncio.get_running_loop().run_in_executor(None, deferred_by_filter, spool)
        except OSError as exc:
            log.warning("cannot look at Exim's spool %s: %s", spool.directory, exc.strerror)
            return
        for exim_id in waiting:
            deferrals.remember(exim_id)
        if waiting:
            log.info("%d message(s) in Exim's queue deferred while the filter was away: asking for them now",
                     len(waiting))
            await deferrals.retry_now()


def _still_waiting(spool: Spool):
    async def still_waiting(ids):   # reads the spool: off the event loop
        return await asyncio.get_running_loop().run_in_executor(None, still_deferred_by_filter, spool, ids)
    return still_waiting


def _room_check(quarantine: Quarantine):
    async def headroom() -> int:   # statvfs and the reserve: off the event loop
        def check() -> int:
            quarantine.space.take_reserve()
            return quarantine.space.report().headroom
        return await asyncio.get_running_loop().run_in_executor(None, check)
    return headroom


async def _prune_periodically(store: StoreWorker, retention_seconds: int) -> None:
    while True:
        try:
            await store.call(store.activity.prune, retention_seconds, insert_daemon)
        except Exception:  # a busy database now is no reason to stop pruning later
            log.exception("pruning Activity Monitor counters failed")
        await asyncio.sleep(PRUNE_INTERVAL)


async def serve(cfg: config.Config, sockets: Sockets, clock: db.Clock = time.time,
                stop: Optional[asyncio.Event] = None, spawner: Optional[Spawner] = None,
                auto_release_every: float = AUTO_RELEASE_EVERY) -> None:
    """Serve until ``stop`` is set (SIGTERM/SIGINT set it when not given). ``clock`` is every time
    window's (limits, automatic release, containment): the tests' way to move time."""
    ctx = Context(clock=clock, cfg=cfg, auto_checkpoint=False)   # the mail path's connection
    # Opened (created, migrated) before the checkpointer's own connection: two connections
    # creating the database at once can find it locked ("database is locked" at a first start).
    quarantine = ctx.quarantine
    checkpointer = db.Checkpointer(ctx.database)
    checkpointer.start()
    files, rows = quarantine.reconcile()
    log.info("quarantine reconciled: %d orphan file(s), %d orphan row(s)", files, rows)
    if not quarantine.space.take_reserve():
        log.warning("no room for the quarantine's %d-byte reserve yet: deleting on a full disk may fail",
                    quarantine.space.reserve_bytes)
    store = StoreWorker(quarantine, SettingsCache(ctx.conn, cfg["filter"]["spam_actions"], clock), ctx.activity)
    left = interrupted(store)
    if left:
        log.warning("%d held rate-limited message(s) claimed by a release that did not finish (or ie-cli's, "
                    "running now): automatic release leaves them to the administrator (they may have been sent)",
                    left)
    counters = MailCounters(clock())
    rspamd = RspamdClient(cfg["rspamd"]["url"], cfg["rspamd"]["timeout"], counters)
    spool = Spool(paths.system_path(cfg["exim"]["spool_directory"]))
    gate = ScanGate(rspamd, cfg["rspamd"]["concurrency"],
                    wait_turn_seconds(cfg["exim"]["timeout"], cfg["rspamd"]["timeout"]))
    deferrals = RetryLedger(_retry_kick(cfg, spawner), _room_check(quarantine), _still_waiting(spool),
                            rspamd_ready=gate.available, wall=clock)
    checks = Checks(gate, deferrals, clock, cfg["rspamd"]["unavailable"], cfg["rspamd"]["max_wait"])
    reader = Reader(db.connect(ctx.database, readonly=True), cfg["filter"]["spam_actions"], clock)
    pipeline = Pipeline(store, reader, checks, AccountDirectory(), spool,
                        LocalDomains(paths.system_path(paths.LOCALDOMAINS)),
                        deferrals, counters, exim_uid=exim_uid(cfg, spool))
    incoming = Incoming(store, reader, gate, pipeline.directory, spool, clock)
    scanner = Scanner(pipeline, late_after=cfg["exim"]["timeout"], incoming=incoming)
    loop = asyncio.get_running_loop()
    server = await loop.create_unix_server(scanner.protocol, sock=sockets.filter)
    control = ControlServer(Context(clock=clock, cfg=cfg, releaser=lambda c: releaser_for(c, spawner, counters)))
    m = cfg["metrics"]
    metrics = MetricsFile(paths.system_path(m["textfile"]), m["interval"], m["top_accounts"], counters, store, spool)
    control_server = await loop.create_unix_server(control.protocol, sock=sockets.control)
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    pruner = asyncio.ensure_future(
        _prune_periodically(store, cfg["activity_monitor"]["retention_days"] * 86400))
    retrier = asyncio.ensure_future(deferrals.run())
    catch_up = asyncio.ensure_future(_after_an_outage(spool, deferrals))
    auto = AutoReleaser(store, releaser_for(cfg, spawner, counters).send, auto_release_every)
    auto_releasing = asyncio.ensure_future(auto.run())
    metrics_writer = asyncio.ensure_future(metrics.run())
    log.info("imunifyemaild %s listening on %s", __version__, sockets.filter.getsockname())
    await stop.wait()
    log.info("stopping: no new questions; finishing the answers in progress")
    pruner.cancel()
    retrier.cancel()
    catch_up.cancel()
    auto.stop()
    metrics_writer.cancel()
    control_server.close()
    server.close()
    await scanner.close()   # answers being worked out are finished (Exim's timeout aside)
    await auto_releasing    # a message being re-injected is finished, the rest given back
    await rspamd.close()
    store.shutdown()
    reader.close()
    control.close()
    checkpointer.stop()
    ctx.close()


def main(argv=None, clock: db.Clock = time.time, auto_release_every: float = AUTO_RELEASE_EVERY) -> int:
    """The console script (``clock``, ``auto_release_every``: for the test harness's wrapper,
    devtools/clocked_daemon.py; nothing on the command line moves time)."""
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
    systemd = sdnotify.take_address()
    spawner = None
    try:
        spawner = start_spawner(cfg)
        sockets = prepare(cfg)
        # Ready for systemd once both sockets listen with their owners: questions wait in their
        # backlog while the database opens (a long migration must not run into a start timeout).
        sdnotify.ready(systemd)
        # uvloop: the same asyncio API with its loop, sockets and transports in C (daemon CPU per
        # message, issue 18); the in-process test harness runs serve() on asyncio's own loop.
        uvloop.run(serve(cfg, sockets, clock=clock, spawner=spawner, auto_release_every=auto_release_every))
    except (StartupError, SpawnError, db.DatabaseError) as exc:
        print(f"imunifyemaild: {exc}", file=sys.stderr)
        return 1
    finally:
        if spawner is not None:
            spawner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
