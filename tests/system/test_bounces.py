"""Exim's own messages that carry another message (a bounce, the failure report of ``sendmail -t``)
are scanned like any outbound mail: a hosted user cannot get a payload out by making Exim send it
back to a "sender" of their choosing (docs/security.md)."""
import json

from devtools import samples

from .conftest import settle, sunk


def held_for(stack, recipient: str):
    out = stack.ie_cli("emails", "list", "-a", "root", "--recipient", recipient, "--limit", "100", "--json")
    return json.loads(out.stdout)["items"]


def wait_held_for(stack, recipient: str):
    return stack.wait_for(lambda: held_for(stack, recipient), f"mail to {recipient} in the quarantine")


def sunk_to(stack, recipient: str):
    return [m for m in stack.delivered() if recipient in m.rcpt_to]


def payload(sender: str, to: str, subject: str) -> bytes:
    """GTUBE with a Windows executable attached: what must not leave, whoever sends it."""
    msg = samples.build(sender=sender, to=(to,), subject=subject, body=f"Spam.\n\n{samples.GTUBE}\n")
    msg.add_attachment(samples.pe_blob(), maintype="application", subtype="octet-stream", filename="setup.exe")
    return bytes(msg)


def test_the_failure_report_of_a_malformed_recipient_is_scanned_and_held(stack, token):
    victim = f"victim-{token}@remote.example"
    raw = payload(victim, "bad@@x", f"Payload {token}")
    # -t: recipients from the headers; a malformed one makes Exim mail a failure report, with the
    # message in it, to the envelope sender the user chose
    stack.sendmail(raw, "-t", "-f", victim, user="demo1", check=False)
    [item] = wait_held_for(stack, victim)
    assert item["sender"] == "" and item["recipients"] == [victim]
    assert sorted(item["reasons"]) == ["spam", "winexec"]   # the copied message's attachment is found too
    settle(stack)
    assert sunk_to(stack, victim) == []


def test_a_bounce_from_an_unknown_local_user_is_scanned_and_held(stack, token):
    victim = f"victim-{token}@remote.example"
    # cPanel's default address of a domain fails ("No Such User Here"): Exim bounces the message,
    # copy included, to the envelope sender
    stack.sendmail(payload(victim, "nosuchuser@demo2.test", f"Payload {token}"), "-f", victim,
                   "nosuchuser@demo2.test", user="demo1")
    [item] = wait_held_for(stack, victim)
    assert (item["sender"], item["recipients"], item["account_name"]) == ("", [victim], "root")
    assert sorted(item["reasons"]) == ["spam", "winexec"]   # the copied message's attachment is found too
    settle(stack)
    assert sunk_to(stack, victim) == []
    assert any("nosuchuser@demo2.test" in line and "No Such User Here" in line
               for line in stack.exim_log().splitlines())


def test_an_honest_bounce_still_reaches_its_sender_scanned(stack, token):
    sender = f"someone-{token}@remote.example"
    stack.sendmail(samples.ham(sender=sender, to=("nosuchuser@demo1.test",), subject=f"Typo {token}"), "-f", sender,
                   "nosuchuser@demo1.test", user="demo1")
    stack.wait_for(lambda: sunk_to(stack, sender), "the bounce at the sink")
    [bounce] = sunk_to(stack, sender)
    assert bounce.mail_from == "" and bounce.header("X-ImunifyEmail-Filter-Action") == "no action"
    assert held_for(stack, sender) == []
    settle(stack)
    assert len(sunk_to(stack, sender)) == 1 and sunk(stack, token) == []   # the original went nowhere else


def test_local_mail_to_a_known_mailbox_is_still_delivered(stack, token):
    stack.sendmail(samples.ham(subject=f"Known {token}"), "-f", f"{token}@demo1.test", "office@demo2.test",
                   user="demo1")
    stack.wait_for(lambda: token in stack.layout.mailbox.read_text(errors="replace")
                   if stack.layout.mailbox.exists() else False, "the local delivery")
