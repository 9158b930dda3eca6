"""``ie-config status``: is the product doing its job, in one look.

Each check is independent and never raises: a part that cannot be read is
reported as such, so the status of a half-broken server is still shown.
"""
import asyncio
import base64
import errno
import http.client
import os
import socket
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any, Dict, Optional

from .. import __version__, config, paths
from ..core import metrics as metrics_file
from ..core.features import Features
from ..store import db, settings
from ..context import Context
from ..daemon.rspamd import RspamdClient
from ..shapes import human_size
from . import patcher, queue, services
from .spool import Spool

PROBE_TIMEOUT = 3.0


def daemon_answers(socket_path: str) -> bool:
    """The filter socket answers a router's question (an address test: no message needed)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(PROBE_TIMEOUT)
            s.connect(socket_path)
            s.sendall(b"SCAN id= rcpt=" + base64.b64encode(b"probe@status.invalid") + b"\n")
            return s.recv(512).startswith(b"verdict=pass")
    except OSError:
        return False


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def _answers(conn: http.client.HTTPConnection, path: str, expected: bytes) -> bool:
    """``GET path`` answers 200 with ``expected`` as its body."""
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status == 200 and resp.read(64).strip() == expected
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def web_answers(socket_path: str) -> bool:
    """The web app serves on this socket: ``GET /healthz`` answers ``200 ok``."""
    return _answers(_UnixHTTPConnection(socket_path, PROBE_TIMEOUT), "/healthz", b"ok")


def web_report() -> Dict[str, Any]:
    sockets = {name: str(paths.system_path(path)) for name, path in
               (("admin_socket", paths.ADMIN_SOCKET), ("user_socket", paths.USER_SOCKET))}
    answers = {name: web_answers(path) for name, path in sockets.items()}
    return {"service": services.state(services.WEB_UNIT), "running": all(answers.values()), **answers,
            "sockets": sockets}


def rspamd_answers(url: str) -> bool:
    """Rspamd's scanner answers ``/ping``, asked as the daemon asks it (its socket, under the root)."""
    return asyncio.run(RspamdClient(url, PROBE_TIMEOUT).ping())


def quarantine_totals(cfg: config.Config) -> Dict[str, Any]:
    ctx = Context(cfg=cfg, readonly=True)
    if not ctx.database.exists():
        return {"emails": 0, "size_bytes": 0, "accounts": 0}
    try:
        accounts = ctx.quarantine.accounts()
        return {"emails": sum(a.message_count for a in accounts),
                "size_bytes": sum(a.used_bytes for a in accounts),
                "accounts": sum(1 for a in accounts if a.message_count)}
    except (db.DatabaseError, sqlite3.Error) as exc:
        return {"error": f"database: {exc}"}
    finally:
        ctx.close()


def metrics_switch(cfg: config.Config) -> Any:
    """The ``metrics`` setting (True before the store exists: its default), or an error."""
    ctx = Context(cfg=cfg, readonly=True)
    if not ctx.database.exists():
        return Features().metrics
    try:
        return settings.load_features(ctx.conn).metrics
    except (db.DatabaseError, sqlite3.Error) as exc:
        return {"error": f"database: {exc}"}
    finally:
        ctx.close()


def metrics_report(cfg: config.Config, now: Optional[float] = None) -> Dict[str, Any]:
    """What the daemon last wrote to the metrics file, read back (the numbers node_exporter serves,
    at most ``metrics.interval`` seconds old): never computed here, the counters are the daemon's."""
    path = paths.system_path(cfg["metrics"]["textfile"])
    switch = metrics_switch(cfg)
    out: Dict[str, Any] = {"enabled": switch, "textfile": str(path), "interval": cfg["metrics"]["interval"]}
    if isinstance(switch, dict):
        out["enabled"], out["error"] = None, switch["error"]
        return out
    try:   # the daemon user's directory: a link or a FIFO put there is not read (by root)
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a plain file")
            written = st.st_mtime
            text = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        if switch:
            out["error"] = "not written yet: is imunifyemaild running?"
        return out
    except OSError as exc:
        out["error"] = f"{path}: {'is a symbolic link' if exc.errno == errno.ELOOP else exc.strerror}"
        return out
    out["written_at"] = int(written)
    out["age_seconds"] = max(0, int((time.time() if now is None else now) - written))
    out["samples"] = metrics_file.parse(text)
    return out


