"""The metrics file on the real stack (Exim → imunifyemaild → Rspamd → sink): what node_exporter would
read, parsed with Prometheus' own parser, counts exactly the mail this test sent."""
import json
import os

from prometheus_client.parser import text_string_to_metric_families

from devtools import samples
from imunifyemail.ops import caller as callers
from imunifyemail.protocol import clients

from .conftest import held, settle, sunk, wait_held, wait_sunk

HAM, SPAM = 4, 3


def prom(stack):
    return stack.root / "var/imunifyemail/metrics/imunifyemail.prom"


def read(stack):
    """((inode, mtime), {sample with labels: value}) of the file as it is now."""
    with open(prom(stack), "rb") as fh:
        st = os.fstat(fh.fileno())
        inode, text = (st.st_ino, st.st_mtime_ns), fh.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return inode, out


def fresh(stack):
    """The file as written after this moment (another file: the daemon replaced it)."""
    stack.wait_for(lambda: prom(stack).exists(), "the metrics file")
    before, _ = read(stack)
    box = {}

    def rewritten():
        box["read"] = read(stack)
        return box["read"][0] != before
    stack.wait_for(rewritten, "the metrics file rewritten")
    return box["read"][1]


def delta(after, before, name):
    return after[name] - before[name]


def test_the_counters_match_the_mail_sent_and_status_reads_the_same_file(stack, token):
    settle(stack)   # earlier tests' mail decided: the counts below are this test's alone
    base = fresh(stack)
    sender = f"{token}@demo1.test"
    with stack.smtp_connection() as smtp:
        for n in range(HAM):
            smtp.sendmail(sender, [f"m{n}@remote.example"], samples.ham(sender=sender, subject=f"Ham {n} {token}"))
    for n in range(SPAM):
        stack.sendmail(samples.gtube(sender=sender, subject=f"Spam {n} {token}"), "-f", sender,
                       f"s{n}@remote.example", "s@other.example", user="demo1")
    wait_sunk(stack, token, HAM)
    items = wait_held(stack, token, SPAM)
    settle(stack)
    after = fresh(stack)
    assert delta(after, base, "imunifyemail_messages_scanned_total") == HAM + SPAM   # once each, two recipients or one
    assert delta(after, base, "imunifyemail_messages_passed_total") == HAM
    assert delta(after, base, "imunifyemail_messages_held_total{reason=spam}") == SPAM
    for reason in ("winexec", "ratelimit", "blocked"):
        assert delta(after, base, f"imunifyemail_messages_held_total{{reason={reason}}}") == 0
    assert delta(after, base, "imunifyemail_messages_deferred_total") == 0
    assert delta(after, base, "imunifyemail_rspamd_answer_seconds_count") == HAM + SPAM
    assert delta(after, base, "imunifyemail_rspamd_unreachable_total") == 0
    assert after["imunifyemail_daemon_start_time_seconds"] == base["imunifyemail_daemon_start_time_seconds"]
    assert after["imunifyemail_exim_queue_waiting_for_scanner"] == 0
    assert delta(after, base, "imunifyemail_quarantine_messages") == SPAM
    assert delta(after, base, "imunifyemail_quarantine_bytes") == sum(i["size_bytes"] for i in items)
    assert after["imunifyemail_quarantine_account_messages{account=demo1}"] >= SPAM

    # ie-config status: the quarantine as the store says, the metrics as the file says
    status = json.loads(stack.ie_config("status", "--json").stdout)
    _, now = read(stack)
    assert now["imunifyemail_quarantine_messages"] == status["quarantine"]["emails"]
    assert now["imunifyemail_quarantine_bytes"] == status["quarantine"]["size_bytes"]
    m = status["metrics"]
    assert m["enabled"] is True and m["textfile"] == str(prom(stack)) and m["age_seconds"] >= 0
    assert m["samples"]["imunifyemail_messages_scanned_total"] == now["imunifyemail_messages_scanned_total"]
    assert m["samples"]['imunifyemail_messages_held_total{reason="spam"}'] == \
        now["imunifyemail_messages_held_total{reason=spam}"]
    assert "Metrics:" in stack.ie_config("status").stdout.decode()

    # a release through the daemon (as the web app hands it over): one re-injection, delivered once
    sock = str(stack.root / "var/run/imunifyemail/control.sock")
    answer = stack.ns.call(clients.call, sock, {"op": "release", "caller": callers.admin(callers.WHM).as_dict(),
                                                "ids": [items[0]["email_id"]]}, 60)
    assert answer == {"ok": True, "released": [items[0]["email_id"]]}
    wait_sunk(stack, token, HAM + 1)
    settle(stack)
    released = fresh(stack)
    assert delta(released, after, "imunifyemail_reinjections_total") == 1
    assert delta(released, after, "imunifyemail_reinjection_failures_total") == 0
    assert delta(released, after, "imunifyemail_messages_scanned_total") == 0   # released mail is not judged again
    assert len(sunk(stack, token)) == HAM + 1 and len(held(stack, token)) == SPAM - 1
