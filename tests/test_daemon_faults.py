"""Faults: nothing is lost, nothing is half-visible."""
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from devtools import lmtp_client
from devtools import samples
from devtools import samples as messages


def test_reinject_failure_defers_and_nothing_is_stored_twice(daemon):
    daemon.fail_flag.touch()
    replies = daemon.send(messages.ham(to=["a@remote.example", "b@remote.example"]),
                          recipients=["a@remote.example", "b@remote.example"])
    assert [code for code, _ in replies] == [451, 451]
    assert daemon.reinjected() == [] and daemon.held() == []
    assert "cannot write spool (simulated)" in daemon.log.read_text()
    daemon.fail_flag.unlink()
    # Exim's retry
    replies = daemon.send(messages.ham(to=["a@remote.example", "b@remote.example"]),
                          recipients=["a@remote.example", "b@remote.example"])
    assert [code for code, _ in replies] == [250, 250]
    assert len(daemon.reinjected()) == 1 and daemon.held() == []


def test_rspamd_down_passes_unscanned_but_winexec_and_whitelist_apply(root, unused_port):
    root.write_config({"rspamd": {"url": f"http://127.0.0.1:{unused_port}", "timeout": 2},
                       "reinject": {"sendmail": str(root.sendmail)}})
    root.start()
    assert root.send(messages.gtube())[0][0] == 250
    [sent] = root.reinjected()
    assert sent.header("X-ImunifyEmail-Filter-Action") == "unscanned"
    assert sent.header("X-ImunifyEmail-Filter-Score") is None
    assert "rspamd unreachable" in root.log.read_text()
    root.send(messages.with_exe())
    assert [m.reasons for m in root.held()] == [["winexec"]]
    root.cli("whitelist", "sender", "add", "alice@demo1.test")
    root.send(messages.with_exe())
    assert len(root.reinjected()) == 2


def test_store_write_failure_defers_then_succeeds(daemon):
    storage = daemon.path / "var/imunifyemail/quarantine/storage"
    daemon.send(messages.gtube())            # creates demo1's subspace
    account_dir = next(p for p in storage.iterdir() if p.is_dir())
    for shard in account_dir.iterdir():
        shard.chmod(0o500)
    account_dir.chmod(0o500)
    try:
        replies = daemon.send(messages.gtube(subject="second"))
        assert replies[0][0] == 451
    finally:
        account_dir.chmod(0o700)
        for shard in account_dir.iterdir():
            shard.chmod(0o700)
    assert [m.subject for m in daemon.held()] == ["Test spam"]
    assert daemon.send(messages.gtube(subject="second"))[0][0] == 250
    assert sorted(m.subject for m in daemon.held()) == ["Test spam", "second"]


def test_bad_config_refuses_to_start(root):
    (root.path / "etc/imunifyemail/config.yaml").write_text("rspamd:\n  timeout: -3\n")
    with pytest.raises(RuntimeError) as err:
        root.start()
    assert "rspamd.timeout" in str(err.value) and "config.yaml" in str(err.value)


def test_kill_9_during_a_burst_loses_nothing_acknowledged(daemon):
    total, clients = 1000, 8
    acked = set()
    lock = threading.Lock()
    killed = threading.Event()

    def run(worker: int):
        client = None
        for i in range(worker, total, clients):
            tag = f"burst-{i}-{uuid.uuid4().hex[:8]}"
            raw = messages.gtube(subject=tag) if i % 2 else messages.ham(subject=tag)
            try:
                if client is None:
                    client = lmtp_client.LMTPClient(daemon.socket)
                replies = client.deliver("alice@demo1.test", ["bob@remote.example"], raw)
            except Exception:
                client = None
                if killed.is_set():
                    return
                continue
            if replies and replies[0][0] == 250:
                with lock:
                    acked.add(tag)
                    if len(acked) == 300 and not killed.is_set():
                        killed.set()
                        daemon.stop(kill=True)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, range(clients)))
    assert killed.is_set()
    daemon.start()   # reconciles
    held = {m.subject for m in daemon.held()}
    sent = set()
    from imunifyemail.core import headers
    for r in daemon.reinjected():
        sent.add(headers.values(r.message, "Subject")[0])
    missing = acked - held - sent
    assert not missing, f"{len(missing)} acknowledged message(s) lost"
    storage = daemon.path / "var/imunifyemail/quarantine/storage"
    files = {str(p.relative_to(storage)) for p in storage.rglob("*") if p.is_file()
             and p.name.endswith((".eml",)) or p.name.startswith(".tmp-")}
    rows = {m.file for m in daemon.held()}
    assert files == rows, "files and rows disagree after restart"
    for m in daemon.held():
        assert os.path.getsize(storage / m.file) == m.size_bytes


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
        assert daemon.send(raw)[0][0] == 250
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


def test_mta_answers_reach_exim_per_recipient(daemon):
    rcpts = ["ok@remote.example", "reject-me@remote.example", "defer-me@remote.example", "ok2@remote.example"]
    replies = daemon.send(samples.ham(to=rcpts), recipients=rcpts)
    assert [code for code, _ in replies] == [250, 550, 451, 250]
    [sent] = daemon.reinjected()
    assert sent.recipients == ["ok@remote.example", "ok2@remote.example"]


def test_reinject_sessions_survive_a_dying_mta(daemon):
    """A session whose MTA went away is replaced without failing the next message."""
    import subprocess
    assert daemon.send(samples.ham())[0][0] == 250
    subprocess.run(["pkill", "-KILL", "-f", f"{daemon.sendmail} -bs"], check=False)
    assert daemon.send(samples.ham())[0][0] == 250
    assert len(daemon.reinjected()) == 2
