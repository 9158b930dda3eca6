"""What hosted accounts' mail goes through, on real Exim + imunifyemaild + Rspamd."""
import base64
import mailbox
import os
import pwd
import shutil

from devtools import samples

from .conftest import held, sender_counts, settle, sunk, wait_held, wait_sunk


def local_copies(stack, token):
    if not stack.layout.mailbox.exists():
        return []
    return [m for m in mailbox.mbox(str(stack.layout.mailbox), create=False) if token in (m["Subject"] or "")]


def _filter_headers_ok(msg) -> None:
    assert msg.header("X-ImunifyEmail-Filter-Action") == "no action"
    assert float(msg.header("X-ImunifyEmail-Filter-Score")) < 5
    assert msg.header("X-ImunifyEmail-Filter-Version").startswith("3.4/")
    assert base64.b64decode(msg.header("X-ImunifyEmail-Filter-Info"))
    assert msg.all("X-ImunifyEmail-Meta") == []   # the trusted metadata never leaves the server


def test_ham_over_smtp_reaches_the_sink_once_with_filter_headers_and_counts(stack, token):
    sender = f"{token}@demo1.test"
    with stack.smtp_connection(login=sender) as smtp:
        smtp.sendmail(sender, ["bob@remote.example"], samples.ham(sender=sender, subject=f"Report {token}"))
    [msg] = wait_sunk(stack, token)
    settle(stack)
    assert len(sunk(stack, token)) == 1
    assert msg.mail_from == sender and msg.rcpt_to == ["bob@remote.example"]
    _filter_headers_ok(msg)
    assert held(stack, token) == []
    counts = sender_counts(stack, sender)
    assert (counts["account"], counts["domain"], counts["messages"], counts["quarantined"]) == \
        ("demo1", "demo1.test", 1, 0)


def test_ham_through_sendmail_as_a_hosted_user_is_scanned_once_and_attributed(stack, token):
    sender = f"{token}@demo2.test"
    stack.sendmail(samples.ham(sender=sender, subject=f"Invoice {token}"), "-f", sender, "carol@remote.example",
                   user="demo2")
    [msg] = wait_sunk(stack, token)
    settle(stack)
    assert len(sunk(stack, token)) == 1
    _filter_headers_ok(msg)
    [first] = [line for line in stack.exim_log().splitlines() if f"<= {sender} U=demo2 " in line]
    assert " P=local " in first   # submitted as the hosted user: the first pass
    assert sender_counts(stack, sender)["account"] == "demo2"


def test_gtube_is_quarantined_under_the_submitting_account_as_spam(stack, token):
    # Sent by demo2's Unix user with a sender of demo1's domain: the uid wins (trusted metadata).
    sender = f"{token}@demo1.test"
    stack.sendmail(samples.gtube(sender=sender, subject=f"Spam {token}"), "-f", sender, "dave@remote.example",
                   user="demo2")
    [item] = wait_held(stack, token)
    settle(stack)
    assert item["account_name"] == "demo2"
    assert item["reasons"] == ["spam"]
    assert item["recipients"] == ["dave@remote.example"]
    assert sunk(stack, token) == []
    assert sender_counts(stack, sender)["quarantined"] == 1


def test_exe_is_quarantined_and_delivered_once_winexec_is_allowed(stack, token):
    sender = f"{token}@demo1.test"
    with stack.smtp_connection(login=sender) as smtp:
        smtp.sendmail(sender, ["eve@remote.example"], samples.with_exe(sender=sender, subject=f"Setup {token}"))
    [item] = wait_held(stack, token)
    assert item["reasons"] == ["winexec"]
    stack.ie_cli("filter-settings", "--allow-winexec")
    try:
        with stack.smtp_connection(login=sender) as smtp:
            smtp.sendmail(sender, ["eve@remote.example"],
                          samples.with_exe(sender=sender, subject=f"Setup again {token}"))
        [msg] = wait_sunk(stack, token)
    finally:
        stack.ie_cli("filter-settings", "--disallow-winexec")
    settle(stack)
    assert "again" in msg.header("Subject")
    assert len(held(stack, token)) == 1


