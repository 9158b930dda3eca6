"""The filter daemon answering Exim's router, on real Rspamd and real SQLite: each message is read from
a spool written in Exim's format, decided once, and answered per remote address."""
import base64
import json
import os
import pwd
import subprocess
import sys
import threading

import pytest

from devtools import samples as messages

pytestmark = pytest.mark.service


def test_ham_passes_with_the_filter_headers_for_every_recipient(daemon):
    rcpts = ["bob@remote.example", "carol@other.example", "dave@third.example"]
    sent = daemon.send(messages.ham(to=rcpts), recipients=rcpts)
    assert len(sent.answers) == 3 and sent.verdict == "pass"
    assert sent["action"] == "no action" and float(sent["score"]) < 5
    assert sent["version"].startswith("3.4/")
    symbols = base64.b64decode(sent["info"]).decode()
    assert symbols and all(s.replace("_", "").isalnum() for s in symbols.split(","))
    assert daemon.held() == [] and daemon.reinjected() == []   # Exim delivers it: no second pass


def test_three_recipients_one_decision_one_stored_copy(daemon):
    rcpts = ["a@remote.example", "b@remote.example", "c@remote.example"]
    sent = daemon.send(messages.gtube(to=rcpts), recipients=rcpts)
    assert sent.verdict == "hold" and len({a["email_id"] for a in sent.answers}) == 1
    [held] = daemon.held()
    assert held.recipients == rcpts and held.email_id == sent.email_id
    assert daemon.log.read_text().count(f"id={sent.exim_id} ") == 1   # scanned once


def test_local_recipients_are_not_part_of_the_held_copy(daemon):
    rcpts = ["out@remote.example", "colleague@demo2.test"]
    sent = daemon.send(messages.gtube(to=rcpts), recipients=rcpts)
    assert len(sent.answers) == 1 and sent.verdict == "hold"   # the router asks for remote ones only
    assert daemon.held()[0].recipients == ["out@remote.example"]


def test_the_held_copy_is_the_spooled_message_byte_for_byte(daemon):
    raw = (b"Received: from x by y\n\twith esmtp; Mon, 1 Jan 2024\nSubject: long\n folded subject\n"
           b"X-Secret: removed by an ACL\nFrom: a@demo1.test\n\nbody line 1\n.\nlast line\n")
    daemon.cli("accounts", "edit", "-a", "demo1", "--state", "block")
    sent = daemon.send(raw, deleted=[b"X-Secret"])
    daemon.cli("accounts", "edit", "-a", "demo1", "--state", "active")
    held = [m for m in daemon.held() if m.email_id == sent.email_id][0]
    stored = daemon.quarantine().read(held)
    assert stored == raw.replace(b"X-Secret: removed by an ACL\n", b"")   # Exim's deleted header left out
    assert held.subject == "long folded subject"


def test_gtube_is_quarantined_as_spam_under_the_domain_owner(daemon):
    assert daemon.send(messages.gtube(sender="news@demo2.test"), sender="news@demo2.test").verdict == "hold"
    [held] = daemon.held()
    assert (held.account, held.reasons, held.filter_action) == ("demo2", ["spam"], "reject")
    assert held.filter_score >= 15 and held.sender == "news@demo2.test" and held.subject == "Test spam"


def test_subdomain_of_an_account_and_unknown_domain(daemon):
    daemon.send(messages.gtube(sender="x@shop.demo1.test"), sender="x@shop.demo1.test")
    # root's own mail (cron, a script of the administrator's) from a domain no account owns
    daemon.send(messages.gtube(sender="x@nowhere.example"), sender="x@nowhere.example", uid=0, login="root",
                protocol="local")
    # the same domain claimed by an unauthenticated loopback SMTP client: nobody verified it
    daemon.send(messages.gtube(sender="y@nowhere.example"), sender="y@nowhere.example", auth_id="")
    assert sorted(m.account for m in daemon.held()) == ["demo1", "root", "unverified:root"]


def test_exe_attachment_is_held_then_passes_once_allowed(daemon):
    assert [daemon.send(messages.with_exe(zipped=z)).verdict for z in (False, True)] == ["hold", "hold"]
    assert [m.reasons for m in daemon.held()] == [["winexec"], ["winexec"]]
    daemon.cli("filter-settings", "--allow-winexec")
    assert [daemon.send(messages.with_exe(zipped=z)).verdict for z in (False, True)] == ["pass", "pass"]
    assert len(daemon.held()) == 2


