"""The notification run (``ie-config notify``) on a cPanel-shaped root: the real store and SQLite,
contact addresses read from the root's wwwacct.conf and /var/cpanel/users, digests handed to a
recording sendmail (what it was asked to send, exactly), the webhook posted to a real HTTP server on
127.0.0.1. The clock is injected; the real-Exim proof is tests/system/test_notifications.py."""
import fcntl
import http.server
import json
import re
import threading
from email import message_from_bytes
from email.policy import default

import pytest

from devtools import testroot
from devtools.clock import Clock
from imunifyemail import paths
from imunifyemail.cli import ie_cli, ie_config
from imunifyemail.context import Context
from imunifyemail.core.limits import Reached
from imunifyemail.core.message import ScriptHeader
from imunifyemail.notify import job, webhook
from imunifyemail.ops import caller as callers
from imunifyemail.ops import features
from imunifyemail.store import db, events
from imunifyemail.store.quarantine import NewMessage

HOUR = 3600
T0 = 1_800_000_000
ADMIN = "admin@ops.example"
OWNER1 = "owner1@customers.example"
NEWS_LIMIT = Reached("sender_email", "news@demo1.test", 20)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def server(make_root):
    """No daemon, no Rspamd: only the store, the contacts and a recording sendmail."""
    r = make_root("http://127.0.0.1:9")
    (r.path / "etc/wwwacct.conf").write_text(f"ADDR 192.0.2.1\nHOST server.example.com\nCONTACTEMAIL {ADMIN}\n")
    set_owner(r, "demo1", OWNER1)
    return r


def set_owner(r: testroot.TestRoot, account: str, address: str) -> None:
    f = r.path / "var/cpanel/users" / account
    lines = [line for line in f.read_text().splitlines() if not line.startswith("CONTACTEMAIL=")]
    f.write_text("\n".join(lines + [f"CONTACTEMAIL={address}"]) + "\n")


def settings(clock, **changes) -> None:
    ctx = Context(clock=clock)
    try:
        features.change(ctx, callers.admin(), changes)
    finally:
        ctx.close()


def hold(clock, account="demo1", sender="news@demo1.test", reasons=("spam",), script="", n=1, limits=()) -> None:
    ctx = Context(clock=clock)
    try:
        for _ in range(n):
            ctx.quarantine.add(NewMessage(account=account, sender=sender, recipients=("r@remote.example",),
                                          subject="held", reasons=tuple(reasons),
                                          script=ScriptHeader(raw=script, path=script), limits=limits),
                               b"Subject: held\r\n\r\nbody\r\n")
    finally:
        ctx.close()


def contained(clock, account: str) -> None:
    ctx = Context(clock=clock)
    try:
        with db.transaction(ctx.conn):
            events.insert(ctx.conn, int(clock()), events.CONTAINED, account)
    finally:
        ctx.close()


def notify(clock, sleeps=None) -> job.Report:
    ctx = Context(clock=clock)
    try:
        return job.run(ctx, sleep=(sleeps.append if sleeps is not None else lambda s: None))
    finally:
        ctx.close()


def digests(r: testroot.TestRoot):
    """What sendmail was given: (recipients, parsed message), in order."""
    return [(tuple(m.recipients), message_from_bytes(m.message, policy=default)) for m in r.reinjected()]


def test_a_burst_gives_one_digest_per_recipient_per_period(server, clock):
    settings(clock, notify_owner=True)
    hold(clock, n=3)
    hold(clock, reasons=("ratelimit",), script="mailer.php", limits=(NEWS_LIMIT,))
    hold(clock, account="demo2", sender="sales@demo2.test", reasons=("winexec",))
    report = notify(clock)
    assert sorted(report.sent) == [((ADMIN,), 5), ((OWNER1,), 4)]
    assert report.unmailed == {"mail-owner:demo2": 1}   # demo2 has no contact address
    sent = {to: msg for to, msg in digests(server)}
    assert set(sent) == {(ADMIN,), (OWNER1,)}
    for m in server.reinjected():   # handed to the MTA as our notice, from root's address
        assert m.protocol == "imunifyemail-notice" and m.sender == "root@server.example.com"
        assert m.argv[-2:] == ["--", m.recipients[0]] and "-oi" in m.argv and m.uid == 0
    admin = sent[(ADMIN,)]
    assert admin["Subject"] == "Imunify Email on server.example.com: 5 messages held"
    text = admin.get_content()
    assert re.search(r"\n  news@demo1\.test \(demo1\) +4\n", text) and "sales@demo2.test (demo2)" in text
    assert "sender_email news@demo1.test: 20 messages an hour (demo1)" in text
    assert "mailer.php (demo1)" in text and "https://server.example.com:2087/cgi/imunifyemail/index.cgi" in text
    owner = sent[(OWNER1,)]
    assert owner["Subject"] == "Imunify Email on server.example.com, account demo1: 4 messages held"
    assert "demo2" not in owner.get_content()

    clock.t += 60
    assert notify(clock).sent == []                      # nothing new
    hold(clock, n=2)
    clock.t += HOUR - 120
    assert notify(clock).sent == [] and len(server.reinjected()) == 2   # new, but within the period
    clock.t += 60                                        # a period after the first digests
    assert sorted(notify(clock).sent) == [((ADMIN,), 2), ((OWNER1,), 2)]
    later = [msg for _, msg in digests(server)[2:]]
    assert all(m["Subject"].endswith(": 2 messages held") for m in later)   # only what is new


