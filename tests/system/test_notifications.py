"""Notifications through the real mail path (Exim + imunifyemaild + Rspamd): a spam burst from one
account gives each recipient exactly one digest per period, delivered by Exim past the filter —
never scanned, held or counted — and the webhook gets the events, or keeps them while it is down."""
import http.server
import json
import re
import threading
import time
from email import message_from_bytes
from email.policy import default

from devtools import samples
from devtools.stack import ADMIN_CONTACT, OWNERS_DOMAIN, PYTHON

from .conftest import held, settle, wait_held

HOST = "server.ie-sandbox.test"
NOTICE_SENDER = f"root@{HOST}"

# The job function with an injected clock, run as root inside the stack's namespace: ``ie-config
# notify`` at a later time, without a hidden option for it.
LATER = """
import sys
from imunifyemail.context import Context
from imunifyemail.notify import job
ctx = Context(clock=lambda: float(sys.argv[1]))
report = job.run(ctx)
print(len(report.sent), report.webhook_error)
"""


def to(stack, address):
    return [m for m in stack.delivered() if address in m.rcpt_to]


def set_contacts(stack, admin: str, owner: str) -> None:
    (stack.root / "etc/wwwacct.conf").write_text(f"HOST {HOST}\nCONTACTEMAIL {admin}\n")
    users = stack.root / "var/cpanel/users/demo1"
    users.write_text(f"DNS=demo1.test\nOWNER=root\nCONTACTEMAIL={owner}\n")


def notify(stack, *, ok=True):
    proc = stack.ie_config("notify", check=ok)
    return proc.stdout.decode(), proc.stderr.decode()


def burst(stack, token, label, n, total):
    """``n`` GTUBE messages from demo1 (``total`` of this test's held by then); the ones held now."""
    sender = f"{token}@demo1.test"
    for i in range(n):
        stack.sendmail(samples.gtube(sender=sender, subject=f"{label} {i} {token}"), "-f", sender,
                       f"victim{i}@remote.example", user="demo1")
    return [m for m in wait_held(stack, token, total) if m["subject"].startswith(f"{label} ")]


class Receiver:
    """The webhook's receiver: a real HTTP server on 127.0.0.1 inside the stack's network namespace."""

    def __init__(self, stack):
        posts = self.posts = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = stack.ns.call(http.server.ThreadingHTTPServer, ("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/events"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_spam_burst_gives_one_digest_per_recipient_per_period_delivered_unscanned_uncounted(stack, token):
    admin, owner = f"admin-{token}@hosting-admin.example", f"owner-{token}@{OWNERS_DOMAIN}"
    stack.ie_cli("settings", "--notify-owner", "on", "--notify-period", "3600")
    receiver = Receiver(stack)
    try:
        # What earlier tests held goes to other addresses first: the cursors (kept per role) then
        # stand after it, and these two addresses have had no digest yet.
        set_contacts(stack, f"before-{token}@hosting-admin.example", f"before-{token}@{OWNERS_DOMAIN}")
        notify(stack)
        set_contacts(stack, admin, owner)
        stack.ie_cli("settings", "--webhook-url", "http://127.0.0.1:1/down", "--webhook-retries", "0")

        first = burst(stack, token, "Burst", 4, 4)
        settle(stack)
        stats = stack.ie_cli("am", "stats", "--since", "86400").stdout
        daemon_lines = len(stack.daemon_log().splitlines())
        out, err = notify(stack, ok=False)   # the webhook is down: that fails the run, not the digests
        assert sorted(out.splitlines()) == [f"digest sent to {admin} (4 event(s))",
                                            f"digest sent to {owner} (4 event(s))"]
        assert err.startswith("Error: webhook: Connection refused after 1 attempt(s)")
        [to_admin] = stack.wait_for(lambda: to(stack, admin), "the administrator's digest at the sink")
        [to_owner] = stack.wait_for(lambda: to(stack, owner), "the owner's digest at the sink")
        settle(stack)

        # delivered as sent: from root, past the filter
        for digest in (to_admin, to_owner):
            assert digest.mail_from == NOTICE_SENDER
            assert not [h for h in digest.headers.keys() if h.lower().startswith("x-imunifyemail")]
            assert digest.header("Auto-Submitted") == "auto-generated"
        assert to_admin.header("Subject") == f"Imunify Email on {HOST}: 4 messages held"
        assert to_owner.header("Subject") == f"Imunify Email on {HOST}, account demo1: 4 messages held"
        text = message_from_bytes(to_owner.raw, policy=default).get_content()
        assert f"{token}@demo1.test (demo1)" in text and f"https://{HOST}:2083/" in text
        log = stack.exim_log().splitlines()
        arrivals = [line for line in log if f"<= {NOTICE_SENDER} " in line and (admin in line or owner in line)]
        assert len(arrivals) == 2 and all(" U=root P=imunifyemail-notice " in line for line in arrivals)
        ids = [line.split()[2] for line in arrivals]
        for exim_id in ids:   # routed straight to remote delivery, never to our router
            deliveries = [line for line in log if f" {exim_id} " in line and (" => " in line or " ** " in line)]
            assert len(deliveries) == 1 and " R=remote_sink " in deliveries[0]
            assert "imunifyemail_scan" not in "\n".join(line for line in log if f" {exim_id} " in line)
        never_asked = stack.daemon_log().splitlines()[daemon_lines:]
        assert not [line for line in never_asked if any(i in line for i in ids) or NOTICE_SENDER in line]
        assert held(stack, "Imunify Email on") == []                                     # never held
        assert stack.ie_cli("am", "stats", "--since", "86400").stdout == stats           # never counted

        # more of the burst within the period: nothing more to either address
        second = burst(stack, token, "More", 2, 6)
        out, _ = notify(stack, ok=False)
        assert out == ""
        settle(stack)
        assert len(to(stack, admin)) == 1 and len(to(stack, owner)) == 1

        # the receiver is back: it gets the events it missed, each once
        stack.ie_cli("settings", "--webhook-url", receiver.url)
        out, _ = notify(stack)
        assert re.fullmatch(r"webhook: \d+ event\(s\) posted\n", out)
        posted = [e["email_id"] for p in receiver.posts for e in p["events"]]
        assert len(first) == 4 and len(second) == 2
        assert all(posted.count(m["email_id"]) == 1 for m in first + second)
        assert all(p["server"] == HOST for p in receiver.posts)

        # a period later (the job with a clock one period ahead): one more digest each, of what is new
        result = stack.run([PYTHON, "-c", LATER, str(int(time.time()) + 3601)])
        assert result.stdout.decode().split() == ["2"]
        stack.wait_for(lambda: len(to(stack, admin)) == 2 and len(to(stack, owner)) == 2, "the second digests")
        settle(stack)
        assert [m.header("Subject") for m in to(stack, owner)][1] == \
            f"Imunify Email on {HOST}, account demo1: 2 messages held"
        assert len(to(stack, admin)) == 2 and len(to(stack, owner)) == 2
    finally:
        receiver.close()
        stack.ie_cli("settings", "--notify-owner", "off", "--webhook-url", "")
        set_contacts(stack, ADMIN_CONTACT, f"demo1-owner@{OWNERS_DOMAIN}")
