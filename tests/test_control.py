"""The daemon's control socket: a release handed over by the web app is the release ie-cli makes —
checked again for the caller, sent once by the one-shot command, noted as released."""
import json
import socket
import subprocess
import sys

import pytest

from imunifyemail.context import Context
from imunifyemail.errors import Forbidden, NotFoundError
from imunifyemail.ops import caller as callers
from imunifyemail.ops.release import DaemonReleaser
from imunifyemail.protocol import clients, control

from devtools import samples

pytestmark = pytest.mark.service


@pytest.fixture
def held(daemon, token):
    """Three messages of demo1 held (the account is blocked), then unblocked."""
    daemon.cli("accounts", "edit", "-a", "demo1", "--state", "block")
    for n in range(3):
        assert daemon.send(samples.ham(subject=f"{token} {n}")).verdict == "hold"
    daemon.cli("accounts", "edit", "-a", "demo1", "--state", "active")
    return sorted(daemon.held(subject=token), key=lambda m: m.subject)


def control_socket(daemon) -> str:
    return daemon.socket.replace("filter.sock", "control.sock")


def release_through_daemon(daemon, caller, ids):
    ctx = Context(releaser=lambda cfg: DaemonReleaser(control_socket(daemon), 30))
    try:
        from imunifyemail.ops import emails
        return emails.release(ctx, caller, ids)
    finally:
        ctx.close()


def test_release_handed_to_the_daemon_is_sent_once_and_leaves_the_quarantine(daemon, held, token):
    ids = [m.email_id for m in held]
    assert release_through_daemon(daemon, callers.admin(callers.WHM, "root"), ids[:2]) == ids[:2]
    sent = [m for m in daemon.reinjected() if token in (m.header("Subject") or "")]
    assert sorted(m.header("Subject") for m in sent) == [f"{token} 0", f"{token} 1"]
    assert all(m.argv[:3] == ["-oi", "-oMr", "imunifyemail-released"] for m in sent)
    assert [m.email_id for m in daemon.held(subject=token)] == [ids[2]]
    released = daemon.quarantine().conn.execute("SELECT email_id, actor, via FROM releases").fetchall()
    assert sorted(tuple(r) for r in released) == sorted((i, "root", "whm") for i in ids[:2])


def test_the_daemon_checks_the_hosted_users_quota_and_scope(daemon, held, token):
    daemon.cli("accounts", "edit", "-a", "demo1", "--releases-limit", "1")
    ids = [m.email_id for m in held]
    user = callers.hosted_user("demo1")
    with pytest.raises(Forbidden, match=r"release limit reached: 1 recipient\(s\) per hour"):
        release_through_daemon(daemon, user, ids[:2])
    assert release_through_daemon(daemon, user, ids[:1]) == ids[:1]
    with pytest.raises(Forbidden, match="0 left now"):
        release_through_daemon(daemon, user, ids[1:2])
    with pytest.raises(NotFoundError):   # another account's user: not theirs to see
        release_through_daemon(daemon, callers.hosted_user("demo2"), ids[2:])
    # What a forged request that skips the web app's own check meets: the same refusal.
    answer = clients.call(control_socket(daemon), {"op": "release", "caller": user.as_dict(), "ids": ids[1:2]}, 30)
    assert answer["ok"] is False and answer["kind"] == "Forbidden"
    assert len(daemon.held(subject=token)) == 2


def test_bad_requests_get_a_clear_answer(daemon):
    for request, kind in (({"op": "format-disk"}, "InvalidInput"),
                          ({"op": "release", "caller": {"account": None, "via": "evil", "login": "x"}, "ids": []},
                           "InvalidInput"),
                          ({"op": "release", "caller": callers.admin().as_dict(), "ids": "all"}, "InvalidInput"),
                          ({"op": "release", "caller": callers.admin().as_dict(), "ids": ["../../etc"]},
                           "InvalidInput")):
        answer = clients.call(control_socket(daemon), request, 30)
        assert (answer["ok"], answer["kind"]) == (False, kind), answer
    assert clients.call(control_socket(daemon), {"op": "ping"}, 30) == {"ok": True}


def test_only_root_and_the_daemon_user_may_connect(daemon):
    probe = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
             "try:\n s.connect(sys.argv[1])\nexcept PermissionError:\n print('EACCES')\n")
    out = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-c",
                          probe, control_socket(daemon)], capture_output=True, text=True, cwd="/")
    assert out.stdout.strip() == "EACCES", out


def raw_call(daemon, line: bytes) -> dict:
    """One line as sent, whatever it holds (clients.call sends only what JSON can say)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(control_socket(daemon))
        s.sendall(line)
        return json.loads(s.makefile("rb").readline())


def test_a_malformed_request_is_answered_as_one_and_changes_nothing(daemon, held, token):
    ids = [m.email_id for m in held]
    malformed = {"ok": False, "kind": "InvalidInput", "error": "malformed request"}
    for line in (b"release everything\n", b"[1, 2]\n", b"\xff\xfe{}\n", b"[" * 100000 + b"\n",
                 # a login JSON can carry but no text is (a lone surrogate): refused before anything is sent
                 b'{"op": "release", "caller": {"account": null, "via": "whm", "login": "\\ud800"}, "ids": ["'
                 + ids[0].encode() + b'"]}\n'):
        assert raw_call(daemon, line) == malformed, line[:80]
    assert raw_call(daemon, b'{"op": "release", "caller": ["root"], "ids": []}\n') == \
        {"ok": False, "kind": "InvalidInput", "error": "malformed caller"}
    assert sorted(m.email_id for m in daemon.held(subject=token)) == sorted(ids) and daemon.reinjected() == []
    assert "Traceback" not in daemon.log.read_text()


def test_a_fault_in_the_daemon_is_an_internal_error_with_its_traceback_in_its_log(daemon, held):
    """A damaged row (its recipients not JSON): reading it raises a ValueError deep in the release,
    which is the daemon's fault, not the request's."""
    ids = [m.email_id for m in held]
    daemon.quarantine().conn.execute("UPDATE messages SET recipients = 'not json' WHERE email_id = ?", (ids[0],))
    answer = clients.call(control_socket(daemon), {"op": "release", "caller": callers.admin(callers.WHM).as_dict(),
                                                   "ids": ids[:1]}, 30)
    assert answer == {"ok": False, "kind": "InternalError", "error": "internal error: see the daemon's log"}
    error = control.answer_error(answer)   # what the web app raises
    assert isinstance(error, control.InternalError) and str(error) == "internal error: see the daemon's log"
    log = daemon.log.read_text()
    assert "control request failed" in log and "Traceback" in log and "json.decoder.JSONDecodeError" in log
    kept = daemon.quarantine().conn.execute("SELECT email_id FROM messages WHERE email_id = ?", (ids[0],)).fetchall()
    assert daemon.reinjected() == [] and len(kept) == 1
    assert clients.call(control_socket(daemon), {"op": "ping"}, 30) == {"ok": True}   # and it goes on answering
