"""Run a private Rspamd for tests, the local sandbox and benchmarks, locked down as in production.

Rspamd is started in the foreground as ``_rspamd`` with that user's groups, as systemd's
``rspamd.service`` runs it on a server (``User=_rspamd``), using the standalone main config
``devtools/rspamd_offline/rspamd-standalone.conf`` (Debian's stock ``rspamd.conf`` with logging to the
console) and a ``LOCAL_CONFDIR`` made of the offline overrides of ``devtools/rspamd_offline/`` (network
modules off: tests and the sandbox send nothing beyond loopback), in an administrator's place, with the
RPM's production files (``rpm/rspamd/``) installed over them as the RPM installs them (a block including
ours in each file: ``imunifyemail.rspamd_files``). The workers therefore listen exactly where the production ``override.d`` puts them:
the scanner on ``RUNDIR/normal.sock`` and the controller on ``RUNDIR/controller.sock``, both
``_rspamd:_imunifyemail`` 0660, no TCP at all (the proxy worker is off; the fuzzy storage listens on UDP
127.0.0.1:11335 and learns in the Redis that ``redis=`` names: :mod:`devtools.redis`)::

    from devtools.rspamd import RspamdProcess

    with RspamdProcess(Path("/tmp/x")) as rspamd:
        result = rspamd.scan(raw_message, From="a@example.com", Rcpt=["b@example.net", "c@example.org"],
                             IP="127.0.0.1", User="demo1", Hostname="localhost")
        print(result["action"], result["score"], rspamd.url)   # unix:/tmp/x/run/normal.sock

``RspamdProcess(..., tcp_port=N)`` adds a TCP listener for the scanner on 127.0.0.1:N, for the Exim bench
only (Exim's ``spam =`` ACL runs as Exim's user, who may not use the socket); run it in a private
network namespace (``devtools.stack.MailStack``).

Directories:

* ``DBDIR`` (default ``/var/tmp/imunifyemail-rspamd-db``) holds the compiled hyperscan cache and is kept
  across runs and shared by concurrent instances: the first start compiles (~15 s), later ones take ~1 s.
  Only instances of the same rule set may share it: Rspamd deletes the cache files its rules do not use.
* ``RUNDIR`` (the sockets, pid, control socket, rrd, history, stats: per instance; 0755 ``_rspamd`` as
  systemd's ``RuntimeDirectory=rspamd``) is ``rundir`` when given (the mail stack puts it at
  ``$IMUNIFYEMAIL_ROOT/var/run/rspamd``, where the product's default ``rspamd.url`` points), else
  ``workdir/run``. The layered ``LOCAL_CONFDIR`` and ``LOGDIR`` are ``workdir/local-confdir`` and
  ``workdir/log``. When ``workdir`` is not reachable by every user (e.g. a 0700 ``tempfile.mkdtemp()``
  directory or a 0700 parent such as ``/tmp/pytest-of-root``: ``_rspamd`` reads its config there and
  ``_imunifyemail`` reaches the sockets), no permissions of existing directories are changed: they are
  made in a fresh ``/tmp/imunifyemail-rspamd-*`` directory instead (/tmp is 1777), linked as
  ``workdir/rspamd-runtime`` and removed by ``stop()``.

Only the standard library is used. Requires root and Debian's ``rspamd`` package. The first use on a
machine makes ``_rspamd`` a member of group ``_imunifyemail``, as the RPM does (devtools.users).
"""
from __future__ import annotations

import grp
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from devtools.waiting import TimedOut, eventually
from devtools.users import RSPAMD_USER, PRODUCT_GROUP, ensure_rspamd_serves_product
from imunifyemail import rspamd_files, rspamd_learning
from imunifyemail.unix_http import UnixHTTPConnection

DEFAULT_DBDIR = Path("/var/tmp/imunifyemail-rspamd-db")
SYSTEM_CONFDIR = Path("/etc/rspamd")

