"""READY=1 for systemd (imunifyemail.sdnotify; the units are Type=notify): sent to the socket systemd
names, by the main process alone, and only once the service's sockets are there with their final
owners and modes — the real daemon and the real web app, each started as root as systemd starts them,
with a datagram socket of the test's in systemd's place. tests/test_systemd.py does it under systemd."""
import logging
import os
import pwd
import socket
import stat
import struct
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Tuple

import pytest

from devtools import processes
from devtools.web import WEB
from imunifyemail import sdnotify


def listener(path: str) -> socket.socket:
    """A datagram socket like systemd's /run/systemd/notify (anyone may write to it), with the
    sender's credentials on every message."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    if not path.startswith("\0"):
        os.chmod(path, 0o777)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.settimeout(60)   # a hang guard only: the message comes or the test fails
    return sock


def receive(sock: socket.socket) -> Tuple[bytes, int]:
    """The next message and the pid that sent it."""
    data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("iII")))
    [pid] = [struct.unpack("iII", d)[0] for level, kind, d in ancillary
             if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS]
    return data, pid


def test_ready_goes_to_the_socket_systemd_names_and_the_name_leaves_the_environment(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    with listener(path) as sock:
        monkeypatch.setenv(sdnotify.ENV, path)
        address = sdnotify.take_address()
        assert address == path and sdnotify.ENV not in os.environ   # nothing started later inherits it
        sdnotify.ready(address)
        assert receive(sock) == (b"READY=1", os.getpid())


def test_an_abstract_socket_is_reached_by_its_at_sign_name():
    name = f"ie-test-{uuid.uuid4().hex}"
    with listener("\0" + name) as sock:
        sdnotify.ready("@" + name)
        assert receive(sock)[0] == b"READY=1"


def test_without_systemd_nothing_is_sent(monkeypatch):
    monkeypatch.delenv(sdnotify.ENV, raising=False)
    assert sdnotify.take_address() is None
    sdnotify.ready(None)   # no socket, no error


def test_a_socket_that_is_gone_is_logged_not_raised(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        sdnotify.ready(str(tmp_path / "gone"))
    assert "cannot tell systemd the service is ready" in caplog.text and "gone" in caplog.text


def owner_and_mode(path: Path) -> Tuple[str, int]:
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode), path
    return pwd.getpwuid(st.st_uid).pw_name, stat.S_IMODE(st.st_mode)


def started(argv, root: Path, notify: str) -> subprocess.Popen:
    env = {**os.environ, "IMUNIFYEMAIL_ROOT": str(root), sdnotify.ENV: notify}
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
                            start_new_session=True)


def stopped(proc: subprocess.Popen) -> None:
    processes.stop(proc, 60, group=True)


@pytest.mark.service
def test_the_daemon_says_ready_once_its_sockets_listen_with_their_owners(root):
    notify = str(root.path / "notify")   # reachable after the drop to _imunifyemail, as systemd's is
    run_dir = root.path / "var/run/imunifyemail"
    with listener(notify) as sock:
        proc = started([sys.executable, "-m", "imunifyemail.daemon.main"], root.path, notify)
        try:
            data, pid = receive(sock)
            found = {name: owner_and_mode(run_dir / name) for name in ("filter.sock", "control.sock")}
        finally:
            stopped(proc)
    assert (data, pid) == (b"READY=1", proc.pid)   # the main process: NotifyAccess=main
    assert found == {"filter.sock": ("_imunifyemail", 0o600), "control.sock": ("_imunifyemail", 0o600)}


@pytest.mark.service
def test_the_web_app_says_ready_once_its_sockets_say_who_may_connect(root):
    notify = str(root.path / "notify")
    run_dir = root.path / "var/run/imunifyemail"
    with listener(notify) as sock:
        proc = started([str(WEB)], root.path, notify)
        try:
            data, pid = receive(sock)
            found = {name: owner_and_mode(run_dir / name) for name in ("admin.sock", "user.sock")}
        finally:
            stopped(proc)
    # its own READY=1, not gunicorn's (which comes before the sockets have their modes)
    assert (data, pid) == (b"READY=1", proc.pid)
    assert found == {"admin.sock": ("root", 0o600), "user.sock": ("_imunifyemail", 0o666)}
