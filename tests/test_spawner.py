"""The re-inject spawner: one fixed command, run as the Exim user, pipes handed back, gone with its parent."""
import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from devtools.recorder import install_recorder, read_outbox, read_retries
from devtools.waiting import eventually
from imunifyemail.daemon import spawner as sp
from imunifyemail.reinject import ReinjectError

EXIM_USER = "Debian-exim"


@pytest.fixture
def spawner():
    s = sp.Spawner.start(EXIM_USER, "/usr/sbin/sendmail")
    yield s
    if s.conn.fileno() != -1:
        s.close()


def test_nothing_but_its_two_requests_is_served(spawner):
    spawner.conn.send(b"spawn /bin/sh -c evil")
    assert spawner.conn.recv(256).startswith(b"error: unknown request")
    spawner.conn.send(b"retry 1xYkia-0006eG-1N; rm -rf /")
    assert spawner.conn.recv(256).startswith(b"error: bad retry request")


def test_the_spawner_holds_only_its_socket_and_leaves_with_its_parent(spawner):
    spawner.conn.send(b"hello")   # answered: its set-up (closing, dropping) is done
    assert spawner.conn.recv(256).startswith(b"error")
    fds = {int(n): os.readlink(f"/proc/{spawner.pid}/fd/{n}") for n in os.listdir(f"/proc/{spawner.pid}/fd")}
    others = [target for fd, target in fds.items() if fd > 2]
    assert len(others) == 1 and others[0].startswith("socket:")   # only the socketpair besides stdio
    assert os.stat(f"/proc/{spawner.pid}").st_uid == pwd.getpwnam(EXIM_USER).pw_uid
    spawner.conn.close()   # what the kernel does when the daemon dies
    eventually(lambda: os.waitpid(spawner.pid, os.WNOHANG)[0], "the spawner to exit", 30, interval=0.01)


def test_an_unknown_user_is_a_startup_error():
    with pytest.raises(sp.SpawnError, match="reinject.user"):
        sp.Spawner.start("no-such-user-here", "/usr/sbin/sendmail")


@pytest.fixture
def release_spawner():
    """A spawner whose sendmail (the recorder) notes who ran it, with which arguments, on which message."""
    tmp_path = Path(tempfile.mkdtemp(prefix="ie-spawner-", dir="/tmp"))   # reachable by the Exim user
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    fake = tmp_path / "sendmail"
    install_recorder(fake, out, out / "fail", refusal="spool full", refusal_status=75)
    tmp_path.chmod(0o755)
    s = sp.Spawner.start(EXIM_USER, str(fake))
    yield s, out
    s.close()
    shutil.rmtree(tmp_path)


def test_a_release_runs_the_one_shot_command_as_the_exim_user(release_spawner):
    spawner, out = release_spawner
    spawner.release(b"Subject: held\r\n\r\nbody\r\n", "boss@demo1.test", ["a@remote.example", "b@x.example"], 10)
    [sent] = read_outbox(out)
    assert sent.uid == pwd.getpwnam(EXIM_USER).pw_uid
    assert sent.argv == ["-oi", "-oMr", "imunifyemail-released", "-f", "boss@demo1.test",
                         "--", "a@remote.example", "b@x.example"]
    assert sent.message == b"Subject: held\r\n\r\nbody\r\n"
    (out / "fail").touch()
    with pytest.raises(ReinjectError, match="exit status 75: spool full"):
        spawner.release(b"x\r\n", "", ["a@remote.example"], 10)


def test_a_release_with_option_like_addresses_is_refused(release_spawner):
    spawner, out = release_spawner
    for sender, rcpts in (("-be", ["a@x.example"]), ("a@x.example", ["-C/tmp/evil"]), ("a b@x", ["a@x.example"]),
                          ("a@x.example", [])):
        with pytest.raises(ReinjectError, match="bad release request"):
            spawner.release(b"x\r\n", sender, rcpts, 10)
    assert read_outbox(out) == [] and read_retries(out) == []


def test_a_retry_asks_exim_for_those_messages_as_the_exim_user(release_spawner):
    spawner, out = release_spawner
    spawner.retry(["1xYkia-0006eG-1N", "1xYkib-0006eH-2P"])
    [retry] = eventually(lambda: read_retries(out), "the retry's sendmail to have run", 10, interval=0.02)
    assert retry.argv == ["-M", "1xYkia-0006eG-1N", "1xYkib-0006eH-2P"]
    assert retry.uid == pwd.getpwnam(EXIM_USER).pw_uid
    with pytest.raises(sp.SpawnError, match="bad retry request"):
        spawner.retry(["-C/tmp/evil"])
