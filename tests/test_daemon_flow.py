"""The filter daemon over LMTP, on real Rspamd and real SQLite: what Exim and
the recipients would see."""
import base64
import os

from imunifyemail.core.attribution import META_HEADER

from devtools import samples as messages


def meta_header(uid=None, auth="", proto="local", host="", exim_id="1tTest-000001-AB") -> bytes:
    b64 = lambda v: base64.b64encode(v.encode()).decode()  # noqa: E731
    parts = ["v=1", f"uid={'' if uid is None else uid}", f"auth={b64(auth)}", f"proto={b64(proto)}",
             f"host={host}", f"id={exim_id}"]
    return f"{META_HEADER}: {'; '.join(parts)}\r\n".encode()


def test_ham_is_reinjected_once_to_all_recipients_with_filter_headers(daemon):
    rcpts = ["bob@remote.example", "carol@other.example", "dave@third.example"]
    raw = messages.ham(to=rcpts)
    replies = daemon.send(raw, recipients=rcpts)
    assert [code for code, _ in replies] == [250, 250, 250]
    out = daemon.reinjected()
    assert len(out) == 1
    sent = out[0]
    assert sent.recipients == rcpts
    assert sent.sender == "alice@demo1.test"
    assert sent.protocol == "imunifyemail-scanned"
    assert sent.header("X-ImunifyEmail-Filter-Action") == "no action"
    assert float(sent.header("X-ImunifyEmail-Filter-Score")) < 5
    assert sent.header("X-ImunifyEmail-Filter-Version").startswith("3.4/")
    symbols = base64.b64decode(sent.header("X-ImunifyEmail-Filter-Info")).decode()
    assert symbols and all(s.replace("_", "").isalnum() for s in symbols.split(","))
    # the body and the sender's own headers arrive untouched
    assert sent.message.endswith(raw.split(b"\n\n", 1)[1].replace(b"\n", b"\r\n")) or \
        raw.split(b"\n\n", 1)[1] in sent.message
    assert daemon.held() == []


def test_three_recipients_get_three_replies_and_one_stored_copy(daemon):
    rcpts = ["a@remote.example", "b@remote.example", "c@remote.example"]
    replies = daemon.send(messages.gtube(to=rcpts), recipients=rcpts)
    assert len(replies) == 3 and all(code == 250 for code, _ in replies)
    held = daemon.held()
    assert len(held) == 1
    assert held[0].recipients == rcpts
    assert daemon.reinjected() == []


def test_gtube_is_quarantined_as_spam_under_the_domain_owner(daemon):
    replies = daemon.send(messages.gtube(sender="news@demo2.test"), sender="news@demo2.test")
    assert replies[0][0] == 250
    [held] = daemon.held()
    assert held.account == "demo2"
    assert held.reasons == ["spam"]
    assert held.filter_action == "reject"
    assert held.filter_score >= 15
    assert held.sender == "news@demo2.test"
    assert held.subject == "Test spam"
    assert daemon.reinjected() == []


def test_subdomain_of_an_account_and_unknown_domain(daemon):
    daemon.send(messages.gtube(sender="x@shop.demo1.test"), sender="x@shop.demo1.test")
    daemon.send(messages.gtube(sender="x@nowhere.example"), sender="x@nowhere.example")
    accounts = sorted(m.account for m in daemon.held())
    assert accounts == ["demo1", "root"]


def test_exe_attachment_is_held_then_passes_once_allowed(daemon):
    for zipped in (False, True):
        assert daemon.send(messages.with_exe(zipped=zipped))[0][0] == 250
    held = daemon.held()
    assert [m.reasons for m in held] == [["winexec"], ["winexec"]]
    assert daemon.reinjected() == []
    daemon.cli("filter-settings", "--allow-winexec")
    for zipped in (False, True):
        assert daemon.send(messages.with_exe(zipped=zipped))[0][0] == 250
    assert len(daemon.reinjected()) == 2
    assert len(daemon.held()) == 2


def test_whitelisted_sender_passes_gtube(daemon):
    daemon.cli("whitelist", "sender", "add", "alice@demo1.test")
    assert daemon.send(messages.gtube())[0][0] == 250
    [sent] = daemon.reinjected()
    assert sent.header("X-ImunifyEmail-Filter-Action") == "whitelisted"
    daemon.cli("whitelist", "sender", "remove", "alice@demo1.test")
    daemon.cli("whitelist", "sender", "add", "demo1.test")
    daemon.send(messages.gtube())
    assert len(daemon.reinjected()) == 2
    daemon.cli("whitelist", "sender", "remove", "demo1.test")
    daemon.send(messages.gtube())
    assert len(daemon.reinjected()) == 2 and len(daemon.held()) == 1


def test_whitelisted_authenticated_user_passes(daemon):
    daemon.cli("whitelist", "authuser", "add", "mailer@demo2.test")
    raw = meta_header(auth="mailer@demo2.test", proto="esmtpa", host="127.0.0.1") + messages.gtube()
    daemon.send(raw, sender="anything@demo1.test")
    assert len(daemon.reinjected()) == 1


def test_spam_filter_off_passes_spam_but_still_stops_executables(daemon):
    daemon.cli("filter-settings", "--no-spam-filter")
    daemon.send(messages.gtube())
    daemon.send(messages.with_exe())
    assert len(daemon.reinjected()) == 1
    assert [m.reasons for m in daemon.held()] == [["winexec"]]


