"""What ``ie-config status`` reports: is the product doing its job, in one look.

:func:`collect` gathers each part on its own, and none raises: a part that cannot be read is
:class:`Unreadable` with the reason, so the status of a half-broken server is still shown. Each
service is judged by what answers on its socket, not by what systemd says. The ``--json`` shape is
:func:`imunifyemail.shapes.status`, the text :func:`imunifyemail.cli.output.status_text`.
"""
import asyncio
import errno
import http.client
import os
import sqlite3
import stat
import time
from typing import Dict, NamedTuple, Optional, Union

from .. import __version__, config, paths
from ..context import Context
from ..core import metrics as metrics_file
from ..core.features import Features
from ..rspamd import RspamdClient
from ..exim import patcher, queue, services
from ..exim.queue import QueueSummary
from ..exim.spool import Spool
from ..protocol import clients, scan
from ..store import db, settings
from ..store.space import SpaceReport
from ..unix_http import UnixHTTPConnection

PROBE_TIMEOUT = 3.0
WEB_SOCKETS = (("admin_socket", paths.ADMIN_SOCKET), ("user_socket", paths.USER_SOCKET))


class Unreadable(NamedTuple):
    """A part that could not be read, and why."""
    error: str


class FilterState(NamedTuple):
    exim_conf_local: bool   # our blocks in /etc/exim.conf.local
    exim_conf: bool         # the built /etc/exim.conf (what Exim runs) routes to the filter
    incoming_wanted: bool = False   # ie-config enable-incoming was run (and not undone)
    incoming_active: bool = False   # /etc/exim.conf routes local recipients to the incoming filter

    @property
    def enabled(self) -> bool:
        return self.exim_conf_local and self.exim_conf


class DaemonState(NamedTuple):
    service: str   # what systemd says
    running: bool  # the filter socket answers the router's question
    socket: str


class WebState(NamedTuple):
    service: str
    sockets: Dict[str, str]     # admin_socket, user_socket -> path
    answers: Dict[str, bool]    # the same names -> GET /healthz answered

    @property
    def running(self) -> bool:
        return all(self.answers.values())


class RspamdState(NamedTuple):
    url: str
    reachable: bool


class QuarantineTotals(NamedTuple):
    emails: int
    size_bytes: int
    accounts: int   # accounts holding mail


class DiskState(NamedTuple):
    path: str
    report: SpaceReport


class MetricsState(NamedTuple):
    """The metrics file as the daemon last wrote it (never computed here: the counters are the
    daemon's). ``enabled`` None: the setting could not be read (``error`` says why)."""
    enabled: Optional[bool]
    textfile: str
    interval: int
    error: Optional[str] = None
    written_at: Optional[int] = None
    age_seconds: Optional[int] = None
    samples: Optional[Dict[str, float]] = None


class Status(NamedTuple):
    version: str
    filter: FilterState
    daemon: DaemonState
    web: WebState
    rspamd: RspamdState
    queue: Union[QueueSummary, Unreadable]
    quarantine: Union[QuarantineTotals, Unreadable]
    disk: Union[DiskState, Unreadable]
    metrics: MetricsState


def collect(cfg: config.Config) -> Status:
    socket_path = str(paths.system_path(cfg["exim"]["socket"]))
    filter_state = FilterState(patcher.filter_configured(), patcher.filter_active(), patcher.incoming_wanted(),
                               patcher.incoming_active())
    queue_state = queue_summary(Spool(paths.system_path(cfg["exim"]["spool_directory"])))
    return Status(
        version=__version__,
        filter=filter_state,
        daemon=DaemonState(services.state(services.DAEMON_UNIT), daemon_answers(socket_path), socket_path),
        web=web_state(),
        rspamd=RspamdState(cfg["rspamd"]["url"], rspamd_answers(cfg["rspamd"]["url"])),
        queue=queue_state,
        quarantine=quarantine_totals(cfg),
        disk=disk_space(cfg),
        metrics=metrics(cfg),
    )


