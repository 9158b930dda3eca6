"""The metrics' text format (checked with Prometheus' own parser), the atomic write, the status line."""
import os
import stat

import pytest
from prometheus_client.parser import text_string_to_metric_families

from imunifyemail.core import metrics
from imunifyemail.core.metrics import AccountHeld, Gauges, MailCounters, Room, render
from imunifyemail.daemon.metrics import remove_leftovers, write_atomically
from imunifyemail.cli.output import metrics_line


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fams, family, sample=None, **labels):
    for s in fams[family].samples:
        if s.name == (sample or family + ("_total" if fams[family].type == "counter" else "")) and s.labels == labels:
            return s.value
    raise KeyError((family, sample, labels))


def counted():
    c = MailCounters(1700000000.25)
    for _ in range(3):
        c.decided("pass")
    c.decided("hold", ("spam",))
    c.decided("hold", ("spam", "winexec"))
    c.decided("defer")
    for seconds in (0.004, 0.02, 0.02, 7.0, 99.0):
        c.rspamd_answered(seconds)
    c.rspamd_failed()
    c.reinjected(ok=True)
    c.reinjected(ok=False)
    return c


def test_the_text_parses_with_prometheus_parser_and_says_what_was_counted():
    text = render(counted().snapshot(), Gauges(5, 12345, (AccountHeld("demo1", 4, 10000), AccountHeld("demo2", 1, 2345)),
                                               queue_waiting=2, queue_total=7, contained=("demo1",),
                                               room=Room(5 << 30, 64 << 20, False)), "0.1.0")
    fams = families(text)
    assert {name: f.type for name, f in fams.items()} == {
        "imunifyemail_build_info": "gauge", "imunifyemail_daemon_start_time_seconds": "gauge",
        "imunifyemail_messages_scanned": "counter", "imunifyemail_messages_passed": "counter",
        "imunifyemail_messages_held": "counter", "imunifyemail_messages_deferred": "counter",
        "imunifyemail_reinjections": "counter", "imunifyemail_reinjection_failures": "counter",
        "imunifyemail_rspamd_unreachable": "counter", "imunifyemail_rspamd_answer_seconds": "histogram",
        "imunifyemail_exim_queue_waiting_for_scanner": "gauge", "imunifyemail_exim_queue_messages": "gauge",
        "imunifyemail_quarantine_messages": "gauge", "imunifyemail_quarantine_bytes": "gauge",
        "imunifyemail_quarantine_account_messages": "gauge", "imunifyemail_quarantine_account_bytes": "gauge",
        "imunifyemail_quarantine_free_bytes": "gauge", "imunifyemail_quarantine_floor_bytes": "gauge",
        "imunifyemail_quarantine_below_floor": "gauge", "imunifyemail_accounts_contained": "gauge",
        "imunifyemail_account_contained": "gauge"}
    assert all(f.documentation for f in fams.values())
    assert value(fams, "imunifyemail_build_info", version="0.1.0") == 1
    assert value(fams, "imunifyemail_daemon_start_time_seconds") == 1700000000.25
    assert value(fams, "imunifyemail_messages_scanned") == 5 and value(fams, "imunifyemail_messages_passed") == 3
    held = {s.labels["reason"]: s.value for s in fams["imunifyemail_messages_held"].samples}
    assert held == {"spam": 2, "winexec": 1, "ratelimit": 0, "blocked": 0, "unscannable": 0}   # every reason, zeros included
    assert value(fams, "imunifyemail_messages_deferred") == 1
    assert value(fams, "imunifyemail_reinjections") == 2 and value(fams, "imunifyemail_reinjection_failures") == 1
    assert value(fams, "imunifyemail_rspamd_unreachable") == 1
    buckets = {s.labels["le"]: s.value for s in fams["imunifyemail_rspamd_answer_seconds"].samples
               if s.name.endswith("_bucket")}
    assert (buckets["0.005"], buckets["0.025"], buckets["5.0"], buckets["10.0"], buckets["30.0"], buckets["+Inf"]) == \
        (1, 3, 3, 4, 4, 5)
    assert value(fams, "imunifyemail_rspamd_answer_seconds", "imunifyemail_rspamd_answer_seconds_count") == 5
    assert value(fams, "imunifyemail_rspamd_answer_seconds", "imunifyemail_rspamd_answer_seconds_sum") == \
        pytest.approx(106.044)
    assert value(fams, "imunifyemail_exim_queue_waiting_for_scanner") == 2
    assert value(fams, "imunifyemail_quarantine_bytes") == 12345
    assert [(s.labels, s.value) for s in fams["imunifyemail_quarantine_account_messages"].samples] == \
        [({"account": "demo1"}, 4), ({"account": "demo2"}, 1)]
    assert value(fams, "imunifyemail_quarantine_free_bytes") == 5 << 30
    assert value(fams, "imunifyemail_quarantine_floor_bytes") == 64 << 20
    assert value(fams, "imunifyemail_quarantine_below_floor") == 0
    assert value(fams, "imunifyemail_accounts_contained") == 1
    assert [(s.labels, s.value) for s in fams["imunifyemail_account_contained"].samples] == [({"account": "demo1"}, 1)]