def test_whitelisted_sender_passes_gtube(daemon):
    daemon.cli("whitelist", "sender", "add", "alice@demo1.test")
    sent = daemon.send(messages.gtube())
    assert sent.verdict == "pass" and sent["action"] == "whitelisted" and sent["score"] is None
    daemon.cli("whitelist", "sender", "remove", "alice@demo1.test")
    daemon.cli("whitelist", "sender", "add", "demo1.test")
    assert daemon.send(messages.gtube()).verdict == "pass"
    daemon.cli("whitelist", "sender", "remove", "demo1.test")
    assert daemon.send(messages.gtube()).verdict == "hold"


def test_whitelisted_authenticated_user_passes(daemon):
    daemon.cli("whitelist", "authuser", "add", "mailer@demo2.test")
    sent = daemon.send(messages.gtube(), sender="anything@demo1.test", auth_id="mailer@demo2.test",
                       protocol="esmtpa")
    assert sent.verdict == "pass"


def test_spam_filter_off_passes_spam_but_still_stops_executables(daemon):
    daemon.cli("filter-settings", "--no-spam-filter")
    assert daemon.send(messages.gtube()).verdict == "pass"
    assert daemon.send(messages.with_exe()).verdict == "hold"
    assert [m.reasons for m in daemon.held()] == [["winexec"]]


def test_spam_and_executable_both_named(daemon):
    daemon.send(messages.with_exe(body=f"spam {messages.GTUBE}\n"))
    [held] = daemon.held()
    assert held.reasons == ["spam", "winexec"]


def test_spam_to_whitelisted_recipients_passes_only_when_all_of_them_are(daemon):
    daemon.cli("whitelist", "recipient", "add", "abuse@partner.example", "reports.example")
    to_listed = ["Abuse@Partner.example", "spamtrap@reports.example"]
    sent = daemon.send(messages.gtube(to=to_listed), recipients=to_listed)
    assert sent.verdict == "pass" and sent["action"] == "reject" and float(sent["score"]) >= 15   # still scanned
    assert "spam waived: every recipient whitelisted" in daemon.log.read_text()
    mixed = ["abuse@partner.example", "bob@remote.example"]
    assert daemon.send(messages.gtube(to=mixed), recipients=mixed).verdict == "hold"   # one verdict for both
    local_too = ["abuse@partner.example", "colleague@demo2.test"]   # local recipients are not scanned
    assert daemon.send(messages.gtube(to=local_too), recipients=local_too).verdict == "pass"
    exe = daemon.send(messages.with_exe(to=["abuse@partner.example"]), recipients=["abuse@partner.example"])
    assert exe.verdict == "hold"
    assert sorted(m.reasons for m in daemon.held()) == [["spam"], ["winexec"]]
    daemon.cli("whitelist", "recipient", "remove", "abuse@partner.example")
    assert daemon.send(messages.gtube(to=["abuse@partner.example"]),
                       recipients=["abuse@partner.example"]).verdict == "hold"


def test_an_address_a_forwarder_adds_after_a_whitelisted_pass_gets_its_own_verdict(daemon):
    from devtools import spool
    daemon.cli("whitelist", "recipient", "add", "abuse@partner.example")
    exim_id = spool.new_id()
    # spooled to a local alias; Exim's forwarder expands it to two remote addresses, asked one by one
    spool.write(daemon.spool, exim_id, messages.gtube(to=["team@demo1.test"]), "alice@demo1.test",
                ["team@demo1.test"])
    first = spool.ask(daemon.socket, exim_id, "abuse@partner.example")
    assert first["verdict"] == "pass"   # every recipient known so far is whitelisted: spam waived
    second = spool.ask(daemon.socket, exim_id, "bob@remote.example")
    assert second["verdict"] == "hold"   # not covered by that waiver: decided for itself
    [held] = daemon.held()
    assert held.recipients == ["bob@remote.example"] and held.reasons == ["spam"]
    daemon.stop()
    daemon.start()   # remembered per address across a restart: no second copy
    assert spool.ask(daemon.socket, exim_id, "bob@remote.example") == second
    assert spool.ask(daemon.socket, exim_id, "abuse@partner.example") == first
    assert len(daemon.held()) == 1


