"""When a part is down, mail waits or passes unscanned — it is never lost, never bounced early."""
import json
import re

from devtools import samples

from .conftest import held, settle, sunk, wait_held, wait_sunk


def _status(stack) -> dict:
    return json.loads(stack.ie_config("status", "--json").stdout)


def test_daemon_down_mail_waits_in_the_queue_and_is_filtered_after_it_returns(stack, token):
    stack.stop_daemon()
    try:
        ham_sender, spam_sender = f"{token}-h@demo1.test", f"{token}-s@demo2.test"
        rcpts = [f"{token}-a@remote.example", f"{token}-b@remote.example"]
        with stack.smtp_connection(login=ham_sender) as smtp:
            smtp.sendmail(ham_sender, rcpts[:1], samples.ham(sender=ham_sender, subject=f"Wait {token}"))
        with stack.smtp_connection(login=spam_sender) as smtp:
            smtp.sendmail(spam_sender, rcpts[1:], samples.gtube(sender=spam_sender, subject=f"Wait spam {token}"))

        def deferred():
            return [line for line in stack.exim_log().splitlines()
                    if " == " in line and "R=imunifyemail_scan defer" in line and token in line]
        stack.wait_for(lambda: len(deferred()) >= 2, "two deferred deliveries")
        status = _status(stack)
        assert status["daemon"]["running"] is False
        assert status["queue"]["waiting_for_scanner"] >= 2
        text = stack.ie_config("status").stdout.decode()
        assert re.search(r"Exim queue:\s+\d+ message\(s\) waiting for the scanner", text)
        assert "bounce" not in stack.exim_log() and sunk(stack, token) == []
        # Exim's retry rule for these deliveries: the recipient address's, 4 days like a remote host.
        rule = stack.run(["/usr/sbin/exim", "-brt", rcpts[0]]).stdout.decode()
        assert "F,4d" in rule
    finally:
        stack.start_daemon()
    # No queue run by the test: back up, the daemon has Exim deliver what it deferred (exim -M).
    [msg] = wait_sunk(stack, token)
    [item] = wait_held(stack, token)
    settle(stack)
    assert msg.mail_from == ham_sender and msg.header("X-ImunifyEmail-Filter-Action") == "no action"
    assert item["account_name"] == "demo2" and item["reasons"] == ["spam"]
    assert _status(stack)["queue"]["waiting_for_scanner"] == 0


def test_rspamd_down_mail_waits_in_the_queue_and_is_scanned_when_it_answers_again(stack, token):
    sender = f"{token}@demo1.test"
    stack.rspamd.stop()
    try:
        with stack.smtp_connection(login=sender) as smtp:
            smtp.sendmail(sender, ["cid@remote.example"], samples.gtube(sender=sender, subject=f"Spam {token}"))
            smtp.sendmail(sender, ["cid@remote.example"], samples.ham(sender=sender, subject=f"Ham {token}"))
        stack.wait_for(lambda: len([line for line in stack.exim_log().splitlines() if " == cid@remote.example "
                                    in line and "Rspamd unavailable" in line]) >= 2, "both deferred by the router")
        assert _status(stack)["rspamd"]["reachable"] is False
        assert sunk(stack, token) == [] and held(stack, token) == []   # neither waved through nor lost
    finally:
        stack.rspamd.start()
    # handed back to Exim as soon as Rspamd answers: scanned as if nothing had happened
    [item] = wait_held(stack, f"Spam {token}")
    [msg] = wait_sunk(stack, f"Ham {token}")
    settle(stack)
    assert item["reasons"] == ["spam"] and msg.header("X-ImunifyEmail-Filter-Action") == "no action"
