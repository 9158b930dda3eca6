"""Faults: nothing is lost, nothing is half-visible."""
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from devtools import samples as messages
from devtools import spool

pytestmark = pytest.mark.service


def test_rspamd_down_mail_waits_up_to_max_wait_then_passes_unscanned(root, unused_port):
    root.write_config({"rspamd": {"url": f"http://127.0.0.1:{unused_port}", "timeout": 2, "max_wait": 600},
                       "reinject": {"sendmail": str(root.sendmail)}})
    root.start()
    fresh = root.send(messages.gtube())
    assert (fresh.verdict, fresh["reason"]) == ("defer", "Rspamd unavailable")   # Exim keeps it
    old = root.send(messages.gtube(), received_at=int(time.time()) - 601)
    assert (old.verdict, old["action"], old["score"]) == ("pass", "unscanned", None)   # waited long enough
    assert "rspamd unreachable" in root.log.read_text()
    # what needs no Rspamd is decided at once: an executable is held, a whitelisted sender passes
    assert root.send(messages.with_exe()).verdict == "hold"
    assert [m.reasons for m in root.held()] == [["winexec"]]
    root.cli("whitelist", "sender", "add", "alice@demo1.test")
    assert root.send(messages.with_exe()).verdict == "pass"


def test_rspamd_down_with_unavailable_pass_passes_at_once(root, unused_port):
    root.write_config({"rspamd": {"url": f"http://127.0.0.1:{unused_port}", "timeout": 2, "unavailable": "pass"},
                       "reinject": {"sendmail": str(root.sendmail)}})
    root.start()
    sent = root.send(messages.gtube())
    assert (sent.verdict, sent["action"], sent["score"]) == ("pass", "unscanned", None)


def test_a_message_rspamd_fails_on_while_it_answers_is_tried_again_then_held_unscannable(root):
    # a scan timeout no scan can meet (a microsecond: less than any round trip), while Rspamd answers its
    # ping (which waits seconds): the message is the problem
    root.write_config({"rspamd": {"timeout": 0.000001}, "reinject": {"sendmail": str(root.sendmail)}})
    root.start()
    sent = root.send(messages.ham())
    assert (sent.verdict, sent["reason"]) == ("defer", "Rspamd could not scan it: trying once more")
    again = root.ask_again(sent)
    assert again["verdict"] == "hold" and again["reasons"] == "unscannable"
    [held] = root.held()
    assert held.reasons == ["unscannable"]


def test_store_write_failure_defers_then_succeeds(daemon):
    storage = daemon.path / "var/imunifyemail/quarantine/storage"
    daemon.send(messages.gtube())            # creates demo1's subspace
    account_dir = next(p for p in storage.iterdir() if p.is_dir())
    for shard in account_dir.iterdir():
        shard.chmod(0o500)
    account_dir.chmod(0o500)
    try:
        second = daemon.send(messages.gtube(subject="second"))
        assert second.verdict == "defer"   # Exim keeps it
    finally:
        account_dir.chmod(0o700)
        for shard in account_dir.iterdir():
            shard.chmod(0o700)
    assert [m.subject for m in daemon.held()] == ["Test spam"]
    assert daemon.ask_again(second)["verdict"] == "hold"   # Exim's retry
    assert sorted(m.subject for m in daemon.held()) == ["Test spam", "second"]


def test_bad_config_refuses_to_start(root):
    (root.path / "etc/imunifyemail/config.yaml").write_text("rspamd:\n  timeout: -3\n")
    with pytest.raises(RuntimeError) as err:
        root.start()
    assert "rspamd.timeout" in str(err.value) and "config.yaml" in str(err.value)


