"""Run a private Redis for Rspamd's fuzzy storage and Bayes (tests, the sandbox), as Rspamd is run.

Debian's ``redis-server`` in the foreground as ``_rspamd`` (the only user that talks to it: Rspamd's
fuzzy storage worker and its Bayes classifier), on a unix socket only and no TCP port (``port 0``):
the socket is 0600 ``_rspamd``, so no hosted user (nor the product's own user) can read or write the
hashes and tokens the filter learns from; root can. Nothing is persisted (``save ""``): a test's
lessons end with it::

    from devtools.redis import RedisProcess

    with RedisProcess(Path("/tmp/x/redis")) as redis:
        print(redis.socket)          # /tmp/x/redis/redis.sock: rspamd.redis.servers in config.yaml
        print(redis.command_line("DBSIZE"))
"""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Callable, List, Optional

from devtools import processes
from devtools.users import RSPAMD_USER
from devtools.waiting import TimedOut, eventually

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"
_EPHEMERAL = ["--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""]


class RedisProcess:
    def __init__(self, workdir: Path, wrap: Optional[Callable[[List[str]], List[str]]] = None):
        self.workdir = Path(workdir)
        self.wrap = wrap or (lambda argv: argv)   # e.g. a namespace's enter_argv
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = self.workdir / "redis.log"

    @property
    def socket(self) -> Path:
        return self.workdir / "redis.sock"

    def command(self) -> List[str]:
        if not os.path.exists(REDIS_SERVER):
            raise RuntimeError(f"{REDIS_SERVER} not found: apt-get install --no-install-recommends redis-server")
        return self.wrap(["setpriv", f"--reuid={RSPAMD_USER}", f"--regid={RSPAMD_USER}", "--init-groups",
                          REDIS_SERVER, *self.server_args()])

    def server_args(self) -> List[str]:
        return ["--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "600", *_EPHEMERAL,
                "--dir", str(self.workdir)]

    def ready(self) -> bool:
        return self.socket.exists() and self.cli("PING", check=False).stdout.strip() == b"PONG"

    def start(self, timeout: float = 60.0) -> "RedisProcess":
        if self.proc is not None:
            raise RuntimeError("redis already started")
        pw = pwd.getpwnam(RSPAMD_USER)
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chown(self.workdir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.workdir, 0o711)   # traverse only: the socket's own mode decides
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     cwd="/", start_new_session=True)
        log.close()

        def answers() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with status {self.proc.returncode}\n{self.log_tail()}")
            return self.ready()
        try:
            eventually(answers, "redis to answer PING", timeout, describe=self.log_tail)
        except TimedOut:
            self.stop()
            raise
        return self

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """``redis-cli`` on the socket (as root), e.g. ``cli("DBSIZE")``."""
        return subprocess.run([REDIS_CLI, "-s", str(self.socket), *args], capture_output=True,
                              check=check)

    def command_line(self, *args: str) -> str:
        return self.cli(*args).stdout.decode().strip()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            processes.stop(proc, group=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return f"(no log in {self.log_path})"
        return f"--- last lines of {self.log_path} ---\n" + "\n".join(tail)

    def __enter__(self) -> "RedisProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class TcpRedis(RedisProcess):
    """On 127.0.0.1:``port``, for what only TCP can do (a Sentinel names its master by address and port):
    only inside a private network namespace (``wrap``), whose loopback no other user shares."""

    def __init__(self, workdir: Path, wrap: Callable[[List[str]], List[str]], port: int):
        super().__init__(workdir, wrap)
        self.port = port

    def server_args(self) -> List[str]:
        return ["--port", str(self.port), "--bind", "127.0.0.1", *_EPHEMERAL, "--dir", str(self.workdir)]

    def ready(self) -> bool:
        return self.cli("PING", check=False).stdout.strip() == b"PONG"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self.wrap([REDIS_CLI, "-p", str(self.port), *args]), capture_output=True, check=check)


class SentinelProcess(TcpRedis):
    """A Redis Sentinel on 127.0.0.1:``port`` watching the master ``name`` at 127.0.0.1:``master_port``."""

    def __init__(self, workdir: Path, wrap: Callable[[List[str]], List[str]], port: int, name: str,
                 master_port: int):
        super().__init__(workdir, wrap, port)
        self.name, self.master_port = name, master_port

    def server_args(self) -> List[str]:
        conf = self.workdir / "sentinel.conf"   # the Sentinel rewrites it: its own, writable
        conf.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                        f"sentinel monitor {self.name} 127.0.0.1 {self.master_port} 1\n")
        pw = pwd.getpwnam(RSPAMD_USER)
        os.chown(conf, pw.pw_uid, pw.pw_gid)
        return [str(conf), "--sentinel"]

    def master(self) -> str:
        return " ".join(self.command_line("SENTINEL", "get-master-addr-by-name", self.name).split())


def available() -> bool:
    return os.path.exists(REDIS_SERVER) and shutil.which("setpriv") is not None