def test_below_the_floor_reads_1_and_no_contained_account_a_zero_count_without_per_account_samples():
    fams = families(render(MailCounters(0).snapshot(), Gauges(0, 0, room=Room(10, 64 << 20, True)), "0.1.0"))
    assert value(fams, "imunifyemail_quarantine_below_floor") == 1
    assert value(fams, "imunifyemail_accounts_contained") == 0
    assert "imunifyemail_account_contained" not in fams


def test_label_values_are_escaped_and_unknown_gauges_left_out():
    odd = 'a"b\\c\nd'
    text = render(MailCounters(0).snapshot(), Gauges(1, 2, (AccountHeld(odd, 1, 2),)), "0.1.0")
    fams = families(text)
    assert value(fams, "imunifyemail_quarantine_account_bytes", account=odd) == 2
    assert "imunifyemail_exim_queue_messages" not in fams   # the spool could not be read: no made-up zero
    assert "imunifyemail_quarantine_below_floor" not in fams   # nor the filesystem
    assert "imunifyemail_quarantine_account_messages" in fams
    assert "imunifyemail_quarantine_account_messages" not in families(render(MailCounters(0).snapshot(),
                                                                             Gauges(0, 0), "0.1.0"))


def test_parse_reads_back_what_the_prometheus_parser_reads():
    text = render(counted().snapshot(), Gauges(5, 12345, (AccountHeld("demo1", 4, 10000),), 0, 7), "0.1.0")
    ours = metrics.parse(text + "garbage line\n# a comment 1\n")
    theirs = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in s.labels.items())
            theirs[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    assert ours == theirs
    assert ours['imunifyemail_messages_held_total{reason="spam"}'] == 2
    assert isinstance(ours["imunifyemail_messages_scanned_total"], int)


def test_write_atomically_replaces_the_file_readable_by_its_group_only(tmp_path):
    target = tmp_path / "imunifyemail.prom"
    write_atomically(target, b"first 1\n")
    first = target.stat()
    write_atomically(target, b"second 2\n")
    second = target.stat()
    assert target.read_bytes() == b"second 2\n"
    assert first.st_ino != second.st_ino   # a new file renamed over the old one, never rewritten in place
    assert stat.S_IMODE(second.st_mode) == 0o640   # it names accounts: the collector's group (metrics.group)
    assert sorted(os.listdir(tmp_path)) == ["imunifyemail.prom"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "imunifyemail.prom"
    write_atomically(target, b"old 1\n")
    target.with_name("sub.prom").mkdir()
    with pytest.raises(OSError):
        write_atomically(target.with_name("sub.prom"), b"new 2\n")   # rename over a directory fails
    assert target.read_bytes() == b"old 1\n"
    assert sorted(os.listdir(tmp_path)) == ["imunifyemail.prom", "sub.prom"]
    (tmp_path / ".imunifyemail.prom.abc123.tmp").write_bytes(b"half")   # a daemon killed mid-write
    remove_leftovers(target)
    assert sorted(os.listdir(tmp_path)) == ["imunifyemail.prom", "sub.prom"]


def test_status_line():
    base = {"enabled": True, "textfile": "/var/imunifyemail/metrics/imunifyemail.prom", "interval": 30}
    assert metrics_line({**base, "enabled": False}) == "off (ie-cli settings --metrics on)"
    assert metrics_line({**base, "error": "not written yet: is imunifyemaild running?"}) == \
        "unknown (not written yet: is imunifyemaild running?; /var/imunifyemail/metrics/imunifyemail.prom)"
    samples = {"imunifyemail_messages_scanned_total": 10, "imunifyemail_messages_passed_total": 7,
               "imunifyemail_rspamd_unreachable_total": 1}
    assert metrics_line({**base, "age_seconds": 12, "samples": samples}) == (
        "/var/imunifyemail/metrics/imunifyemail.prom written 12 s ago: since the daemon started 10 scanned, "
        "7 passed, 3 held, 1 passed unscanned (Rspamd unreachable)")
    assert "STALE" in metrics_line({**base, "age_seconds": 151, "samples": samples})
