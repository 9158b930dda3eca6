"""Sender limits (Activity Monitor, issue 3) on the real mail path, and releasing what they held."""
import json

from devtools import samples

from .conftest import held, sender_counts, settle, sunk, wait_held, wait_sunk


def test_a_message_over_the_limit_is_held_and_its_release_delivers_it_once_uncounted(stack, token):
    sender = f"{token}@demo1.test"
    before = json.loads(stack.ie_cli("am", "server-settings").stdout)
    stack.ie_cli("am", "server-settings", "set", "--sender-email=2")
    try:
        for n in range(3):
            with stack.smtp_connection(login=sender) as smtp:
                smtp.sendmail(sender, ["limit@remote.example"],
                              samples.ham(sender=sender, subject=f"Burst {n} {token}"))
            if n < 2:
                wait_sunk(stack, token, n + 1)
        [item] = wait_held(stack, token)
    finally:
        stack.ie_cli("am", "server-settings", "set", f"--sender-email={before['sender_email']}")
    settle(stack)
    assert item["reasons"] == ["ratelimit"] and item["subject"] == f"Burst 2 {token}"
    assert len(sunk(stack, token)) == 2
    counts = sender_counts(stack, sender)
    assert (counts["messages"], counts["quarantined"]) == (2, 1)
    scans = len([line for line in stack.daemon_log().splitlines() if f"sender=<{sender}>" in line])

    assert stack.ie_cli("emails", "release", "--ids", item["email_id"]).stdout.decode().strip() == "OK"
    wait_sunk(stack, token, 3)
    settle(stack)
    released = [m for m in sunk(stack, token) if "Burst 2" in m.header("Subject")]
    assert len(released) == 1 and released[0].rcpt_to == ["limit@remote.example"]
    assert held(stack, token) == []
    assert len([line for line in stack.daemon_log().splitlines() if f"sender=<{sender}>" in line]) == scans
    [second] = [line for line in stack.exim_log().splitlines()
                if f"<= {sender} " in line and "P=imunifyemail-released" in line]
    assert " U=Debian-exim " in second   # released as the Exim user, past the router
    counts = sender_counts(stack, sender)
    assert (counts["messages"], counts["quarantined"]) == (2, 1)   # not counted again