def test_no_digest_is_ever_empty(server, clock):
    assert notify(clock).sent == []
    clock.t += 2 * HOUR
    assert notify(clock).sent == [] and server.reinjected() == []


def test_an_address_that_is_admin_and_owner_gets_one_digest_with_everything(server, clock):
    settings(clock, notify_owner=True)
    set_owner(server, "demo1", ADMIN.upper())
    set_owner(server, "demo2", f"{ADMIN}, second@ops.example")
    hold(clock)
    hold(clock, account="demo2", sender="x@demo2.test")
    report = notify(clock)
    assert report.sent == [((ADMIN,), 2), ((ADMIN, "second@ops.example"), 1)]
    hold(clock)
    clock.t += 600
    assert notify(clock).sent == []   # the administrator's address is not due, whichever role


def test_a_digest_the_mta_refuses_is_sent_at_the_next_run(server, clock):
    hold(clock, n=2)
    server.fail_flag.touch()
    report = notify(clock)
    assert report.sent == [] and report.failed[0][0] == (ADMIN,) and "exit status 75" in report.failed[0][1]
    server.fail_flag.unlink()
    clock.t += 60
    hold(clock)
    assert notify(clock).sent == [((ADMIN,), 3)]   # nothing was lost meanwhile


def test_a_channel_starts_with_the_last_period_and_forgets_when_switched_off(server, clock):
    hold(clock, sender="old@demo1.test")
    clock.t += 2 * HOUR
    hold(clock, sender="new@demo1.test")
    assert notify(clock).sent == [((ADMIN,), 1)]   # the first run: not the history before the period
    assert "old@demo1.test" not in digests(server)[0][1].get_content()
    settings(clock, notify_admin=False)
    hold(clock, sender="while-off@demo1.test")
    clock.t += 60
    assert notify(clock).sent == []
    clock.t += 2 * HOUR
    settings(clock, notify_admin=True)
    hold(clock, sender="back@demo1.test")
    assert notify(clock).sent == [((ADMIN,), 1)]
    assert "back@demo1.test" in digests(server)[1][1].get_content()


def test_a_changed_contact_address_carries_on_where_the_old_one_stopped(server, clock):
    hold(clock)
    notify(clock)
    (server.path / "etc/wwwacct.conf").write_text("HOST server.example.com\nCONTACTEMAIL newadmin@ops.example\n")
    hold(clock, sender="after@demo1.test")
    clock.t += 60
    assert notify(clock).sent == [((("newadmin@ops.example",)), 1)]


def test_no_usable_admin_address_sends_nothing_and_says_so(server, clock):
    (server.path / "etc/wwwacct.conf").write_text("HOST server.example.com\nCONTACTEMAIL not an address\n")
    hold(clock)
    report = notify(clock)
    assert report.sent == [] and report.unmailed == {"mail-admin": 1} and server.reinjected() == []


def test_contained_accounts_are_in_the_digest(server, clock):
    contained(clock, "demo2")
    notify(clock)
    [(_, msg)] = digests(server)
    assert msg["Subject"] == "Imunify Email on server.example.com: 1 account blocked"
    assert "  demo2\n" in msg.get_content()


def test_one_run_at_a_time(server, clock):
    hold(clock)
    lock = paths.system_path(paths.NOTIFY_LOCK)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        assert notify(clock).busy
    assert server.reinjected() == []
    assert notify(clock).sent == [((ADMIN,), 1)]


def test_prune_keeps_the_newest_event_so_ids_never_go_back(server, clock):
    hold(clock, n=3)
    ctx = Context(clock=clock)
    try:
        with db.transaction(ctx.conn):
            assert events.prune(ctx.conn, T0 + 1) == 2
        assert [e.id for e in events.after(ctx.conn, 0)] == [3]
    finally:
        ctx.close()
    hold(clock)
    ctx = Context(clock=clock)
    try:
        assert [e.id for e in events.after(ctx.conn, 0)] == [3, 4]
    finally:
        ctx.close()


# -- the webhook ---------------------------------------------------------------------------------

