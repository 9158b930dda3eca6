"""2,000 messages while the filter daemon is killed -9 three times: nothing is lost.

Every message ends delivered (sink), quarantined, or still in Exim's queue. A message can only be
doubled if it was in flight at a kill (passed on or stored, but Exim never got the 250): those are
counted and printed, and must stay within what could have been in flight.
"""
import collections
import json
import re
import threading
import time
import uuid

from devtools import samples

from .conftest import drop_stack, make_stack

MESSAGES = 2000
CLIENTS = 4
KILLS_AT = (400, 900, 1400)
MAX_IN_FLIGHT_PER_KILL = 60   # Exim deliveries running at once (LMTP + re-inject sessions), generously


def _queued_subjects(stack) -> list:
    found = []
    for hfile in stack.layout.spool.glob("input/*/*-H"):
        try:
            text = hfile.read_text(errors="replace")
        except FileNotFoundError:
            continue
        found += re.findall(r"Subject: (Chaos \S+)", text)
    return found


def test_chaos_daemon_killed_three_times_nothing_lost(daemon_user, capsys):
    stack = make_stack("ie-chaos-")
    run = uuid.uuid4().hex[:6]
    sent = 0
    lock = threading.Lock()
    errors = []

    def client(n: int) -> None:
        nonlocal sent
        smtp = None
        try:
            for k, i in enumerate(range(n, MESSAGES, CLIENTS)):
                if k % 10 == 0:   # past 10 messages a connection, Exim only queues (smtp_accept_queue_per_connection)
                    if smtp is not None:
                        smtp.close()
                    smtp = stack.smtp_connection()
                sender = f"user{i % 40}@demo{1 + i % 2}.test"
                subject = f"Chaos {run}-{i:05d}"
                raw = (samples.gtube if i % 10 == 0 else samples.ham)(sender=sender, to=(f"rcpt{i}@remote.example",),
                                                                     subject=subject)
                smtp.sendmail(sender, [f"rcpt{i}@remote.example"], raw)
                with lock:
                    sent += 1
        except Exception as exc:   # reported below; the count of sent stays exact
            errors.append(repr(exc))
        finally:
            if smtp is not None:
                smtp.close()

    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for mark in KILLS_AT:
            stack.wait_for(lambda: sent >= mark or not any(t.is_alive() for t in threads), f"{mark} sent", 600)
            stack.stop_daemon(kill=True)
            time.sleep(0.3)   # let some deliveries find it gone
            stack.start_daemon()
        for t in threads:
            t.join()
        assert not errors, errors
        assert sent == MESSAGES

        for _ in range(20):   # flush what was deferred while the daemon was down
            stack.queue_run()
            if not _queued_subjects(stack):
                break
            time.sleep(0.5)
        deadline = time.monotonic() + 120
        while _queued_subjects(stack) and time.monotonic() < deadline:
            time.sleep(0.2)

        delivered = collections.Counter(m.header("Subject") for m in stack.delivered()
                                        if m.header("Subject").startswith(f"Chaos {run}-"))
        listing = json.loads(stack.ie_cli("emails", "list", "-a", "root", "--subject", f"Chaos {run}-",
                                          "--limit", "100000", "--json").stdout)
        quarantined = collections.Counter(item["subject"] for item in listing["items"])
        queued = collections.Counter(_queued_subjects(stack))
        expected = {f"Chaos {run}-{i:05d}" for i in range(MESSAGES)}
        seen = set(delivered) | set(quarantined) | set(queued)
        lost = sorted(expected - seen)
        duplicates = sum(c - 1 for c in (delivered + quarantined).values() if c > 1)
        with capsys.disabled():
            print(f"\n  chaos: sent {MESSAGES}, delivered {len(delivered)}, quarantined {len(quarantined)}, "
                  f"still queued {len(queued)}, duplicates {duplicates} (daemon killed -9 {len(KILLS_AT)} times)")
        assert lost == [], f"{len(lost)} lost, e.g. {lost[:5]}"
        assert len(delivered) + len(quarantined) + len(queued) >= MESSAGES
        assert all(s.endswith(("0",)) for s in quarantined)   # only the GTUBE ones (every 10th) are held
        assert len(quarantined) == MESSAGES // 10
        assert duplicates <= len(KILLS_AT) * MAX_IN_FLIGHT_PER_KILL
    finally:
        drop_stack(stack, killed_daemon=True)