REPO_ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_CONFDIR = REPO_ROOT / "rpm" / "rspamd"          # the RPM's /usr/share/imunifyemail/rspamd
OFFLINE_CONFDIR = REPO_ROOT / "devtools" / "rspamd_offline"  # sandbox and tests only
STANDALONE_CONF_NAME = "rspamd-standalone.conf"
# What rpm/rspamd/override.d/worker-*.inc bind, in RUNDIR, and how
SCANNER_SOCKET = "normal.sock"
CONTROLLER_SOCKET = "controller.sock"
SOCKET_MODE = 0o660

GTUBE = (
    b"From: readiness@localhost\r\n"
    b"To: readiness@localhost\r\n"
    b"Subject: readiness probe\r\n"
    b"Message-ID: <readiness-probe@localhost>\r\n"
    b"\r\n"
    b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"
)

# Per-instance state, moved out of the shared DBDIR (included by rspamd-standalone.conf at priority 20).
_INSTANCE_OPTIONS = """\
# Written by devtools/rspamd.py: per-instance state in RUNDIR, so that instances can share DBDIR.
control_socket = "$RUNDIR/rspamd.sock mode=0600";
rrd = "$RUNDIR/rspamd.rrd";
history_file = "$RUNDIR/rspamd.history";
stats_file = "$RUNDIR/stats.ucl";
dynamic_conf = "$RUNDIR/rspamd_dynamic";
"""
# The Exim bench's TCP listener, appended to the scanner's production bind_socket by rspamd-standalone.conf.
_BENCH_LISTENER = """\
# Written by devtools/rspamd.py for the Exim bench only (Exim's spam = ACL), in a private network namespace.
bind_socket = "127.0.0.1:{port}";
"""
BENCH_LISTENER_FILE = "bench-listener.inc"


def layered_confdir(target: Path, layers: Sequence[Path] = (OFFLINE_CONFDIR,),
                    production: Optional[Path] = PRODUCTION_CONFDIR) -> Path:
    """``target`` filled with each layer's ``local.d``/``override.d`` files, as an administrator's files
    in ``/etc/rspamd`` (a later layer may add files but not replace one: a replaced file would be missing
    from every test that is meant to prove it), then the ``production`` set installed over them as the
    RPM installs it: copied beside ``target`` (``<target>-imunifyemail``, the package's
    ``/usr/share/imunifyemail/rspamd``) and included from a block in each file by
    ``imunifyemail.rspamd_files``."""
    if target.exists():
        shutil.rmtree(target)
    for source in layers:
        for sub in ("local.d", "override.d"):
            if not (source / sub).is_dir():
                continue
            for f in (source / sub).iterdir():
                if (target / sub / f.name).exists():
                    raise RuntimeError(f"{source / sub / f.name} would replace {target / sub / f.name} of an "
                                       "earlier layer: give it another name or another directory")
            shutil.copytree(source / sub, target / sub, dirs_exist_ok=True)
    if production is not None:
        share = target.with_name(target.name + "-imunifyemail")
        if share.exists():
            shutil.rmtree(share)
        for sub in rspamd_files.PRIORITIES:
            shutil.copytree(production / sub, share / sub)
        target.mkdir(parents=True, exist_ok=True)
        rspamd_files.install(target, share)
    return target


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the usual bind-to-0 race applies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rspamd_ids() -> tuple[int, int]:
    try:
        pw = pwd.getpwnam(RSPAMD_USER)
    except KeyError:
        raise RuntimeError(
            f"system user {RSPAMD_USER!r} does not exist: install Debian's Rspamd with "
            "`apt-get install --no-install-recommends rspamd redis-server` (make deps)"
        ) from None
    return pw.pw_uid, pw.pw_gid


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _world_traversable(path: Path) -> bool:
    """Whether any user (``_rspamd``, ``_imunifyemail``) can reach ``path``'s entries."""
    path = path.resolve()
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in [*reversed(path.parents), path])