def test_a_whitelisted_senders_gtube_is_delivered(stack, token):
    sender = f"{token}@demo2.test"
    stack.ie_cli("whitelist", "sender", "add", sender)
    try:
        stack.sendmail(samples.gtube(sender=sender, subject=f"Allowed {token}"), "-f", sender,
                       "frank@remote.example", user="demo2")
        [msg] = wait_sunk(stack, token)
    finally:
        stack.ie_cli("whitelist", "sender", "remove", sender)
    settle(stack)
    assert held(stack, token) == []
    assert msg.rcpt_to == ["frank@remote.example"]


def test_gtube_to_a_whitelisted_recipient_is_delivered_and_to_another_held(stack, token):
    sender = f"{token}@demo1.test"
    listed = f"abuse-{token}@partner.example"
    stack.ie_cli("whitelist", "recipient", "add", listed)
    try:
        stack.sendmail(samples.gtube(sender=sender, to=(listed,), subject=f"Report {token}"), "-f", sender,
                       listed, user="demo1")
        stack.sendmail(samples.gtube(sender=sender, subject=f"Spam {token}"), "-f", sender, "ivan@remote.example",
                       user="demo1")
        [msg] = wait_sunk(stack, token)
        [item] = wait_held(stack, token)
    finally:
        stack.ie_cli("whitelist", "recipient", "remove", listed)
    settle(stack)
    assert msg.rcpt_to == [listed] and f"Report {token}" in msg.header("Subject")
    assert msg.header("X-ImunifyEmail-Filter-Action") == "reject"   # scanned: the headers say what Rspamd said
    assert item["recipients"] == ["ivan@remote.example"] and item["reasons"] == ["spam"]
    # ie-cli emails show: the filter's own verdict, as in the seed's example
    shown = stack.ie_cli("emails", "show", "--id", item["email_id"]).stdout.decode().splitlines()
    score = f"{item['filter_score']:.2f}"
    assert "X-ImunifyEmail-Filter-Action: reject" in shown and f"X-ImunifyEmail-Filter-Score:  {score}" in shown


def test_mail_to_local_domains_only_is_not_scanned(stack, token):
    sender = f"{token}@demo1.test"
    before = stack.daemon_log().count("\n")
    with stack.smtp_connection() as smtp:
        smtp.sendmail(sender, ["info@demo2.test", "sales@demo1.test"],
                      samples.gtube(sender=sender, to=("info@demo2.test",), subject=f"Local {token}"))
    stack.wait_for(lambda: len(local_copies(stack, token)) == 2, "two local deliveries")
    settle(stack)
    for copy in local_copies(stack, token):   # delivered as sent: GTUBE and all, no filter headers
        assert not [h for h in copy.keys() if h.lower().startswith("x-imunifyemail")]
        assert samples.GTUBE in copy.get_payload()
    assert held(stack, token) == [] and sunk(stack, token) == []
    assert token not in "\n".join(stack.daemon_log().splitlines()[before:])
    assert "R=imunifyemail_scan" not in "\n".join(
        line for line in stack.exim_log().splitlines() if token in line or "sales@demo1.test" in line)


def test_two_local_and_three_remote_recipients_are_scanned_once_for_the_three(stack, token):
    sender = f"{token}@demo1.test"
    remote = ["r1@remote.example", "r2@other.example", "r3@third.example"]
    local = ["l1@demo1.test", "l2@demo2.test"]
    with stack.smtp_connection() as smtp:
        smtp.sendmail(sender, local + remote, samples.ham(sender=sender, to=local + remote, subject=f"Mixed {token}"))
    [msg] = wait_sunk(stack, token)
    settle(stack)
    assert sorted(msg.rcpt_to) == sorted(remote)   # one second-pass message to the three
    assert len(sunk(stack, token)) == 1
    scans = [line for line in stack.daemon_log().splitlines() if f"sender=<{sender}>" in line]
    assert len(scans) == 1 and "rcpts=3" in scans[0]
    assert sorted(m["Envelope-to"] for m in local_copies(stack, token)) == local


PHP_SCRIPT = """<?php
$ok = mail("{to}", "{subject}", "{body}", "From: {sender}", "-f{sender}");
exit($ok ? 0 : 1);
"""


