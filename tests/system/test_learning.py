"""The filter learns from the administrator, through real Exim, Rspamd and Redis (issue 19, point 4).

Deleting a held message as spam teaches Rspamd's fuzzy storage and Bayes (through its controller, kept
in Redis): a near copy (another account, another recipient, a changed line) is then held; releasing
one as not spam whitelists it: a near copy passes again. The campaign passes the filter on its own.
"""
import json
import os
import pwd
import stat

import pytest

from devtools import samples
from devtools.stack import PYTHON
from devtools.waiting import eventually

from .conftest import drop_stack, make_stack, settle, sunk, wait_held, wait_sunk

SPAM_SYMBOL, HAM_SYMBOL = "IMUNIFYEMAIL_FUZZY_SPAM", "IMUNIFYEMAIL_FUZZY_HAM"


@pytest.fixture(scope="module")
def stack(daemon_user):
    """A stack of its own: what these tests teach Rspamd (an executable's fuzzy hashes among them) must
    not hold the other tests' mail on the shared stack."""
    s = make_stack("ie-learning-")
    yield s
    drop_stack(s)


def symbols(stack, raw: bytes) -> dict:
    return stack.rspamd.scan(raw, IP="127.0.0.1", User="probe", From="probe@demo2.test",
                             Rcpt="probe@remote.example")["symbols"]


def send(stack, user: str, raw: bytes, sender: str, rcpt: str) -> None:
    stack.sendmail(raw, "-f", sender, rcpt, user=user)


def audit_entries(stack, action: str) -> list:
    items = json.loads(stack.ie_cli("audit", "list", "--json").stdout)["items"]
    return [e for e in items if e["action"] == action]


def test_a_campaign_deleted_as_spam_is_held_elsewhere_and_one_released_as_not_spam_passes(stack, token):
    a1, a2 = f"{token}-1@demo1.test", f"{token}-2@demo2.test"
    # The campaign passes on its own: nothing but a lesson can hold it.
    send(stack, "demo2", samples.campaign("Mr. Paul Kent", sender=a2, subject=f"Proposal {token} before"),
         a2, "first@remote.example")
    wait_sunk(stack, token)
    # demo1's two copies are held for their executable; the administrator deletes both as spam.
    for n in range(2):
        send(stack, "demo1", samples.with_exe(sender=a1, subject=f"Proposal {token} exe {n}",
                                              body="\n".join(samples.CAMPAIGN) + "\n"), a1, f"victim{n}@remote.example")
    both = wait_held(stack, f"{token} exe", 2)
    assert [m["reasons"] for m in both] == [["winexec"], ["winexec"]]
    held = both[0]
    out = stack.ie_cli("emails", "remove", "--ids", ",".join(m["email_id"] for m in both), "--as-spam")
    assert out.stdout.decode().splitlines() == ["learned as spam: 2", "OK"], out
    assert out.stderr == b""
    # The storage writes its lessons to Redis every 2 s (override.d/worker-fuzzy.inc sync)
    near = samples.campaign("Mr. Peter Brown", sender=a2, subject=f"Proposal {token} near")
    eventually(lambda: SPAM_SYMBOL in symbols(stack, near), "Rspamd to know the campaign")
    # A near copy from another account, to another recipient, with a changed line: held as spam.
    send(stack, "demo2", near, a2, "other@remote.example")
    [copy] = wait_held(stack, f"{token} near")
    assert copy["account_name"] == "demo2" and copy["reasons"] == ["spam"]
    assert copy["filter_action"] == "reject"
    # The administrator releases it as not spam: it is sent, and a near copy of it passes again.
    out = stack.ie_cli("emails", "release", "--ids", copy["email_id"], "--not-spam")
    assert out.stdout.decode().splitlines() == ["learned as not spam: 1", "OK"], out
    wait_sunk(stack, f"{token} near")
    again = samples.campaign("Mr. Steve Rogers", sender=a2, subject=f"Proposal {token} again")
    eventually(lambda: HAM_SYMBOL in symbols(stack, again) and SPAM_SYMBOL not in symbols(stack, again),
               "Rspamd to know the release")
    send(stack, "demo2", again, a2, "third@remote.example")
    wait_sunk(stack, f"{token} again")
    settle(stack)
    assert sunk(stack, f"{token} exe") == []
    # Both lessons are in the audit trail, root's, with the ids they taught.
    [spam] = [e for e in audit_entries(stack, "learn_spam") if held["email_id"] in e["ids"]]
    assert sorted(spam["ids"]) == sorted(m["email_id"] for m in both) and spam["outcome"] == "ok"
    [ham] = [e for e in audit_entries(stack, "learn_ham") if copy["email_id"] in e["ids"]]
    assert ham["outcome"] == "ok" and ham["actor"] == "root"


def test_a_hosted_user_cannot_write_to_or_read_the_fuzzy_storage_nor_its_redis(stack):
    """Rspamd 3.4's fuzzy storage is on UDP 127.0.0.1:11335 (no unix socket): it answers a plain
    request (a local user's, who does not know its secret key) with 403, a write as much as a check."""
    script = (
        "import socket, struct, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(30)\n"
        "out = []\n"
        "for cmd in (1, 0):\n"
        "    s.sendto(struct.pack('<BBBBiI64s', 4, cmd, 0, 12, 1, 7 + cmd, b'x' * 64), ('127.0.0.1', 11335))\n"
        "    out.append(struct.unpack('<iIIf', s.recv(200)[:16])[0])\n"
        "print(out)\n")
    proc = stack.run([PYTHON, "-c", script], user="demo1")
    assert proc.stdout.decode().strip() == "[403, 403]", proc
    # ...nor reach its Redis: a 0600 socket of _rspamd's (root can)
    st = os.stat(stack.redis_socket)
    assert (pwd.getpwuid(st.st_uid).pw_name, stat.S_IMODE(st.st_mode)) == ("_rspamd", 0o600)
    refused = stack.run(["redis-cli", "-s", str(stack.redis_socket), "PING"], user="demo1", check=False)
    assert b"Permission denied" in refused.stdout + refused.stderr, refused
    assert stack.run(["redis-cli", "-s", str(stack.redis_socket), "PING"]).stdout.strip() == b"PONG"
