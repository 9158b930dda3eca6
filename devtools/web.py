"""The real web app under the real gunicorn (``imunifyemail-web``), for the tests, the sandbox and the bench.

:class:`WebServer` starts it against a ``$IMUNIFYEMAIL_ROOT`` (as root: the master binds the sockets,
workers drop to ``_imunifyemail``), optionally with the sandbox's loopback listener, and waits until
``/healthz`` answers on both sockets. :func:`unix_request` speaks HTTP/1.1 over a unix socket, as the
WHM and cPanel CGIs do.
"""
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Tuple

from devtools.rspamd import free_port
from devtools.waiting import TimedOut, eventually
from imunifyemail.unix_http import UnixHTTPConnection

WEB = Path(sys.executable).with_name("imunifyemail-web")


def unix_request(path: str, method: str, target: str, body: bytes = b"",
                 headers: Optional[Dict[str, str]] = None, timeout: float = 60) -> Tuple[int, Dict[str, str], bytes]:
    conn = UnixHTTPConnection(path, timeout)
    try:
        conn.request(method, target, body=body or None, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


class WebServer:
    def __init__(self, root: Path, dev_port: Optional[int] = None, workers: int = 2, log: Optional[Path] = None):
        self.root = Path(root)
        self.dev_port = dev_port
        self.workers = workers
        self.log = log or self.root / "web.log"
        self.proc: Optional[subprocess.Popen] = None

    @property
    def admin_socket(self) -> str:
        return str(self.root / "var/run/imunifyemail/admin.sock")

    @property
    def user_socket(self) -> str:
        return str(self.root / "var/run/imunifyemail/user.sock")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.dev_port}"

    def start(self, timeout: float = 60) -> "WebServer":
        (self.root / "var/run/imunifyemail").mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "IMUNIFYEMAIL_ROOT": str(self.root), "IMUNIFYEMAIL_WEB_WORKERS": str(self.workers)}
        if self.dev_port:
            env["IMUNIFYEMAIL_WEB_DEV_LISTEN"] = f"127.0.0.1:{self.dev_port}"
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([str(WEB)], env=env, stdout=logf, stderr=logf, cwd="/", start_new_session=True)
        logf.close()

        def healthy() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"imunifyemail-web exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                return all(unix_request(s, "GET", "/healthz", timeout=5)[0] == 200
                           for s in (self.admin_socket, self.user_socket))
            except OSError:
                return False
        try:
            eventually(healthy, "imunifyemail-web to answer /healthz on both sockets", timeout, interval=0.1,
                       describe=lambda: self.log.read_text()[-3000:])
        except TimedOut:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_dev(root: Path, **kwargs) -> WebServer:
    return WebServer(root, dev_port=free_port(), **kwargs).start()