def test_kill_9_during_a_burst_loses_nothing_answered_and_doubles_nothing(daemon):
    total, clients = 1000, 8
    daemon.cli("settings", "--containment-threshold", "0")   # half of it is spam: containment would block
    answered = {}
    lock = threading.Lock()
    killed = threading.Event()
    ids = [spool.new_id() for _ in range(total)]
    for i, exim_id in enumerate(ids):
        raw = messages.gtube(subject=f"burst {i}") if i % 2 else messages.ham(subject=f"burst {i}")
        spool.write(daemon.spool, exim_id, raw, "alice@demo1.test", ["bob@remote.example"])

    def run(worker: int):
        for i in range(worker, total, clients):
            try:
                answer = spool.ask(daemon.socket, ids[i], "bob@remote.example", 10)
            except OSError:
                if killed.is_set():
                    return
                continue
            if answer.get("verdict") in ("pass", "hold"):
                with lock:
                    answered[ids[i]] = answer
                    if len(answered) == 300 and not killed.is_set():
                        killed.set()
                        daemon.stop(kill=True)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, range(clients)))
    assert killed.is_set()
    daemon.start()   # reconciles
    # Exim asks again for every message still queued: each gets the verdict it got (or would have)
    again = {exim_id: spool.ask(daemon.socket, exim_id, "bob@remote.example") for exim_id in ids}
    assert all(again[i] == answered[i] for i in answered), "an answered verdict changed"
    assert {a["verdict"] for a in again.values()} == {"pass", "hold"}
    held = daemon.held()
    assert sorted(m.subject for m in held) == sorted(f"burst {i}" for i in range(1, total, 2))   # once each
    storage = daemon.path / "var/imunifyemail/quarantine/storage"
    files = {str(p.relative_to(storage)) for p in storage.rglob("*") if p.is_file()
             and (p.name.endswith(".eml") or p.name.startswith(".tmp-"))}
    assert files == {m.file for m in held}, "files and rows disagree after restart"
    for m in held:
        assert os.path.getsize(storage / m.file) == m.size_bytes
    stats = json.loads(daemon.cli("am", "stats", "--account-name", "demo1").stdout)["accounts"][0]
    assert (stats["messages"], stats["quarantined"]) == (total // 2, total // 2)   # counted once each


def test_hostile_input_is_stored_and_listed(daemon):
    big = messages.build(subject="big one", body="x" * 100 + "\n" + messages.GTUBE + "\n")
    big.add_attachment(os.urandom(20 * 1024 * 1024), maintype="application", subtype="octet-stream",
                       filename="data.bin")
    samples = [
        b"Subject: =?utf-8?B?broken base64 ***?= and =?x-unknown?Q?abc?=\r\nFrom: a@demo1.test\r\n\r\n"
        + messages.GTUBE.encode() + b"\r\n",
        b"Subject: caf\xe9 8-bit \xff\xfe header\r\nFrom: \xc3\xa9@demo1.test\r\n\r\n"
        + messages.GTUBE.encode() + b"\r\n",
        b"Content-Type: multipart/mixed; boundary=\"nope\"\r\nSubject: no closing boundary\r\n\r\n--nope\r\n"
        b"Content-Type: text/plain\r\n\r\n" + messages.GTUBE.encode() + b"\r\n--nope\r\n"
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n",
        messages.GTUBE.encode() + b"\r\n",                              # no headers at all
        b"\r\n" + messages.GTUBE.encode() + b"\r\n",                    # empty header block
        bytes(big),
    ]
    for raw in samples:
        assert daemon.send(raw).verdict == "hold"
    held = daemon.held()
    assert len(held) == len(samples)
    assert all(m.reasons == ["spam"] for m in held)
    listed = daemon.cli_json("emails", "list", "-a", "root")
    assert listed["max_count"] == len(samples)
    subjects = {m["subject"] for m in listed["items"]}
    assert "big one" in subjects and "no closing boundary" in subjects
    for item in listed["items"]:
        daemon.cli("emails", "show", "--id", item["email_id"], "-a", "root")
    biggest = max(held, key=lambda m: m.size_bytes)
    assert biggest.size_bytes > 20 * 1024 * 1024
