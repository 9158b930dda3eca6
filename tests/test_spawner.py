"""The re-inject spawner: one fixed command, run as the Exim user, pipes handed back, gone with its parent."""
import os
import pwd
import time

import pytest

from imunifyemail.daemon import spawner as sp

EXIM_USER = "Debian-exim"


@pytest.fixture
def spawner():
    s = sp.Spawner.start(EXIM_USER, ["/bin/sh", "-c", "id -u; id -G; cat"])
    yield s
    if s.conn.fileno() != -1:
        s.close()


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def test_the_fixed_command_runs_as_the_exim_user_on_the_handed_back_pipes(spawner):
    stdin, stdout = spawner.request()
    os.write(stdin, b"echoed\n")
    os.close(stdin)   # end of input: the command ends, its stdout closes
    out = _read_all(stdout).decode().split("\n")
    os.close(stdout)
    exim = pwd.getpwnam(EXIM_USER)
    assert out[0] == str(exim.pw_uid)
    assert out[1].split() == [str(exim.pw_gid)]
    assert out[2] == "echoed"


def test_nothing_but_the_one_request_is_served(spawner):
    spawner.conn.send(b"spawn /bin/sh -c evil")
    assert spawner.conn.recv(256).startswith(b"error: unknown request")
    stdin, stdout = spawner.request()   # still serving
    os.close(stdin)
    os.close(stdout)


def test_the_spawner_holds_only_its_socket_and_leaves_with_its_parent(spawner):
    for fd in spawner.request():   # answered: its set-up (closing, dropping) is done
        os.close(fd)
    fds = {int(n): os.readlink(f"/proc/{spawner.pid}/fd/{n}") for n in os.listdir(f"/proc/{spawner.pid}/fd")}
    others = [target for fd, target in fds.items() if fd > 2]
    assert len(others) == 1 and others[0].startswith("socket:")   # only the socketpair besides stdio
    assert os.stat(f"/proc/{spawner.pid}").st_uid == pwd.getpwnam(EXIM_USER).pw_uid
    spawner.conn.close()   # what the kernel does when the daemon dies
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pid, _ = os.waitpid(spawner.pid, os.WNOHANG)
        if pid:
            return
        time.sleep(0.01)
    pytest.fail("the spawner did not exit")


def test_an_unknown_user_is_a_startup_error():
    with pytest.raises(sp.SpawnError, match="reinject.user"):
        sp.Spawner.start("no-such-user-here", ["/usr/sbin/sendmail", "-bs"])
