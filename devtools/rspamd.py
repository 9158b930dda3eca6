"""Run a private Rspamd for tests, the local sandbox and benchmarks.

Rspamd is started in the foreground as root with its workers dropped to ``_rspamd``, using the
standalone main config ``devtools/rspamd_offline/rspamd-standalone.conf`` (Debian's
``/etc/rspamd/common.conf``, a ``normal`` and a ``controller`` worker on 127.0.0.1 ports chosen by the
caller) and a ``LOCAL_CONFDIR`` made of the RPM's production files (``rpm/rspamd/``) with the offline
overrides of ``devtools/rspamd_offline/`` on top (network modules off: tests and the sandbox send
nothing beyond loopback)::

    from devtools.rspamd import RspamdProcess, free_port

    with RspamdProcess(Path("/tmp/x"), free_port(), free_port()) as rspamd:
        result = rspamd.scan(raw_message, From="a@example.com", Rcpt=["b@example.net", "c@example.org"],
                             IP="127.0.0.1", User="demo1", Hostname="localhost")
        print(result["action"], result["score"])

Directories:

* ``DBDIR`` (default ``/var/tmp/imunifyemail-rspamd-db``) holds the compiled hyperscan cache and is kept
  across runs and shared by concurrent instances: the first start compiles (~15 s), later ones take ~1 s.
* ``RUNDIR`` (control socket, rrd, history, stats: per instance) and ``LOGDIR`` (unused: Rspamd logs to
  stderr, which goes to ``workdir/rspamd.log``) are ``workdir/run`` and ``workdir/log`` when ``_rspamd``
  can traverse to ``workdir``. When it cannot (e.g. a 0700 ``tempfile.mkdtemp()`` directory or a 0700
  parent such as ``/tmp/pytest-of-root``), no permissions of existing directories are changed: both are
  created in a fresh ``/tmp/imunifyemail-rspamd-*`` directory instead (reachable: /tmp is 1777), linked as
  ``workdir/rspamd-runtime`` and removed by ``stop()``.

Only the standard library is used. Requires root and Debian's ``rspamd`` package.
"""
from __future__ import annotations

import grp
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

DEFAULT_DBDIR = Path("/var/tmp/imunifyemail-rspamd-db")
RSPAMD_USER = "_rspamd"
RSPAMD_GROUP = "_rspamd"
SYSTEM_CONFDIR = Path("/etc/rspamd")

REPO_ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_CONFDIR = REPO_ROOT / "rpm" / "rspamd"          # what the RPM installs in /etc/rspamd
OFFLINE_CONFDIR = REPO_ROOT / "devtools" / "rspamd_offline"  # sandbox and tests only
STANDALONE_CONF_NAME = "rspamd-standalone.conf"

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


def layered_confdir(target: Path) -> Path:
    """``target`` filled with the production ``local.d``/``override.d`` files and the offline ones
    over them (an offline file of the same name replaces the production one)."""
    if target.exists():
        shutil.rmtree(target)
    for source in (PRODUCTION_CONFDIR, OFFLINE_CONFDIR):
        for sub in ("local.d", "override.d"):
            if (source / sub).is_dir():
                shutil.copytree(source / sub, target / sub, dirs_exist_ok=True)
    return target


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the usual bind-to-0 race applies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rspamd_ids() -> tuple[int, int]:
    try:
        uid = pwd.getpwnam(RSPAMD_USER).pw_uid
        gid = grp.getgrnam(RSPAMD_GROUP).gr_gid
    except KeyError:
        raise RuntimeError(
            f"system user/group {RSPAMD_USER!r} does not exist: install Debian's Rspamd with "
            "`apt-get install --no-install-recommends rspamd` (without --no-install-recommends it pulls "
            "in redis-server, which is not needed)"
        ) from None
    return uid, gid


def _traversable_by(path: Path, uid: int, gid: int) -> bool:
    """Whether a process running as uid:gid (no supplementary groups) can reach ``path``'s entries."""
    path = path.resolve()
    for p in [*reversed(path.parents), path]:
        st = os.stat(p)
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _make_owned_dir(path: Path, uid: int, gid: int, mode: int = 0o750) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