def test_a_whitelisted_idn_domain_matches_its_mail_and_stats_find_it_in_either_spelling(daemon):
    # cPanel keeps an IDN domain in its ASCII form; a sender may write it in Unicode (SMTPUTF8)
    daemon.write_accounts({"demo1": ["demo1.test", "xn--bcher-kva.example"], "demo2": ["demo2.test"]})
    daemon.cli("whitelist", "sender", "add", "bücher.example")
    sender = "Shop@Bücher.example"
    sent = daemon.send(messages.gtube(sender="shop@xn--bcher-kva.example"), sender=sender)
    assert (sent.verdict, sent["action"]) == ("pass", "whitelisted")
    for spelling in ("bücher.example", "xn--bcher-kva.example", "BÜCHER.example"):
        stats = json.loads(daemon.cli("am", "stats", "--domain", spelling).stdout)
        [acct] = stats["accounts"]
        assert (acct["name"], [d["name"] for d in acct["domains"]]) == ("demo1", ["xn--bcher-kva.example"])
        assert acct["domains"][0]["sender_emails"][0]["name"] == "shop@xn--bcher-kva.example"


def test_blocked_account_is_held_even_when_whitelisted(daemon):
    daemon.cli("accounts", "edit", "-a", "demo1", "--state=block")
    daemon.cli("whitelist", "sender", "add", "demo1.test")
    daemon.send(messages.ham())
    [held] = daemon.held()
    assert held.reasons == ["blocked"] and held.account == "demo1"
    daemon.cli("accounts", "edit", "-a", "demo1", "--state=active")
    assert daemon.send(messages.ham()).verdict == "pass"


def test_attribution_comes_from_the_spool(daemon):
    # a hosted user's sendmail: the spool names the submitting Unix user; the sender claims another domain
    uid = pwd.getpwnam("_imunifyemail").pw_uid
    daemon.write_accounts({"demo1": ["demo1.test"], "demo2": ["demo2.test"], "_imunifyemail": ["svc.test"]})
    daemon.send(messages.gtube(sender="ceo@demo2.test"), sender="ceo@demo2.test", uid=uid, login="_imunifyemail",
                protocol="local")
    [held] = daemon.held()
    assert held.account == "_imunifyemail"
    # the authenticated id (SMTP AUTH as a mailbox of demo1) wins over the envelope domain
    daemon.send(messages.gtube(), sender="ceo@demo2.test", auth_id="box@demo1.test", protocol="esmtpa")
    assert sorted(m.account for m in daemon.held()) == ["_imunifyemail", "demo1"]


def test_forged_filter_headers_change_nothing_and_are_kept_in_the_held_copy(daemon):
    raw = b"X-ImunifyEmail-Filter-Action: no action\nX-ImunifyEmail-Filter-Score: -100\n" + messages.gtube()
    sent = daemon.send(raw)
    assert sent.verdict == "hold"
    [held] = daemon.held()
    assert daemon.quarantine().read(held).startswith(b"X-ImunifyEmail-Filter-Action: no action\n")
    passed = daemon.send(b"X-ImunifyEmail-Filter-Score: -100\n" + messages.ham())
    assert float(passed["score"]) != -100   # the router writes this score; the sender's copy goes


def test_php_script_header_is_kept(daemon):
    raw = messages.gtube(extra_headers=[("X-PHP-Script", "demo1.test/wp-content/evil.php for 203.0.113.9")])
    daemon.send(raw)
    [held] = daemon.held()
    assert held.script.as_dict() == {"raw": "demo1.test/wp-content/evil.php for 203.0.113.9",
                                     "domain": "demo1.test", "path": "/wp-content/evil.php"}


def test_null_sender_is_scanned_and_attributed_by_who_submitted_it(daemon):
    exim = pwd.getpwnam("Debian-exim")
    # Exim's own message (a bounce: the Exim user, non-SMTP): the server's, scanned all the same
    daemon.send(messages.gtube(sender="MAILER-DAEMON@host.example", subject="Bounce"), sender="", uid=exim.pw_uid,
                login=exim.pw_name, protocol="local")
    # "MAIL FROM:<>" from any SMTP client is no bounce: not verified
    daemon.send(messages.gtube(sender="MAILER-DAEMON@host.example", subject="Fake"), sender="", uid=exim.pw_uid,
                login=exim.pw_name, protocol="esmtp")
    held = {m.subject: m for m in daemon.held()}
    assert (held["Bounce"].account, held["Bounce"].sender) == ("root", "")
    assert held["Fake"].account == "unverified:root"


