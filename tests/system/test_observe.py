"""Observe mode on the real mail path (issue 19): limits count and report who would have been held,
holding nothing; spam is still held; an object's own setting wins over the server's."""
import json

from devtools import samples

from .conftest import held, sender_counts, settle, sunk, wait_held, wait_sunk


def _observed(stack, sender):
    out = json.loads(stack.ie_cli("am", "observed", "--since", "3600", "--limit", "1000").stdout)
    return [item for item in out["items"] if item["sender"] == sender]


def _send(stack, sender, subject, raw=None, recipients=("observe@remote.example",)):
    with stack.smtp_connection(login=sender) as smtp:
        smtp.sendmail(sender, list(recipients), raw or samples.ham(sender=sender, subject=subject))


def test_observe_mode_holds_nothing_and_lists_the_would_be_holds(stack, token):
    sender = f"{token}@demo1.test"
    before = json.loads(stack.ie_cli("am", "server-settings").stdout)
    stack.ie_cli("am", "server-settings", "set", "--sender-email=2", "--observe=1")
    try:
        for n in range(4):   # the 3rd and the 4th are over the limit of 2: sent all the same
            _send(stack, sender, f"Observed {n} {token}",
                  recipients=("observe@remote.example", "observe2@remote.example") if n == 3 else
                  ("observe@remote.example",))
            wait_sunk(stack, token, n + 1)
        settle(stack)
        assert held(stack, token) == []
        assert len(sunk(stack, token)) == 4
        counts = sender_counts(stack, sender)
        assert (counts["messages"], counts["quarantined"], counts["observing"]) == (4, 0, True)

        items = _observed(stack, sender)
        assert [(i["type"], i["name"], i["limit"], i["used"], i["recipients"], i["account"]) for i in items] == [
            ("sender_email", sender, 2, 4, 2, "demo1"), ("sender_email", sender, 2, 3, 1, "demo1")]   # the message counted
        exim_log = stack.exim_log()
        for item in items:   # Exim's ids of messages it delivered
            assert f"{item['exim_id']} <= {sender} " in exim_log and f"{item['exim_id']} => " in exim_log
        assert stack.daemon_log().count(f"observe mode, would have been held: sender_email {counts['id']}") == 2

        # spam is not a limit: still held
        _send(stack, sender, "", raw=samples.gtube(sender=sender, subject=f"Observed spam {token}"))
        [spam] = wait_held(stack, token)
        assert spam["reasons"] == ["spam"]

        # the object's own setting wins: enforcing, the next message is held for its limit
        stack.ie_cli("am", "limit", "set", "--id", counts["id"], "--so-type", "sender_email", "--observe", "0")
        _send(stack, sender, f"Enforced {token}")
        wait_held(stack, token, 2)
        assert [m["reasons"] for m in held(stack, token) if m["subject"].startswith("Enforced")] == [["ratelimit"]]
        assert len(_observed(stack, sender)) == 2
    finally:
        stack.ie_cli("am", "server-settings", "set", f"--sender-email={before['sender_email']}",
                     f"--observe={before.get('observe', 0)}")
    settle(stack)


def test_an_object_observing_on_its_own_under_an_enforcing_server(stack, token):
    sender = f"{token}@demo2.test"
    _send(stack, sender, f"First {token}")
    wait_sunk(stack, token)
    object_id = sender_counts(stack, sender)["id"]
    stack.ie_cli("am", "limit", "set", "--id", object_id, "--so-type", "sender_email", "--limit", "1",
                 "--observe", "1")
    for n in range(2):
        _send(stack, sender, f"Over {n} {token}")
    wait_sunk(stack, token, 3)
    settle(stack)
    assert held(stack, token) == [] and len(_observed(stack, sender)) == 2
    stack.ie_cli("am", "limit", "set", "--id", object_id, "--so-type", "sender_email", "--observe", "-1")
    _send(stack, sender, f"Enforced {token}")
    [item] = wait_held(stack, token)
    assert item["reasons"] == ["ratelimit"] and len(sunk(stack, token)) == 3
    settle(stack)