def test_spam_and_executable_both_named(daemon):
    daemon.send(messages.with_exe(body=f"spam {messages.GTUBE}\n"))
    [held] = daemon.held()
    assert held.reasons == ["spam", "winexec"]


def test_blocked_account_is_held_even_when_whitelisted(daemon):
    daemon.cli("accounts", "edit", "-a", "demo1", "--state=block")
    daemon.cli("whitelist", "sender", "add", "demo1.test")
    daemon.send(messages.ham())
    [held] = daemon.held()
    assert held.reasons == ["blocked"] and held.account == "demo1"
    daemon.cli("accounts", "edit", "-a", "demo1", "--state=active")
    daemon.send(messages.ham())
    assert len(daemon.reinjected()) == 1


def test_trusted_metadata_attributes_and_is_stripped(daemon):
    # a hosted user's sendmail: uid of the account, sender claiming another account's domain
    import pwd
    uid = pwd.getpwnam("_imunifyemail").pw_uid
    daemon.write_accounts({"demo1": ["demo1.test"], "demo2": ["demo2.test"], "_imunifyemail": ["svc.test"]})
    raw = meta_header(uid=uid, proto="local") + messages.gtube(sender="ceo@demo2.test")
    daemon.send(raw, sender="ceo@demo2.test")
    [held] = daemon.held()
    assert held.account == "_imunifyemail"
    stored = daemon.quarantine().read(held)
    assert META_HEADER.encode() not in stored
    # authenticated id (SMTP AUTH as a mailbox of demo1) wins over the envelope domain
    raw = meta_header(auth="box@demo1.test", proto="esmtpa", host="127.0.0.1") + messages.ham()
    daemon.send(raw, sender="ceo@demo2.test")
    [sent] = daemon.reinjected()
    assert sent.header(META_HEADER) is None


def test_forged_filter_headers_do_not_survive(daemon):
    raw = b"X-ImunifyEmail-Filter-Action: no action\r\nX-ImunifyEmail-Filter-Score: -100\r\n" + messages.ham()
    daemon.send(raw)
    [sent] = daemon.reinjected()
    from imunifyemail.core import headers
    assert headers.values(sent.message, "X-ImunifyEmail-Filter-Score") != ["-100"]
    assert len(headers.values(sent.message, "X-ImunifyEmail-Filter-Action")) == 1


def test_php_script_header_is_kept(daemon):
    raw = messages.gtube(extra_headers=[("X-PHP-Script", "demo1.test/wp-content/evil.php for 203.0.113.9")])
    daemon.send(raw)
    [held] = daemon.held()
    assert held.script.as_dict() == {"raw": "demo1.test/wp-content/evil.php for 203.0.113.9",
                                     "domain": "demo1.test", "path": "/wp-content/evil.php"}


def test_null_sender_is_accepted_and_attributed_to_root(daemon):
    daemon.send(messages.gtube(sender="MAILER-DAEMON@host.example"), sender="")
    [held] = daemon.held()
    assert held.account == "root" and held.sender == ""


def test_daemon_runs_unprivileged_with_a_private_socket(daemon):
    import grp
    import stat
    with open(f"/proc/{daemon.proc.pid}/status") as fh:
        status = dict(line.split(":", 1) for line in fh)
    uids = status["Uid"].split()
    assert set(uids) == {str(__import__("pwd").getpwnam("_imunifyemail").pw_uid)}
    st = os.stat(daemon.socket)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_gid == grp.getgrnam("mail").gr_gid
    # The directory is traversable (the web app's user socket lives there too); the control socket
    # is the daemon's own.
    assert stat.S_IMODE(os.stat(os.path.dirname(daemon.socket)).st_mode) == 0o755
    control = os.stat(os.path.join(os.path.dirname(daemon.socket), "control.sock"))
    assert stat.S_IMODE(control.st_mode) == 0o600 and str(control.st_uid) in uids


def test_settings_apply_to_the_next_message_without_restart(daemon):
    daemon.send(messages.with_exe())
    daemon.cli("filter-settings", "--allow-winexec")
    daemon.send(messages.with_exe())
    daemon.cli("filter-settings", "--disallow-winexec")
    daemon.send(messages.with_exe())
    assert len(daemon.held()) == 2 and len(daemon.reinjected()) == 1


def test_lmtp_socket_refuses_other_users(daemon):
    """A hosted user can neither open the socket (mode 0660) nor, given a copy
    of the descriptor's path through a world-open directory, pass the peer check."""
    import subprocess
    import sys
    probe = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.settimeout(5)\n"
             "try:\n s.connect(sys.argv[1]); print('reply', s.recv(100))\n"
             "except OSError as e: print('refused', e.errno)")
    out = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                          sys.executable, "-c", probe, daemon.socket], capture_output=True, text=True, cwd="/")
    assert out.stdout.startswith("refused"), out.stdout + out.stderr
    # the peer check on its own: open the directory and socket mode, connect as nobody
    os.chmod(os.path.dirname(daemon.socket), 0o755)
    os.chmod(daemon.socket, 0o666)
    out = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                          sys.executable, "-c", probe, daemon.socket], capture_output=True, text=True, cwd="/")
    assert out.stdout.strip() in ("reply b''", "refused 104"), out.stdout + out.stderr
    assert "refused LMTP connection" in daemon.log.read_text()
