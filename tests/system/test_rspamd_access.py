"""Rspamd is ours alone: a hosted user finds no way to it, the daemon still scans through it, root
still reaches the controller. The stack's Rspamd runs the production worker files (rpm/rspamd/override.d)
as _rspamd, with its sockets in $IMUNIFYEMAIL_ROOT/var/run/rspamd, where the daemon's default
rspamd.url points."""
import json
import os
import stat

from devtools import samples
from devtools.stack import PYTHON, REPO

from .conftest import settle, sunk, wait_held


def probe(stack, user, *args: str) -> dict:
    """devtools.rspamd_probe run as ``user`` (with its groups; None: root) inside the stack's namespaces."""
    out = stack.run(["env", f"PYTHONPATH={REPO}", PYTHON, "-m", "devtools.rspamd_probe", *args], user=user)
    return json.loads(out.stdout)


def test_a_hosted_user_is_refused_at_every_address(stack):
    found = probe(stack, "demo1")
    sockets = {f"unix:{stack.rspamd.socket}", f"unix:{stack.rspamd.controller_socket}",
               f"unix:{stack.rspamd.rundir / 'rspamd.sock'}"}
    assert sockets <= set(found), sorted(found)   # it found the sockets (in /proc/net/unix)...
    tcp = {a for a in found if a.startswith("tcp:")}
    assert {f"tcp:127.0.0.1:{p}" for p in range(11332, 11336)} | {f"tcp:[::1]:{p}" for p in range(11332, 11336)} \
        <= tcp
    for address, outcomes in found.items():   # ...and got nowhere: /history, /learnspam, /saveactions, /checkv2
        assert set(outcomes) == {"GET /history", "POST /learnspam", "POST /saveactions", "POST /checkv2"}
        expected = {"refused EACCES"} if address.startswith("unix:") else {"refused ECONNREFUSED"}
        assert set(outcomes.values()) == expected, (address, outcomes)


def test_the_sockets_are_as_in_production(stack):
    for path in (stack.rspamd.socket, stack.rspamd.controller_socket):
        st = os.stat(path)
        assert stat.S_IMODE(st.st_mode) == 0o660, path
    assert stack.rspamd.socket_problem() == ""   # _rspamd:_imunifyemail
    assert stack.rspamd.socket == stack.root / "var/run/rspamd/normal.sock"
    assert "url" not in stack.config()["rspamd"]   # the daemon uses the default rspamd.url


def test_the_daemon_still_scans(stack, token):
    sender = f"{token}@demo1.test"
    stack.sendmail(samples.gtube(sender=sender, subject=f"Access {token}"), "-f", sender, "x@remote.example",
                   user="demo1")
    [item] = wait_held(stack, token)
    assert item["account_name"] == "demo1" and item["reasons"] == ["spam"]
    settle(stack)
    assert sunk(stack, token) == []


def test_root_still_reaches_the_controller(stack):
    found = probe(stack, None, "--address", f"unix:{stack.rspamd.controller_socket}", "--request", "GET /history")
    assert found == {f"unix:{stack.rspamd.controller_socket}": {"GET /history": "answered 200"}}
    history = stack.rspamd.controller_get("/history")   # every account's scans: what demo1 must never see
    assert history and all({"id", "action", "score"} <= set(row) for row in history)