# -- what answers -----------------------------------------------------------------

def daemon_answers(socket_path: str) -> bool:
    """The filter socket answers a router's question (an address test: no message needed)."""
    try:
        return clients.ask(socket_path, "", "probe@status.invalid", PROBE_TIMEOUT).get("verdict") == scan.PASS
    except OSError:
        return False


def web_answers(socket_path: str) -> bool:
    """The web app serves on this socket: ``GET /healthz`` answers ``200 ok``."""
    conn = UnixHTTPConnection(socket_path, PROBE_TIMEOUT)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        return resp.status == 200 and resp.read(64).strip() == b"ok"
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def web_state() -> WebState:
    sockets = {name: str(paths.system_path(path)) for name, path in WEB_SOCKETS}
    return WebState(services.state(services.WEB_UNIT), sockets,
                    {name: web_answers(path) for name, path in sockets.items()})


def rspamd_answers(url: str) -> bool:
    """Rspamd's scanner answers ``/ping``, asked as the daemon asks it (its socket, under the root)."""
    return asyncio.run(RspamdClient(url, PROBE_TIMEOUT).ping())


# -- what is kept -------------------------------------------------------------------

def queue_summary(spool: Spool) -> Union[QueueSummary, Unreadable]:
    try:
        return queue.summary(spool)
    except OSError as exc:
        return Unreadable(f"{spool.directory}: {exc.strerror}")


def quarantine_totals(cfg: config.Config) -> Union[QuarantineTotals, Unreadable]:
    ctx = Context(cfg=cfg, readonly=True)
    if not ctx.database.exists():
        return QuarantineTotals(0, 0, 0)
    try:
        accounts = ctx.quarantine.accounts()
        return QuarantineTotals(emails=sum(a.message_count for a in accounts),
                                size_bytes=sum(a.used_bytes for a in accounts),
                                accounts=sum(1 for a in accounts if a.message_count))
    except (db.DatabaseError, sqlite3.Error) as exc:
        return Unreadable(f"database: {exc}")
    finally:
        ctx.close()


def disk_space(cfg: config.Config) -> Union[DiskState, Unreadable]:
    """The quarantine filesystem against its free-space floor (held mail is deferred below it)."""
    space = Context(cfg=cfg).space
    try:
        return DiskState(str(space.storage), space.report())
    except OSError as exc:
        return Unreadable(f"{space.storage}: {exc.strerror}")


def metrics_switch(cfg: config.Config) -> Union[bool, Unreadable]:
    """The ``metrics`` setting (True before the store exists: its default)."""
    ctx = Context(cfg=cfg, readonly=True)
    if not ctx.database.exists():
        return Features().metrics
    try:
        return settings.load_features(ctx.conn).metrics
    except (db.DatabaseError, sqlite3.Error) as exc:
        return Unreadable(f"database: {exc}")
    finally:
        ctx.close()


def metrics(cfg: config.Config, now: Optional[float] = None) -> MetricsState:
    """What the daemon last wrote to the metrics file, read back (the numbers node_exporter serves,
    at most ``metrics.interval`` seconds old)."""
    path = paths.system_path(cfg["metrics"]["textfile"])
    switch = metrics_switch(cfg)
    state = MetricsState(None, str(path), cfg["metrics"]["interval"])
    if isinstance(switch, Unreadable):
        return state._replace(error=switch.error)
    state = state._replace(enabled=switch)
    try:   # the daemon user's directory: a link or a FIFO put there is not read (by root)
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a plain file")
            written = st.st_mtime
            text = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return state._replace(error="not written yet: is imunifyemaild running?") if switch else state
    except OSError as exc:
        return state._replace(error=f"{path}: {'is a symbolic link' if exc.errno == errno.ELOOP else exc.strerror}")
    return state._replace(written_at=int(written),
                          age_seconds=max(0, int((time.time() if now is None else now) - written)),
                          samples=metrics_file.parse(text))