class Receiver:
    """A real HTTP server on 127.0.0.1: answers each POST with the next status given ("hang": none)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.posts = []
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append((dict(self.headers), json.loads(body)))
                answer = outer.answers.pop(0) if outer.answers else 200
                if answer == "hang":
                    outer.release.wait()
                    return
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook?token=s3cret"

    def events(self):
        return [e["id"] for _, body in self.posts for e in body["events"]]

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(*answers):
        made.append(Receiver(*answers))
        return made[-1]
    yield make
    for r in made:
        r.close()


def test_the_webhook_gets_every_event_once_in_batches(server, clock, receiver, monkeypatch):
    monkeypatch.setattr(webhook, "BATCH", 2)
    hook = receiver()
    settings(clock, webhook_url=hook.url)
    hold(clock, n=4)
    contained(clock, "demo1")
    assert notify(clock).posted == 5
    assert [len(body["events"]) for _, body in hook.posts] == [2, 2, 1]
    headers, body = hook.posts[0]
    assert headers["Content-Type"] == "application/json"
    assert body["server"] == "server.example.com" and body["sent_at"] == T0
    assert (body["first_id"], body["last_id"]) == (1, 2)
    first = body["events"][0]
    assert first["kind"] == "held" and first["account"] == "demo1" and first["reasons"] == ["spam"]
    assert first["sender"] == "news@demo1.test" and len(first["email_id"]) == 36 and first["limits"] == []
    assert hook.posts[-1][1]["events"][0]["kind"] == "contained"
    clock.t += 60
    assert notify(clock).posted == 0
    hold(clock, reasons=("ratelimit",), limits=(NEWS_LIMIT,))
    assert notify(clock).posted == 1 and hook.events() == [1, 2, 3, 4, 5, 6]
    assert hook.posts[-1][1]["events"][0]["limits"] == [
        {"type": "sender_email", "name": "news@demo1.test", "limit": 20, "limit_mode": 1, "window": "hour"}]


def test_a_failing_webhook_is_retried_then_kept_for_the_next_run_and_never_stops_the_digest(
        server, clock, receiver):
    hook = receiver(500, 503, 502, 500)
    settings(clock, webhook_url=hook.url, webhook_retries=3)
    hold(clock, n=2)
    sleeps = []
    report = notify(clock, sleeps)
    assert report.sent == [((ADMIN,), 2)]            # the digest went all the same
    assert report.posted == 0 and report.webhook_error == "HTTP 500 after 4 attempt(s)"
    assert sleeps == [1, 2, 4] and len(hook.posts) == 4
    clock.t += 60
    assert notify(clock).posted == 2                 # the same events, posted again
    assert hook.events() == [1, 2] * 4 + [1, 2]


def test_a_webhook_that_does_not_answer_in_time_or_at_all_keeps_its_events(server, clock, receiver):
    hook = receiver("hang")
    settings(clock, webhook_url=hook.url, webhook_timeout=1, webhook_retries=0)
    hold(clock)
    report = notify(clock)
    assert report.webhook_error == "timed out after 1 attempt(s)" and report.sent == [((ADMIN,), 1)]
    port = hook.httpd.server_address[1]
    hook.close()   # nothing listens there now
    settings(clock, webhook_url=f"http://127.0.0.1:{port}/hook")
    clock.t += 60
    report = notify(clock)
    assert report.posted == 0 and report.webhook_error == "Connection refused after 1 attempt(s)"
    again = receiver()
    settings(clock, webhook_url=again.url)
    clock.t += 60
    assert notify(clock).posted == 1 and again.events() == [1]


def test_a_refused_batch_is_skipped_so_that_later_ones_are_not_held_back(server, clock, receiver, monkeypatch):
    monkeypatch.setattr(webhook, "BATCH", 1)
    hook = receiver(400, 200)
    settings(clock, webhook_url=hook.url)
    hold(clock, n=2)
    report = notify(clock)
    assert (report.skipped, report.posted, report.webhook_error) == (1, 1, "")
    clock.t += 60
    assert notify(clock).posted == 0 and hook.events() == [1, 2]


# -- the command ---------------------------------------------------------------------------------

def test_ie_config_notify_says_what_it_sent_and_fails_when_it_could_not(server, capsys):
    real = Clock(__import__("time").time())
    hold(real, n=2)
    assert ie_cli.run(["notify"], group=ie_config.cli, prog="ie-config") == 0
    assert capsys.readouterr().out == f"digest sent to {ADMIN} (2 event(s))\n"
    (server.path / "etc/wwwacct.conf").write_text("CONTACTEMAIL other@ops.example\n")   # due at once
    hold(real)
    server.fail_flag.touch()
    assert ie_cli.run(["notify"], group=ie_config.cli, prog="ie-config") == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: digest to other@ops.example not sent: ") and err.count("\n") == 1


def test_notify_is_documented_but_not_listed(capsys):
    assert ie_cli.run(["--help"], group=ie_config.cli, prog="ie-config") == 0
    assert "notify" not in capsys.readouterr().out
    assert ie_cli.run(["notify", "--help"], group=ie_config.cli, prog="ie-config") == 0
    out = capsys.readouterr().out
    assert "CONTACTEMAIL in /etc/wwwacct.conf" in out and "webhook" in out


def test_before_the_daemon_made_the_store_there_is_nothing_to_do_and_nothing_is_created(server, capsys):
    assert ie_cli.run(["notify"], group=ie_config.cli, prog="ie-config") == 0
    assert capsys.readouterr() == ("", "")
    assert not paths.system_path(paths.DATABASE).exists()
