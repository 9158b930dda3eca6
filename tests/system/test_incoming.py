"""The incoming filter (ie-config enable-incoming) through real Exim and Rspamd, delivering to real
Maildirs: spam from outside lands in the recipient's Junk folder, ham in the inbox; a whitelisted
recipient and an account with the filter off get both in the inbox; the daily counts add up; a hosted
user can neither send another account's ham to Junk nor keep spam out of it with headers."""
import json
from pathlib import Path

import pytest

from devtools import samples
from devtools.exim import maildir

from .conftest import drop_stack, make_stack

INBOX_ON = "info@demo1.test"        # demo1: filter on
WHITELISTED = "sales@demo1.test"    # demo1, on the recipient whitelist
OFF = "info@demo2.test"             # demo2: filter off


@pytest.fixture(scope="module")
def incoming_stack(daemon_user):
    stack = make_stack("ie-incoming-")
    try:
        boxes = {a: maildir(stack.root, owner, a) for a, owner in
                 ((INBOX_ON, "demo1"), (WHITELISTED, "demo1"), (OFF, "demo2"))}
        out = stack.ie_config("enable-incoming").stdout.decode()
        assert "Incoming filter enabled" in out
        stack.ie_cli("whitelist", "recipient", "add", WHITELISTED)
        stack.ie_cli("incoming", "edit", "-a", "demo2", "--state", "off")
        yield stack, boxes
    finally:
        drop_stack(stack)


def folder(box: Path, name: str = "") -> list:
    d = box / (f".{name}" if name else "") / "new"
    return [p.read_bytes() for p in sorted(d.glob("*"))] if d.is_dir() else []


def with_token(box: Path, name: str, token: str) -> list:
    return [m for m in folder(box, name) if token.encode() in m]


def send_from_outside(stack, rcpt: str, raw: bytes) -> None:
    client = stack.smtp_connection()
    try:
        client.sendmail("someone@outside.example", [rcpt], raw)
    finally:
        client.close()


def stats(stack) -> dict:
    return json.loads(stack.ie_cli("incoming", "stats", "--since", "1d", "--json").stdout)


def counts(stack, account: str) -> tuple:
    items = [i for i in stats(stack)["items"] if i["account"] == account]
    return sum(i["spam"] for i in items), sum(i["ham"] for i in items)


def test_status_says_the_incoming_filter_is_on(incoming_stack):
    stack, _ = incoming_stack
    report = json.loads(stack.ie_config("status", "--json").stdout)
    assert report["incoming_filter"] == {"enabled": True, "requested": True, "exim_conf": True}
    assert "Incoming filter: on" in stack.ie_config("status").stdout.decode()


def test_spam_goes_to_junk_ham_to_the_inbox_and_the_counts_add_up(incoming_stack, token):
    stack, boxes = incoming_stack
    box = boxes[INBOX_ON]
    spam_before, ham_before = counts(stack, "demo1")
    send_from_outside(stack, INBOX_ON, samples.gtube(sender="someone@outside.example", to=(INBOX_ON,),
                                                     subject=f"spam {token}"))
    send_from_outside(stack, INBOX_ON, samples.ham(sender="someone@outside.example", to=(INBOX_ON,),
                                                   subject=f"ham {token}"))
    stack.wait_for(lambda: len(with_token(box, "Junk", token)) == 1 and len(with_token(box, "", token)) == 1,
                   "the spam in Junk and the ham in the inbox")
    junk = with_token(box, "Junk", token)[0]
    assert b"spam " + token.encode() in junk and b"X-ImunifyEmail-Incoming: spam; action=reject" in junk
    assert b"ham " + token.encode() in with_token(box, "", token)[0]
    assert counts(stack, "demo1") == (spam_before + 1, ham_before + 1)
    assert "-> junk" in stack.daemon_log()


def test_a_whitelisted_recipient_gets_spam_in_the_inbox(incoming_stack, token):
    stack, boxes = incoming_stack
    box = boxes[WHITELISTED]
    spam_before, _ = counts(stack, "demo1")
    for kind, build in (("spam", samples.gtube), ("ham", samples.ham)):
        send_from_outside(stack, WHITELISTED, build(sender="someone@outside.example", to=(WHITELISTED,),
                                                    subject=f"{kind} {token}"))
    stack.wait_for(lambda: len(with_token(box, "", token)) == 2, "both in the whitelisted recipient's inbox")
    assert with_token(box, "Junk", token) == []
    assert counts(stack, "demo1")[0] == spam_before + 1   # counted as spam all the same


