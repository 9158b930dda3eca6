"""One pass through Exim: the verdict is taken while Exim routes the message (real Exim 4.96, the
cPanel-shaped configuration, the real daemon and Rspamd) — and the traps that design has."""
import mailbox
import os

from devtools import samples

from .conftest import held, settle, sunk, wait_held, wait_sunk


def local_copies(stack, token):
    if not stack.layout.mailbox.exists():
        return []
    return [m for m in mailbox.mbox(str(stack.layout.mailbox), create=False) if token in (m["Subject"] or "")]


def test_three_remote_and_one_local_recipient_held_as_one_and_the_local_copy_delivered(stack, token):
    sender = f"{token}@demo1.test"
    remote = ["h1@remote.example", "h2@other.example", "h3@third.example"]
    with stack.smtp_connection() as smtp:
        smtp.sendmail(sender, remote + ["boss@demo2.test"], samples.gtube(sender=sender, subject=f"Held {token}"))
    [item] = wait_held(stack, token)
    stack.wait_for(lambda: local_copies(stack, token), "the local copy")
    settle(stack)
    assert sorted(item["recipients"]) == sorted(remote) and item["reasons"] == ["spam"]
    assert sunk(stack, token) == []
    scans = [line for line in stack.daemon_log().splitlines() if f"sender=<{sender}>" in line]
    assert len(scans) == 1 and "rcpts=3" in scans[0]   # one decision for the three addresses
    discarded = [line for line in stack.exim_log().splitlines()
                 if "=> :blackhole:" in line and "R=imunifyemail_scan" in line and any(r in line for r in remote)]
    assert len(discarded) == 3   # the mainlog says where each address went, and by whom
    [copy] = local_copies(stack, token)
    assert copy["Envelope-to"] == "boss@demo2.test"


def test_a_redirected_address_meets_cpanels_counting_routers_once(stack, token):
    """Without redirect_router, a passed address would start routing again at the first router and be
    counted twice by cPanel's hourly limit; Exim's own routing trace shows it does not."""
    sender = f"{token}@demo1.test"
    raw = samples.ham(sender=sender, subject=f"Trace {token}")
    trace = stack.run(["/usr/sbin/exim", "-d+route", "-odi", "-oi", "-f", sender, "trace@remote.example"],
                      input=raw).stderr.decode(errors="replace")
    wait_sunk(stack, token)
    assert trace.count("--------> check_mail_permissions router <--------") == 1
    assert trace.count("--------> increment_max_emails_per_hour_if_needed router <--------") == 1
    assert trace.count("--------> imunifyemail_scan router <--------") == 1
    assert trace.count("--------> imunifyemail_continue router <--------") == 1
    assert "routed by remote_sink router" in trace


def test_forged_filter_headers_leave_remote_copies_and_stay_in_local_ones(stack, token):
    """Our router handles remote addresses only: a remote copy carries our verdict alone; a local
    recipient's copy is delivered as the sender wrote it (documented in exim_conf/README.md)."""
    sender = f"{token}@demo2.test"
    forged = [("X-ImunifyEmail-Filter-Action", "no action"), ("X-ImunifyEmail-Filter-Score", "-100")]
    raw = samples.ham(sender=sender, subject=f"Forged {token}", extra_headers=forged)
    with stack.smtp_connection() as smtp:
        smtp.sendmail(sender, ["far@remote.example", "near@demo1.test"], raw)
    [msg] = wait_sunk(stack, token)
    stack.wait_for(lambda: local_copies(stack, token), "the local copy")
    settle(stack)
    assert msg.all("X-ImunifyEmail-Filter-Score") != ["-100"] and len(msg.all("X-ImunifyEmail-Filter-Score")) == 1
    assert local_copies(stack, token)[0]["X-ImunifyEmail-Filter-Score"] == "-100"


def test_a_20_mb_message_is_scanned_within_the_routers_time(stack, token):
    sender = f"{token}@demo1.test"
    msg = samples.build(sender=sender, subject=f"Big {token}")
    msg.add_attachment(os.urandom(20 * 1024 * 1024), maintype="application", subtype="octet-stream",
                       filename="backup.bin")
    stack.sendmail(bytes(msg), "-f", sender, "big@remote.example", user="demo1")
    [delivered] = wait_sunk(stack, token)
    settle(stack)
    assert delivered.header("X-ImunifyEmail-Filter-Action") == "no action"
    assert len(delivered.raw) > 20 * 1024 * 1024
    assert "R=imunifyemail_scan defer" not in "\n".join(x for x in stack.exim_log().splitlines() if token in x)


def test_an_address_test_gets_an_answer_without_a_message(stack):
    out = stack.run(["/usr/sbin/exim", "-bt", "someone@remote.example"]).stdout.decode()
    assert "router = remote_sink" in out and "transport = remote_smtp" in out


def test_released_mail_is_not_judged_again(stack, token):
    sender = f"{token}@demo2.test"
    stack.sendmail(samples.gtube(sender=sender, subject=f"Again {token}"), "-f", sender, "a@remote.example",
                   user="demo2")
    [item] = wait_held(stack, token)
    stack.ie_cli("emails", "release", "--ids", item["email_id"])
    [msg] = wait_sunk(stack, token)
    settle(stack)
    # it carries the verdict it was held with (the filter's own, from the quarantine), not a new one
    assert held(stack, token) == [] and msg.all("X-ImunifyEmail-Filter-Action") == ["reject"]
    scans = [line for line in stack.daemon_log().splitlines() if f"sender=<{sender}>" in line]
    assert len(scans) == 1   # the release went round the router