def test_the_same_question_again_gets_the_same_answer_and_counts_once(daemon):
    sent = daemon.send(messages.ham())
    again = daemon.ask_again(sent)
    assert again == sent.answers[0]
    held = daemon.send(messages.gtube())
    daemon.stop()
    daemon.start()   # a retry after a restart: remembered by the store, not scanned again
    assert daemon.ask_again(held) == held.answers[0] and daemon.ask_again(sent) == sent.answers[0]
    assert len(daemon.held()) == 1
    stats = json.loads(daemon.cli("am", "stats").stdout)
    [acct] = [a for a in stats["accounts"] if a["name"] == "demo1"]
    assert (acct["messages"], acct["quarantined"]) == (1, 1)


def test_concurrent_questions_for_one_message_share_one_decision(daemon):
    from devtools import spool
    exim_id = spool.new_id()
    rcpts = [f"r{n}@remote.example" for n in range(6)]
    spool.write(daemon.spool, exim_id, messages.ham(to=rcpts), "alice@demo1.test", rcpts)
    answers = []
    threads = [threading.Thread(target=lambda r=r: answers.append(spool.ask(daemon.socket, exim_id, r)))
               for r in rcpts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 6 and len({tuple(sorted(a.items())) for a in answers}) == 1
    assert daemon.log.read_text().count(f"id={exim_id} ") == 1


def test_odd_questions_get_quick_answers(daemon):
    from devtools import spool
    assert spool.ask(daemon.socket, "", "x@remote.example")["verdict"] == "pass"   # exim -bt
    assert spool.ask(daemon.socket, spool.new_id(), "x@remote.example") == {
        "verdict": "defer", "reason": "filter error"}   # not (or no longer) in the spool
    import socket as socketlib
    with socketlib.socket(socketlib.AF_UNIX) as s:
        s.connect(daemon.socket)
        s.sendall(b"DELIVER all\n")
        assert s.recv(200).startswith(b"verdict=defer")


def test_settings_apply_to_the_next_message_without_restart(daemon):
    daemon.send(messages.with_exe())
    daemon.cli("filter-settings", "--allow-winexec")
    assert daemon.send(messages.with_exe()).verdict == "pass"
    daemon.cli("filter-settings", "--disallow-winexec")
    daemon.send(messages.with_exe())
    assert len(daemon.held()) == 2


def test_daemon_runs_unprivileged_with_private_sockets(daemon):
    import stat
    with open(f"/proc/{daemon.proc.pid}/status") as fh:
        status = dict(line.split(":", 1) for line in fh)
    uids = status["Uid"].split()
    assert set(uids) == {str(pwd.getpwnam("_imunifyemail").pw_uid)}
    for name in ("filter.sock", "control.sock"):
        st = os.stat(os.path.join(os.path.dirname(daemon.socket), name))
        assert stat.S_IMODE(st.st_mode) == 0o600 and str(st.st_uid) in uids, name
    # the directory is traversable: the web app's user socket lives there too; and root's: nobody else
    # may put a link in a socket's place between its bind and its chown
    run_dir = os.stat(os.path.dirname(daemon.socket))
    assert (run_dir.st_uid, stat.S_IMODE(run_dir.st_mode)) == (0, 0o755)


def test_only_root_may_ask(daemon):
    """A hosted user can neither open the socket (mode 0600) nor, were it open, pass the peer check."""
    probe = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.settimeout(5)\n"
             "try:\n s.connect(sys.argv[1]); s.sendall(b'SCAN id= rcpt=eEB5Lno=\\n'); print('reply', s.recv(100))\n"
             "except OSError as e: print('refused', e.errno)")

    def as_nobody() -> str:
        out = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
                              "-c", probe, daemon.socket], capture_output=True, text=True, cwd="/")
        return out.stdout.strip()
    assert as_nobody().startswith("refused")
    os.chmod(daemon.socket, 0o666)
    assert as_nobody() in ("reply b''", "refused 104", "refused 32")   # closed without an answer
    assert "only Exim's routing (root) may ask" in daemon.log.read_text()