def collect(cfg: config.Config) -> Dict[str, Any]:
    socket_path = str(paths.system_path(cfg["exim"]["socket"]))
    local = patcher.filter_configured()
    active = patcher.filter_active()
    spool = Spool(paths.system_path(cfg["exim"]["spool_directory"]))
    try:
        q = queue.summary(spool)
        queue_info: Dict[str, Any] = {"waiting_for_scanner": q.waiting_for_scanner, "total": q.total}
    except OSError as exc:
        queue_info = {"error": f"{spool.directory}: {exc.strerror}"}
    return {
        "version": __version__,
        "filter": {"enabled": local and active, "exim_conf_local": local, "exim_conf": active},
        "daemon": {"service": services.state(services.DAEMON_UNIT), "running": daemon_answers(socket_path),
                   "socket": socket_path},
        "web": web_report(),
        "rspamd": {"url": cfg["rspamd"]["url"], "reachable": rspamd_answers(cfg["rspamd"]["url"])},
        "queue": queue_info,
        "quarantine": quarantine_totals(cfg),
        "disk": disk_space(cfg),
        "metrics": metrics_report(cfg),
    }


def disk_space(cfg: config.Config) -> Dict[str, Any]:
    """The quarantine filesystem against its free-space floor (held mail is deferred below it)."""
    space = Context(cfg=cfg).space
    try:
        report = space.report()
    except OSError as exc:
        return {"error": f"{space.storage}: {exc.strerror}"}
    return {"path": str(space.storage), "total_bytes": report.space.total_bytes,
            "free_bytes": report.space.free_bytes, "floor_bytes": report.floor.bytes,
            "total_inodes": report.space.total_inodes, "free_inodes": report.space.free_inodes,
            "floor_inodes": report.floor.inodes, "below_floor": report.below_floor}


def disk_line(disk: Dict[str, Any]) -> str:
    if "error" in disk:
        return f"unknown ({disk['error']})"
    line = (f"{human_size(disk['free_bytes'])} free of {human_size(disk['total_bytes'])}"
            f" (floor {human_size(disk['floor_bytes'])}")
    line += f", {disk['free_inodes']} inodes free, floor {disk['floor_inodes']})" if disk["total_inodes"] else ")"
    if disk["below_floor"]:
        line += ("; FLOOR REACHED: mail that would be held is deferred (Exim keeps it) until space is freed "
                 "(ie-cli emails remove, ie-cli accounts remove)")
    return line


def web_line(web: Dict[str, Any]) -> str:
    silent = [Path(web["sockets"][k]).name for k in ("admin_socket", "user_socket") if not web[k]]
    state = "running" if not silent else f"not answering on {' and '.join(silent)}"
    return f"{state} (service {web['service']}, GET /healthz on admin.sock and user.sock)"


def metrics_line(m: Dict[str, Any]) -> str:
    if m["enabled"] is False:
        return "off (ie-cli settings --metrics on)"
    if "samples" not in m:
        return f"unknown ({m.get('error', 'no file')}; {m['textfile']})"
    v = m["samples"]
    scanned, passed = v.get("imunifyemail_messages_scanned_total", 0), v.get("imunifyemail_messages_passed_total", 0)
    stale = " (STALE: the daemon has not rewritten it)" if m["age_seconds"] > 3 * m["interval"] + 60 else ""
    return (f"{m['textfile']} written {m['age_seconds']} s ago{stale}: since the daemon started "
            f"{scanned} scanned, {passed} passed, {scanned - passed} held, "
            f"{v.get('imunifyemail_rspamd_unreachable_total', 0)} passed unscanned (Rspamd unreachable)")


def render(st: Dict[str, Any]) -> str:
    f, d, q, qa = st["filter"], st["daemon"], st["queue"], st["quarantine"]
    if f["enabled"]:
        exim = "enabled (outbound mail is scanned)"
    elif f["exim_conf_local"]:
        exim = "configured in exim.conf.local but not in /etc/exim.conf: run ie-config enable"
    elif f["exim_conf"]:
        exim = "in /etc/exim.conf but not in exim.conf.local: run ie-config enable or disable"
    else:
        exim = "disabled (mail is sent unscanned)"
    daemon = ("running" if d["running"] else "not answering") + f" (service {d['service']}, socket {d['socket']})"
    rspamd = ("reachable" if st["rspamd"]["reachable"] else "unreachable: mail passes unscanned for spam") \
        + f" ({st['rspamd']['url']})"
    if "error" in q:
        queue_line = f"unknown ({q['error']})"
    else:
        queue_line = f"{q['waiting_for_scanner']} message(s) waiting for the scanner, {q['total']} in the queue"
    if "error" in qa:
        quarantine_line = f"unknown ({qa['error']})"
    else:
        quarantine_line = (f"{qa['emails']} email(s), {human_size(qa['size_bytes'])}, "
                           f"{qa['accounts']} account(s)")
    rows = [("Version", st["version"]), ("Exim filter", exim), ("Filter daemon", daemon),
            ("Web application", web_line(st["web"])), ("Rspamd", rspamd),
            ("Exim queue", queue_line), ("Quarantine", quarantine_line), ("Quarantine disk", disk_line(st["disk"])),
            ("Metrics", metrics_line(st["metrics"]))]
    return "\n".join(f"{name + ':':<17}{value}" for name, value in rows)
