"""A private mount (and optionally network) namespace for Exim and its helpers.

Hosted users can only submit through ``sendmail`` with Exim's *default*
configuration path (EXIM.md: ``-C`` drops their privilege), so a sandbox or
a test binds its own config over that path in a mount namespace of its own.
The system tests add a private network namespace: only loopback exists, DNS
fails at once, and nothing can leave the machine.

A holder process (``sleep``) keeps the namespaces alive; commands join them
with ``nsenter``. Client sockets for the test process itself are created in
a short-lived thread that joined the network namespace (``setns`` acts on
the calling thread only), so pytest's own process stays where it was.
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NamespaceError(RuntimeError):
    pass


class Namespace:
    def __init__(self, net: bool):
        self.net = net
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Namespace":
        if os.geteuid() != 0:
            raise NamespaceError("namespaces need root")
        flags = ["--mount", "--propagation", "private"] + (["--net"] if self.net else [])
        self.proc = subprocess.Popen(["unshare", *flags, "--", "sleep", "infinity"],
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        # unshare execs sleep: the holder's pid is inside the namespaces once /proc says so
        own = os.readlink("/proc/self/ns/mnt")
        for _ in range(2000):
            if self.proc.poll() is not None:
                raise NamespaceError(f"unshare exited with status {self.proc.returncode}")
            try:
                if os.readlink(f"/proc/{self.proc.pid}/ns/mnt") != own:
                    break
            except OSError:
                pass
            threading.Event().wait(0.005)
        else:
            raise NamespaceError("unshare did not create the namespace")
        if self.net:
            self.run(["ip", "link", "set", "lo", "up"])
        return self

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise NamespaceError("namespace not started")
        return self.proc.pid

    def enter_argv(self, argv: Sequence[str], user: Optional[str] = None) -> List[str]:
        """``argv`` run inside the namespaces, optionally as ``user`` (with its groups)."""
        prefix = ["nsenter", "-t", str(self.pid), "-m"] + (["-n"] if self.net else []) + ["--"]
        if user is not None:
            prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]
        return prefix + list(argv)

    def run(self, argv: Sequence[str], user: Optional[str] = None, check: bool = True,
            **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("cwd", "/")
        kwargs.setdefault("capture_output", True)
        proc = subprocess.run(self.enter_argv(argv, user), **kwargs)
        if check and proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace") if isinstance(proc.stderr, bytes) else proc.stderr
            raise NamespaceError(f"{' '.join(argv)} failed ({proc.returncode}): {(err or '').strip()[-2000:]}")
        return proc

    def popen(self, argv: Sequence[str], user: Optional[str] = None, **kwargs) -> subprocess.Popen:
        kwargs.setdefault("cwd", "/")
        return subprocess.Popen(self.enter_argv(argv, user), **kwargs)

    def bind(self, source: Path, target: str) -> None:
        """Bind ``source`` over ``target`` inside the mount namespace. Edit the
        source in place afterwards: a new inode would not be seen through it."""
        self.run(["mount", "--bind", str(source), target])

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` in a thread that joined the network namespace."""
        if not self.net:
            return fn(*args)
        box: dict = {}

        def worker():
            try:
                fd = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns(CLONE_NEWNET) failed")
                finally:
                    os.close(fd)
                box["value"] = fn(*args)
            except BaseException as exc:   # handed to the caller's thread
                box["error"] = exc

        t = threading.Thread(target=worker, name="netns-call")
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def connect(self, address, timeout: Optional[float] = None) -> socket.socket:
        """A TCP connection made from inside the network namespace."""
        return self.call(socket.create_connection, address, timeout)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


def require_tools() -> None:
    missing = [t for t in ("unshare", "nsenter", "setpriv", "ip") if shutil.which(t) is None]
    if missing:
        raise NamespaceError(f"missing tools: {', '.join(missing)} (apt-get install util-linux iproute2)")