def test_an_account_with_the_filter_off_gets_both_in_the_inbox_uncounted(incoming_stack, token):
    stack, boxes = incoming_stack
    box = boxes[OFF]
    before = counts(stack, "demo2")
    for kind, build in (("spam", samples.gtube), ("ham", samples.ham)):
        send_from_outside(stack, OFF, build(sender="someone@outside.example", to=(OFF,), subject=f"{kind} {token}"))
    stack.wait_for(lambda: len(with_token(box, "", token)) == 2, "both in the inbox of the account with it off")
    assert with_token(box, "Junk", token) == []
    assert counts(stack, "demo2") == before


def test_one_message_to_two_accounts_is_routed_per_recipient(incoming_stack, token):
    stack, boxes = incoming_stack
    client = stack.smtp_connection()
    try:
        client.sendmail("someone@outside.example", [INBOX_ON, OFF],
                        samples.gtube(sender="someone@outside.example", to=(INBOX_ON, OFF), subject=f"both {token}"))
    finally:
        client.close()
    stack.wait_for(lambda: with_token(boxes[INBOX_ON], "Junk", token) and with_token(boxes[OFF], "", token),
                   "demo1's copy in Junk, demo2's in the inbox")


def test_a_hosted_user_cannot_send_ham_to_junk_nor_keep_spam_out_with_headers(incoming_stack, token):
    """demo2 (a hosted user) writes our header and SpamAssassin's into ham for demo1 and into GTUBE:
    only Rspamd's verdict on the content decides, and a sender's copy of our header is replaced."""
    stack, boxes = incoming_stack
    box = boxes[INBOX_ON]
    forged = (("X-Spam-Status", "Yes, score=99"), ("X-ImunifyEmail-Incoming", "spam; action=reject; score=99"))
    stack.sendmail(samples.ham(sender="demo2@demo2.test", to=(INBOX_ON,), subject=f"forged-ham {token}",
                               extra_headers=forged), INBOX_ON, user="demo2")
    stack.sendmail(samples.gtube(sender="demo2@demo2.test", to=(INBOX_ON,), subject=f"forged-spam {token}",
                                 extra_headers=(("X-ImunifyEmail-Incoming", "ham"),)), INBOX_ON, user="demo2")
    stack.wait_for(lambda: with_token(box, "", token) and with_token(box, "Junk", token), "both delivered")
    assert [b"forged-ham" in m for m in with_token(box, "", token)] == [True]
    junk = with_token(box, "Junk", token)
    assert len(junk) == 1 and b"forged-spam" in junk[0] and b"X-ImunifyEmail-Incoming: ham" not in junk[0]


def test_a_hosted_user_cannot_ask_the_filter_socket(incoming_stack):
    stack, _ = incoming_stack
    probe = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1]);"
             "s.sendall(b'INCOMING id= rcpt=aW5mb0BkZW1vMS50ZXN0\\n'); print(s.recv(200))")
    proc = stack.run(["python3", "-c", probe, str(stack.socket_path)], user="demo2", check=False)
    assert proc.returncode != 0 and b"junk" not in proc.stdout


def test_with_rspamd_down_spam_is_delivered_to_the_inbox_and_said_in_the_log(incoming_stack, token):
    """Never a loss, never a bounce: no verdict means the inbox (and a log line), not the queue."""
    stack, boxes = incoming_stack
    box = boxes[INBOX_ON]
    stack.rspamd.stop()
    try:
        send_from_outside(stack, INBOX_ON, samples.gtube(sender="someone@outside.example", to=(INBOX_ON,),
                                                         subject=f"unscanned {token}"))
        stack.wait_for(lambda: with_token(box, "", token), "the unscanned spam in the inbox")
    finally:
        stack.rspamd.start()
    assert with_token(box, "Junk", token) == []
    assert "Rspamd gave no verdict" in stack.daemon_log() and "(not scanned)" in stack.daemon_log()


def test_with_the_daemon_down_mail_is_delivered_to_the_inbox_not_deferred(incoming_stack, token):
    """The router declines when nobody answers: the copy is delivered as without the filter."""
    stack, boxes = incoming_stack
    box = boxes[INBOX_ON]
    stack.stop_daemon()
    try:
        send_from_outside(stack, INBOX_ON, samples.gtube(sender="someone@outside.example", to=(INBOX_ON,),
                                                         subject=f"nodaemon {token}"))
        stack.wait_for(lambda: with_token(box, "", token), "the spam in the inbox while the daemon is down")
    finally:
        stack.start_daemon()
    assert with_token(box, "Junk", token) == [] and not stack.exim.queue()