def _make_owned_dir(path: Path, uid: int, gid: int, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


class RspamdProcess:
    """A private Rspamd run from the shipped config: scanner and controller on unix sockets in RUNDIR."""

    #: seconds for one HTTP request to the scanner
    scan_timeout = 30.0

    def __init__(self, workdir: Path, dbdir: Path = DEFAULT_DBDIR, rundir: Optional[Path] = None,
                 tcp_port: Optional[int] = None, main_config: Optional[Path] = None,
                 layers: Sequence[Path] = (OFFLINE_CONFDIR,), production: Optional[Path] = PRODUCTION_CONFDIR,
                 redis: Optional[dict] = None):
        self.workdir = Path(workdir)
        # config.yaml's rspamd.redis: the learning files written into LOCAL_CONFDIR as `ie-config
        # rspamd-learning` writes them into /etc/rspamd (None: none, so nothing is learned)
        self.redis = redis
        self.dbdir = Path(dbdir)
        self.tcp_port = tcp_port          # the Exim bench's extra listener, or None
        self.config = Path(main_config) if main_config else OFFLINE_CONFDIR / STANDALONE_CONF_NAME
        self.layers = tuple(layers)              # files as an administrator's in /etc/rspamd
        self.production = production             # then installed over them as the RPM does
        self.log_path = self.workdir / "rspamd.log"   # stdout/stderr (the console log)
        self._rundir = Path(rundir) if rundir else None
        self.rundir: Path = self._rundir or self.workdir / "run"
        self.confdir: Path = self.workdir / "local-confdir"
        self.logdir: Path = self.workdir / "log"
        self._private_runtime: Optional[Path] = None  # /tmp dir we created, removed by stop()
        self._proc: Optional[subprocess.Popen] = None
        self._log_file = None

    # -- properties -------------------------------------------------------------------------------
    @property
    def socket(self) -> Path:
        """The scanner's (normal worker's) socket: POST /checkv2 there."""
        return self.rundir / SCANNER_SOCKET

    @property
    def controller_socket(self) -> Path:
        return self.rundir / CONTROLLER_SOCKET

    @property
    def url(self) -> str:
        """The scanner as ``rspamd.url`` names it (a host path: not under any ``$IMUNIFYEMAIL_ROOT``)."""
        return f"unix:{self.socket}"

    @property
    def tcp_url(self) -> str:
        if self.tcp_port is None:
            raise RuntimeError("this Rspamd has no TCP listener (RspamdProcess(..., tcp_port=N))")
        return f"http://127.0.0.1:{self.tcp_port}"

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle --------------------------------------------------------------------------------
    def command(self) -> list[str]:
        """The rspamd command line (valid after the directories are prepared by ``start()``): as
        ``_rspamd`` with its groups, like systemd's ``User=_rspamd``."""
        exe = shutil.which("rspamd") or "/usr/bin/rspamd"
        return ["setpriv", f"--reuid={RSPAMD_USER}", f"--regid={RSPAMD_USER}", "--init-groups",
                exe, "-f", "-c", str(self.config), *self.variables()]

    def variables(self) -> list[str]:
        """``--var=...`` options; usable with ``rspamadm <vars> configtest -c <config>`` too."""
        values = {
            "CONFDIR": str(SYSTEM_CONFDIR),
            "LOCAL_CONFDIR": str(self.confdir),
            "DBDIR": str(self.dbdir),
            "RUNDIR": str(self.rundir),
            "LOGDIR": str(self.logdir),
        }
        return [f"--var={k}={v}" for k, v in values.items()]

    def _prepare_dirs(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("RspamdProcess must run as root (it starts rspamd as _rspamd)")
        if not (shutil.which("rspamd") or os.path.exists("/usr/bin/rspamd")):
            raise RuntimeError("rspamd not found: `apt-get install --no-install-recommends rspamd`")
        uid, gid = _rspamd_ids()
        ensure_rspamd_serves_product()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if _world_traversable(self.workdir):
            base = self.workdir
        else:
            base = Path(tempfile.mkdtemp(prefix="imunifyemail-rspamd-", dir="/tmp"))
            os.chmod(base, 0o711)  # traverse only
            self._private_runtime = base
            link = self.workdir / "rspamd-runtime"
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(base)
        self.confdir = layered_confdir(base / "local-confdir", self.layers, self.production)
        if self.redis is not None:
            rspamd_learning.install(self.redis, etc=self.confdir)
        self.logdir = base / "log"
        self.rundir = self._rundir or base / "run"
        _make_owned_dir(self.logdir, uid, gid, 0o750)
        _make_owned_dir(self.rundir, uid, gid, 0o755)   # as systemd's RuntimeDirectoryMode=0755
        if not _world_traversable(self.rundir):
            raise RuntimeError(f"RUNDIR {self.rundir}: every user must be able to traverse it and its parents "
                               "(the sockets' own modes say who may connect)")

        # DBDIR: shared, kept across runs, written by the main process and hs_helper (both _rspamd).
        self.dbdir.mkdir(parents=True, exist_ok=True)
        st = os.stat(self.dbdir)
        if st.st_uid != uid or st.st_gid != gid:
            os.chown(self.dbdir, uid, gid)
        if stat.S_IMODE(st.st_mode) & 0o700 != 0o700:
            os.chmod(self.dbdir, 0o755)
        if not _world_traversable(self.dbdir.parent):
            raise RuntimeError(f"{RSPAMD_USER} cannot reach DBDIR {self.dbdir}: use a path like "
                               f"{DEFAULT_DBDIR} whose parents are world-traversable")

        (self.rundir / "instance-options.inc").write_text(_INSTANCE_OPTIONS)
        listener = self.rundir / BENCH_LISTENER_FILE
        if self.tcp_port is not None:
            listener.write_text(_BENCH_LISTENER.format(port=int(self.tcp_port)))
        elif listener.exists():
            listener.unlink()

    def start(self, timeout: float = 120.0) -> None:
        """Start Rspamd and wait until a GTUBE scan on the socket is rejected, then check the sockets'
        owner, group and mode. Raises RuntimeError (with the tail of Rspamd's log) if it exits or its
        sockets are not the production ones, TimedOut if it is not ready within ``timeout`` seconds.
        With the learning files (``redis=``), also wait until the fuzzy storage takes our rule's writes."""
        if self.running():
            raise RuntimeError(f"rspamd already running (pid {self.pid})")
        self._prepare_dirs()
        log_start = {path: _size(path) for path in self._log_paths()}   # a restart appends to the log
        self._log_file = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
            cwd="/", start_new_session=True,  # own process group: stop() can reap workers
        )
        last_error = ["no answer yet"]

        def rejects_gtube() -> bool:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self.stop()
                raise RuntimeError(f"rspamd exited with status {code} during startup\n{self.log_tail()}")
            try:
                result = self._checkv2(GTUBE, {"IP": "127.0.0.1", "User": "readiness", "Hostname": "localhost"},
                                       timeout=min(5.0, self.scan_timeout))
                if result.get("action") == "reject":
                    return True
                last_error[0] = f"GTUBE action {result.get('action')!r}"
            except (OSError, http.client.HTTPException, RuntimeError, ValueError) as exc:
                last_error[0] = f"{type(exc).__name__}: {exc}"
            return False
        try:
            eventually(rejects_gtube, "rspamd to reject GTUBE", timeout, interval=0.1,
                       describe=lambda: f"({last_error[0]})\n{self.log_tail()}")
        except TimedOut:
            self.stop()
            raise
        problem = self.socket_problem()
        if problem:
            self.stop()
            raise RuntimeError(f"{problem}\n{self.log_tail()}")
        if self.redis is not None:
            self._wait_storage_takes_writes(log_start, timeout)

    def _wait_storage_takes_writes(self, log_start: dict, timeout: float) -> None:
        """Rspamd 3.4's fuzzy storage answers every write 403 ("process fuzzy error") until it has read the
        map of the keys allowed to write, 0-2 s after it starts listening (longer on a loaded machine;
        the scanner answers long before): a test teaching it at once would be refused. It logs the read."""
        writers = re.compile(r"read hash of [1-9]\d* elements from " +
                             re.escape(str(self.confdir / rspamd_learning.WRITERS_FILE)) + "$", re.M)

        def read_writers() -> bool:
            return any(writers.search(self._log_since(path, offset)) for path, offset in log_start.items())
        try:
            eventually(read_writers, "rspamd's fuzzy storage to read its writers map", timeout, interval=0.1,
                       describe=self.log_tail)
        except TimedOut:
            self.stop()
            raise

    def socket_problem(self) -> str:
        """Why the sockets are not ``_rspamd:_imunifyemail`` 0660 as in production ("" when they are).
        Rspamd only logs (at info level) that it could not give a socket its group, and goes on."""
        want = (pwd.getpwnam(RSPAMD_USER).pw_uid, grp.getgrnam(PRODUCT_GROUP).gr_gid, SOCKET_MODE)
        for path in (self.socket, self.controller_socket):
            st = os.stat(path)
            if (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) != want:
                return (f"{path} is {st.st_uid}:{st.st_gid} {stat.S_IMODE(st.st_mode):o}, not "
                        f"{RSPAMD_USER}:{PRODUCT_GROUP} {SOCKET_MODE:o} (is {RSPAMD_USER} in group {PRODUCT_GROUP}?)")
        return ""

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, wait, then SIGKILL the process group. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            pgid = proc.pid  # start_new_session: the main process leads its own group
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            # Main gone (or stuck): kill whatever is left of the group (workers, hs_helper).
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._private_runtime is not None:
            shutil.rmtree(self._private_runtime, ignore_errors=True)
            link = self.workdir / "rspamd-runtime"
            if link.is_symlink():
                link.unlink()
            self._private_runtime = None

    def __enter__(self) -> "RspamdProcess":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- requests ---------------------------------------------------------------------------------
    def scan(self, raw: bytes, **headers) -> dict:
        """POST ``raw`` to ``/checkv2`` on the scanner's socket and return the JSON reply.

        Keyword arguments become request headers (``Queue_Id`` -> ``Queue-Id``); a list or tuple value
        sends the header once per element (e.g. ``Rcpt=[...]``). Rspamd honours ``From``, ``Rcpt``,
        ``IP``, ``User``, ``Hostname``, ``Helo``, ``Queue-Id``, ... (see EXIM.md)."""
        return self._checkv2(raw, headers, timeout=self.scan_timeout)

    def _checkv2(self, raw: bytes, headers: dict, timeout: float) -> dict:
        # http.client rather than urllib.request: urllib keeps headers in a dict, Rcpt must repeat.
        conn = UnixHTTPConnection(str(self.socket), timeout=timeout)
        try:
            conn.putrequest("POST", "/checkv2", skip_accept_encoding=True)
            for name, value in headers.items():
                values = value if isinstance(value, (list, tuple)) else [value]
                for v in values:
                    conn.putheader(name.replace("_", "-"), str(v))
            conn.putheader("Content-Length", str(len(raw)))
            conn.endheaders(raw)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise RuntimeError(f"rspamd /checkv2 answered {resp.status}: {body[:500]!r}")
        return json.loads(body)

    def controller_get(self, path: str) -> dict:
        """GET a JSON endpoint of the controller, e.g. ``/stat`` (its socket: no password needed)."""
        conn = UnixHTTPConnection(str(self.controller_socket), timeout=self.scan_timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise RuntimeError(f"rspamd controller {path} answered {resp.status}: {body[:500]!r}")
        return json.loads(body)

    def _log_paths(self):
        return (self.log_path, self.logdir / "rspamd.log")

    @staticmethod
    def _log_since(path: Path, offset: int) -> str:
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The end of Rspamd's log: the console's, or ``LOGDIR/rspamd.log`` when the main config logs to a
        file (the stock rspamd.conf)."""
        out = []
        for path in self._log_paths():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            tail = data.decode("utf-8", "replace").splitlines()[-lines:]
            if tail:
                out.append(f"--- last {len(tail)} lines of {path} ---\n" + "\n".join(tail))
        return "\n".join(out) or f"(no log in {self.log_path})"
