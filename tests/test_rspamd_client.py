"""The daemon's Rspamd client (daemon/rspamd.py) against a real Rspamd: on its unix socket as in
production (the path resolved under $IMUNIFYEMAIL_ROOT), on TCP as tests and benches may still use,
and its health check. Runs as root with Debian's rspamd (``make deps``): without them it fails."""
import asyncio
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from devtools.rspamd import GTUBE, RspamdProcess, free_port
from imunifyemail import config, paths
from imunifyemail.rspamd import RspamdClient

RCPTS = ["a@remote.example", "b@remote.example"]


def scan(url: str, raw: bytes = GTUBE):
    return asyncio.run(RspamdClient(url, 10).scan(raw, "s@demo1.test", RCPTS, user="demo1", ip="127.0.0.1"))


def ping(url: str, timeout: float = 10) -> bool:
    return asyncio.run(RspamdClient(url, timeout).ping())


@pytest.fixture
def no_root(monkeypatch):
    monkeypatch.delenv(paths.ROOT_ENV, raising=False)


@pytest.fixture
def linked_root(rspamd, monkeypatch, tmp_path):
    """A root whose /var/run/rspamd/normal.sock is the session Rspamd's socket."""
    link = tmp_path / paths.RSPAMD_SOCKET.lstrip("/")
    link.parent.mkdir(parents=True)
    link.symlink_to(rspamd.socket)
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    return tmp_path


def test_scans_on_the_unix_socket(rspamd, no_root):
    assert rspamd.url.startswith("unix:/")
    found = scan(rspamd.url)
    assert found is not None and found.action == "reject" and found.score >= 15
    assert found.version.startswith("3.")


def test_the_default_url_is_resolved_under_the_root(linked_root):
    default = config.validate({}, "defaults")["rspamd"]["url"]
    found = scan(default)
    assert found is not None and found.action == "reject"
    assert ping(default)


def test_a_missing_socket_is_a_failed_scan_not_an_error(rspamd, tmp_path, monkeypatch):
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))   # nothing at <root>/var/run/rspamd/normal.sock
    client = RspamdClient("unix:" + paths.RSPAMD_SOCKET, 10)
    assert client.socket_path == str(tmp_path / "var/run/rspamd/normal.sock")
    assert asyncio.run(client.scan(GTUBE, "s@demo1.test", RCPTS, user="demo1")) is None
    assert asyncio.run(client.ping()) is False


def test_ping(rspamd, no_root):
    assert ping(rspamd.url)
    assert not ping(f"unix:{rspamd.rundir}/absent.sock")
    assert not ping(f"http://127.0.0.1:{free_port()}")   # nothing listens there
    # the controller is not the scanner, but answers /ping too: the health check asks where scans go
    assert ping(f"unix:{rspamd.controller_socket}")


def test_ping_does_not_wait_longer_than_its_timeout(no_root, tmp_path):
    # A listener that never answers (a unix socket nobody accepts on): ping gives up, False.
    path = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        s.listen(1)
        assert ping(f"unix:{path}", timeout=0.2) is False


def test_tcp_still_works():
    # http://host:port: what tests and benches (and configs written before the socket) use.
    workdir = Path(tempfile.mkdtemp(prefix="ie-rspamd-tcp-", dir="/tmp"))
    proc = RspamdProcess(workdir, tcp_port=free_port())
    try:
        proc.start()
        found = scan(proc.tcp_url)
        assert found is not None and found.action == "reject"
        assert ping(proc.tcp_url)
    finally:
        proc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.parametrize("url", ["ftp://x", "unix:relative.sock", "https://127.0.0.1:11333"])
def test_an_unusable_url_is_refused(url):
    with pytest.raises(ValueError, match="unix:/path/to/socket or http://host:port"):
        RspamdClient(url, 10)
