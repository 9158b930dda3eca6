"""This machine booted with a real systemd as PID 1, on a copy-on-write view of its own root.

These machines run no systemd as PID 1 (EXIM.md, "A real systemd on these machines"), but
``systemd-nspawn -b`` boots one in a container. Its root is an overlayfs mount of ``/`` (the
lower layer: this machine as it is, with its systemd 252, Exim, Rspamd, rpm and Python) with the
upper layer under ``base``, mounted in a private mount namespace of its own: whatever the
container does — rpm, the package's scriptlets, the services — lands in ``base/upper``, and the
mount goes with the namespace. ``--private-network``: loopback only, nothing leaves the machine.

Before the boot the units this machine would start but a test does not want are masked in the
container (:data:`MASKED`): its own Exim, PostgreSQL, Redis and Prometheus, the daily timers, a getty. Commands run in
the container's namespaces through ``nsenter`` (``--register=no`` leaves no machined to ask);
long-running helpers (a test's Exim daemon, its sink) are transient units of the container's
systemd (``systemd-run``), so they live and die with it. :meth:`BootedSystem.stop` powers the
container off, kills what is left, and :meth:`remove` deletes ``base``.
"""
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from devtools.namespace import Namespace
from devtools.waiting import eventually

NSPAWN = "systemd-nspawn"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
# Units of this machine that would start in the container and have no business there.
MASKED = ("exim4.service", "exim4-base.timer", "exim4-base.service", "postgresql.service",
          "apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer",
          "e2scrub_reap.service", "fstrim.timer", "man-db.timer", "phpsessionclean.timer",
          "systemd-timesyncd.service", "getty@tty1.service", "console-getty.service",
          "redis-server.service", "prometheus.service")


class BootError(RuntimeError):
    pass


class BootedSystem:
    def __init__(self, base: Path, binds: Sequence[Path] = (), masked: Sequence[str] = MASKED):
        self.base = Path(base)
        self.root = self.base / "root"
        self.binds = [Path(b) for b in binds]   # host directories seen read-only at the same path inside
        self.masked = tuple(masked)
        self.ns = Namespace(net=False)
        self.nspawn: Optional[subprocess.Popen] = None
        self.pid1: Optional[int] = None

    @property
    def console_log(self) -> Path:
        return self.base / "console.log"

    def start(self) -> "BootedSystem":
        if shutil.which(NSPAWN) is None:
            raise BootError(f"{NSPAWN} not found (apt-get install systemd-container)")
        for d in ("upper", "work", "root"):
            (self.base / d).mkdir(parents=True)
        self.ns.start()
        try:
            self.ns.run(["mount", "-t", "overlay", "overlay", "-o",
                         f"lowerdir=/,upperdir={self.base / 'upper'},workdir={self.base / 'work'}", str(self.root)])
            units = self.root / "etc/systemd/system"
            self.ns.run(["sh", "-c", 'for u; do ln -sfn /dev/null "$0/$u"; done', str(units), *self.masked])
            self._boot()
        except BaseException:
            self.stop()
            raise
        return self

    def _boot(self) -> None:
        argv = [NSPAWN, "-D", str(self.root), "--register=no", "--keep-unit", "--console=passive",
                "--private-network", *[f"--bind-ro={b}" for b in self.binds], "-b"]
        with open(self.console_log, "ab") as log:
            self.nspawn = self.ns.popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                        start_new_session=True)

        def pid1() -> Optional[int]:
            if self.nspawn.poll() is not None:
                raise BootError(f"{NSPAWN} exited with status {self.nspawn.returncode}:\n{self.console()}")
            return _systemd_below(self.nspawn.pid)
        self.pid1 = eventually(pid1, "the container's systemd", describe=self.console)

        def booted() -> str:
            # "starting" until the boot's jobs are done; then running, or degraded when a unit failed
            state = self.run(["systemctl", "is-system-running"], check=False).stdout.strip()
            return state if state in ("running", "degraded") else ""
        eventually(booted, "the container to finish booting", timeout=120, describe=self.console)

    def console(self) -> str:
        try:
            return self.console_log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def enter_argv(self, argv: Sequence[str], user: Optional[str] = None) -> List[str]:
        """``argv`` in every namespace of the container (its root, its pid 1's view), optionally as ``user``."""
        if self.pid1 is None:
            raise BootError("the container is not running")
        prefix = ["nsenter", "-t", str(self.pid1), "-a", "--"]
        if user is not None:
            prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]
        return prefix + list(argv)

    def run(self, argv: Sequence[str], check: bool = True, input: Union[str, bytes, None] = None,
            env: Optional[Dict[str, str]] = None, user: Optional[str] = None) -> subprocess.CompletedProcess:
        """``argv`` inside (as root unless ``user``), with a plain environment; text in and out unless
        ``input`` is bytes."""
        proc = subprocess.run(self.enter_argv(argv, user), input=input, capture_output=True,
                              text=not isinstance(input, bytes), cwd="/", env={**ENV, **(env or {})})
        if check and proc.returncode != 0:
            err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode("utf-8", "replace")
            raise BootError(f"{' '.join(argv)} failed ({proc.returncode}): {err.strip()[-2000:]}")
        return proc

    def read(self, path: str) -> str:
        return self.run(["cat", path]).stdout

    def write(self, path: str, data: Union[str, bytes]) -> None:
        self.run(["sh", "-c", 'cat > "$0"', path], input=data)

    def stop(self) -> None:
        """Power off (systemd stops every unit), then make sure nothing of it is left; the overlay
        goes with the mount namespace."""
        nspawn, self.nspawn = self.nspawn, None
        if nspawn is not None and nspawn.poll() is None:
            if self.pid1 is not None:
                subprocess.run(self.enter_argv(["systemctl", "poweroff", "--no-block"]), capture_output=True)
            try:
                nspawn.wait(90)
            except subprocess.TimeoutExpired:
                if self.pid1 is not None:   # the container's init: its whole pid namespace dies with it
                    _kill(self.pid1)
                nspawn.kill()
                nspawn.wait()
        self.pid1 = None
        self.ns.stop()

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def _systemd_below(pid: int) -> Optional[int]:
    """The pid (in our namespace) of the first ``systemd`` among ``pid``'s descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop(0)
        try:
            if Path(f"/proc/{p}/comm").read_text().strip() == "systemd":
                return p
        except OSError:
            continue
        todo += children.get(p, [])
    return None


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