class RspamdProcess:
    """A private Rspamd (``normal`` + ``controller`` worker on 127.0.0.1) run from the shipped config."""

    #: seconds for one HTTP request to the scanner
    scan_timeout = 30.0

    def __init__(self, workdir: Path, normal_port: int, controller_port: int,
                 dbdir: Path = DEFAULT_DBDIR):
        self.workdir = Path(workdir)
        self.normal_port = int(normal_port)
        self.controller_port = int(controller_port)
        self.dbdir = Path(dbdir)
        self.confdir = self.workdir / "local-confdir"   # made by start(): production + offline
        self.config = OFFLINE_CONFDIR / STANDALONE_CONF_NAME
        self.log_path = self.workdir / "rspamd.log"
        self.rundir: Optional[Path] = None
        self.logdir: Optional[Path] = None
        self._private_runtime: Optional[Path] = None  # /tmp dir we created, removed by stop()
        self._proc: Optional[subprocess.Popen] = None
        self._log_file = None

    # -- properties -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL of the scanner (normal worker): POST {url}/checkv2."""
        return f"http://127.0.0.1:{self.normal_port}"

    @property
    def controller_url(self) -> str:
        return f"http://127.0.0.1:{self.controller_port}"

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle --------------------------------------------------------------------------------
    def command(self) -> list[str]:
        """The rspamd command line (valid after the directories are prepared by ``start()``)."""
        exe = shutil.which("rspamd") or "/usr/bin/rspamd"
        return [exe, "-f", "-u", RSPAMD_USER, "-g", RSPAMD_GROUP, "-c", str(self.config),
                *self.variables()]

    def variables(self) -> list[str]:
        """``--var=...`` options; usable with ``rspamadm <vars> configtest -c <config>`` too."""
        values = {
            "CONFDIR": str(SYSTEM_CONFDIR),
            "LOCAL_CONFDIR": str(self.confdir),
            "DBDIR": str(self.dbdir),
            "RUNDIR": str(self.rundir),
            "LOGDIR": str(self.logdir),
            "NORMAL_BIND": f"127.0.0.1:{self.normal_port}",
            "CONTROLLER_BIND": f"127.0.0.1:{self.controller_port}",
        }
        return [f"--var={k}={v}" for k, v in values.items()]

    def _prepare_dirs(self) -> None:
        uid, gid = _rspamd_ids()
        if os.geteuid() != 0:
            raise RuntimeError("RspamdProcess must run as root (rspamd drops its workers to _rspamd)")
        if not (shutil.which("rspamd") or os.path.exists("/usr/bin/rspamd")):
            raise RuntimeError("rspamd not found: `apt-get install --no-install-recommends rspamd`")
        self.workdir.mkdir(parents=True, exist_ok=True)
        layered_confdir(self.confdir)

        # DBDIR: shared, kept across runs. Main process (root) and hs_helper (_rspamd) both write here.
        self.dbdir.mkdir(parents=True, exist_ok=True)
        st = os.stat(self.dbdir)
        if st.st_uid != uid or st.st_gid != gid:
            os.chown(self.dbdir, uid, gid)
        if stat.S_IMODE(st.st_mode) & 0o700 != 0o700:
            os.chmod(self.dbdir, 0o755)
        if not _traversable_by(self.dbdir, uid, gid):
            raise RuntimeError(f"{RSPAMD_USER} cannot reach DBDIR {self.dbdir}: use a path like "
                               f"{DEFAULT_DBDIR} whose parents are world-traversable")

        if _traversable_by(self.workdir, uid, gid):
            base = self.workdir
        else:
            base = Path(tempfile.mkdtemp(prefix="imunifyemail-rspamd-", dir="/tmp"))
            os.chmod(base, 0o711)  # traverse only
            self._private_runtime = base
            link = self.workdir / "rspamd-runtime"
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(base)
        self.rundir = base / "run"
        self.logdir = base / "log"
        for d in (self.rundir, self.logdir):
            _make_owned_dir(d, uid, gid)
        (self.rundir / "instance-options.inc").write_text(_INSTANCE_OPTIONS)

    def start(self, timeout: float = 120.0) -> None:
        """Start Rspamd and wait until a GTUBE scan is rejected. Raises RuntimeError (with the tail of
        rspamd.log) if it exits or is not ready within ``timeout`` seconds."""
        if self.running():
            raise RuntimeError(f"rspamd already running (pid {self.pid})")
        self._prepare_dirs()
        self._log_file = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
            cwd=str(self.workdir), start_new_session=True,  # own process group: stop() can reap workers
        )
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self.stop()
                raise RuntimeError(f"rspamd exited with status {code} during startup\n{self.log_tail()}")
            try:
                result = self._checkv2(GTUBE, {"IP": "127.0.0.1", "User": "readiness", "Hostname": "localhost"},
                                       timeout=min(5.0, self.scan_timeout))
                if result.get("action") == "reject":
                    return
                last_error = f"GTUBE action {result.get('action')!r}"
            except (OSError, http.client.HTTPException, RuntimeError, ValueError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rspamd not ready after {timeout:.0f} s ({last_error})\n"
                                   f"{self.log_tail()}")
            time.sleep(0.1)

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
        """POST ``raw`` to ``/checkv2`` and return the JSON reply.

        Keyword arguments become request headers (``Queue_Id`` -> ``Queue-Id``); a list or tuple value
        sends the header once per element (e.g. ``Rcpt=[...]``). Rspamd honours ``From``, ``Rcpt``,
        ``IP``, ``User``, ``Hostname``, ``Helo``, ``Queue-Id``, ... (see EXIM.md)."""
        return self._checkv2(raw, headers, timeout=self.scan_timeout)

    def _checkv2(self, raw: bytes, headers: dict, timeout: float) -> dict:
        # http.client rather than urllib.request: urllib keeps headers in a dict, Rcpt must repeat.
        conn = http.client.HTTPConnection("127.0.0.1", self.normal_port, timeout=timeout)
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
        """GET a JSON endpoint of the controller, e.g. ``/stat`` (loopback: no password needed)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.controller_port, timeout=self.scan_timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise RuntimeError(f"rspamd controller {path} answered {resp.status}: {body[:500]!r}")
        return json.loads(body)

    def log_tail(self, lines: int = 40) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError as exc:
            return f"(no log: {exc})"
        tail = data.decode("utf-8", "replace").splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path} ---\n" + "\n".join(tail)