def test_php_mail_as_a_hosted_user_is_attributed_to_the_account_and_the_script(stack, token):
    sender = f"web-{token}@demo1.test"
    user = pwd.getpwnam("demo1")
    docroot = stack.root / "home/demo1/public_html"
    docroot.mkdir(parents=True, exist_ok=True)
    (stack.root / "home").chmod(0o755)
    for d in (docroot.parent, docroot):
        os.chown(d, user.pw_uid, user.pw_gid)
        d.chmod(0o755)
    script = docroot / "mailer.php"
    body = samples.GTUBE
    script.write_text(PHP_SCRIPT.format(to="grace@remote.example", subject=f"PHP {token}", body=body, sender=sender))
    os.chown(script, user.pw_uid, user.pw_gid)
    php = shutil.which("php") or "/usr/bin/php"
    stack.run([php, "-d", "mail.add_x_header=On", "-d", "sendmail_path=/usr/sbin/sendmail -t -i -odi",
               str(script)], user="demo1")
    [item] = wait_held(stack, token)
    assert item["account_name"] == "demo1"
    assert item["script_header"]["raw"] == f"{user.pw_uid}:mailer.php"
    assert item["script_header"]["path"] == "mailer.php"
    counts = sender_counts(stack, sender)
    assert counts["account"] == "demo1" and counts["quarantined"] == 1


def test_releasing_a_held_message_delivers_it_once_without_a_second_scan(stack, token):
    sender = f"{token}@demo2.test"
    stack.sendmail(samples.gtube(sender=sender, subject=f"Release {token}"), "-f", sender, "rel@remote.example",
                   user="demo2")
    [item] = wait_held(stack, token)
    scans = [line for line in stack.daemon_log().splitlines() if f"sender=<{sender}>" in line]
    assert stack.ie_cli("emails", "release", "--ids", item["email_id"]).stdout.decode().strip() == "OK"
    [msg] = wait_sunk(stack, token)
    settle(stack)
    assert len(sunk(stack, token)) == 1 and held(stack, token) == []
    assert msg.mail_from == sender and msg.rcpt_to == ["rel@remote.example"]
    assert [line for line in stack.daemon_log().splitlines() if f"sender=<{sender}>" in line] == scans
    [second] = [line for line in stack.exim_log().splitlines()
                if f"<= {sender} " in line and "P=imunifyemail-released" in line]
    assert " U=Debian-exim " in second


def test_a_released_message_leaves_with_the_filters_verdict_not_the_senders_forged_one(stack, token):
    # Released mail skips the router that strips a sender's X-ImunifyEmail-* from passed mail: the
    # release itself must leave them out, and carry the verdict the filter kept.
    sender = f"{token}@demo2.test"
    forged = (("X-ImunifyEmail-Filter-Action", "no action"), ("X-ImunifyEmail-Filter-Score", "-5.00"),
              ("X-ImunifyEmail-Filter-Info", "Zm9yZ2Vk"), ("X-ImunifyEmail-Filter-Version", "forged"))
    stack.sendmail(samples.gtube(sender=sender, subject=f"Forged {token}", extra_headers=forged), "-f", sender,
                   "forged@remote.example", user="demo2")
    [item] = wait_held(stack, token)
    assert item["reasons"] == ["spam"] and item["filter_action"] != "no action"
    assert stack.ie_cli("emails", "release", "--ids", item["email_id"]).stdout.decode().strip() == "OK"
    [msg] = wait_sunk(stack, token)
    assert msg.all("X-ImunifyEmail-Filter-Action") == [item["filter_action"]]
    assert msg.all("X-ImunifyEmail-Filter-Score") == [f"{item['filter_score']:.2f}"]
    assert msg.all("X-ImunifyEmail-Filter-Info") == [] and msg.all("X-ImunifyEmail-Filter-Version") == []


def test_smtp_auth_attributes_mail_to_the_authenticated_account(stack, token):
    sender = f"{token}@demo1.test"   # a demo1 address, but demo2 logged in
    with stack.smtp_connection() as smtp:
        smtp.login("demo2", "sandbox")
        smtp.sendmail(sender, ["auth@remote.example"], samples.gtube(sender=sender, subject=f"Auth {token}"))
    [item] = wait_held(stack, token)
    assert item["account_name"] == "demo2"
    [first] = [line for line in stack.exim_log().splitlines() if f"<= {sender} " in line]
    assert " P=esmtpa " in first and " A=sandbox_plain:demo2 " in first
