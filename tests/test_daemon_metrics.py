"""The metrics file of the real daemon (root, dropping to ``_imunifyemail``) on real Rspamd and SQLite:
its counters match the mail sent, it is replaced atomically, it follows the ``metrics`` setting."""
import grp
import os
import pwd
import stat
import subprocess
import sys
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devtools import samples
from devtools.rspamd import free_port
from devtools.users import ensure_hosted_user
from imunifyemail import config, shapes
from imunifyemail.errors import ReleaseFailed
from imunifyemail.ops import caller as callers
from imunifyemail.ops import status
from imunifyemail.protocol import clients, control

pytestmark = pytest.mark.service

INTERVAL = 0.1


@pytest.fixture
def mroot(make_root, rspamd):
    return make_root(rspamd.url, metrics={"interval": INTERVAL})


def prom(root):
    return root.path / "var/imunifyemail/metrics/imunifyemail.prom"


def samples_of(text):
    """{sample name with its labels: value}, as Prometheus' own parser reads the file."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[s.name + (f"{{{labels}}}" if labels else "")] = s.value
    return out


def read_metrics(root):
    try:
        return samples_of(prom(root).read_text())
    except FileNotFoundError:
        return None


def wait_metrics(root, what, predicate):
    """The file once ``predicate`` holds for it (the daemon rewrites it every INTERVAL)."""
    found = {}

    def check():
        found["m"] = read_metrics(root)
        return found["m"] is not None and predicate(found["m"])
    root.wait_for(check, what)
    return found["m"]


def test_counters_match_the_mail_sent(mroot):
    mroot.start()
    sent = [mroot.send(samples.ham(subject=f"ham {n}")) for n in range(3)]
    sent += [mroot.send(samples.gtube(to=["a@remote.example", "b@remote.example"]),
                        recipients=["a@remote.example", "b@remote.example"]) for _ in range(2)]
    sent.append(mroot.send(samples.with_exe(sender="x@demo2.test"), sender="x@demo2.test"))
    assert [s.verdict for s in sent] == ["pass"] * 3 + ["hold"] * 3
    mroot.ask_again(sent[0])   # a retry is answered from memory: not decided again, not counted
    m = wait_metrics(mroot, "six messages counted", lambda m: m["imunifyemail_messages_scanned_total"] == 6)
    assert m["imunifyemail_messages_passed_total"] == 3
    assert {k: v for k, v in m.items() if k.startswith("imunifyemail_messages_held_total")} == {
        "imunifyemail_messages_held_total{reason=spam}": 2, "imunifyemail_messages_held_total{reason=winexec}": 1,
        "imunifyemail_messages_held_total{reason=ratelimit}": 0, "imunifyemail_messages_held_total{reason=blocked}": 0,
        "imunifyemail_messages_held_total{reason=unscannable}": 0}
    assert m["imunifyemail_messages_deferred_total"] == 0
    assert m["imunifyemail_rspamd_answer_seconds_count"] == 6 and m["imunifyemail_rspamd_unreachable_total"] == 0
    assert m["imunifyemail_rspamd_answer_seconds_bucket{le=+Inf}"] == 6 and m["imunifyemail_rspamd_answer_seconds_sum"] > 0
    held = mroot.held()
    assert m["imunifyemail_quarantine_messages"] == 3
    assert m["imunifyemail_quarantine_bytes"] == sum(h.size_bytes for h in held)
    assert m["imunifyemail_quarantine_account_messages{account=demo1}"] == 2
    assert m["imunifyemail_quarantine_account_messages{account=demo2}"] == 1
    assert m["imunifyemail_exim_queue_waiting_for_scanner"] == 0
    assert m["imunifyemail_daemon_start_time_seconds"] > 1.7e9
    daemon_uid = pwd.getpwnam("_imunifyemail").pw_uid
    st = prom(mroot).stat()   # written by the daemon's user, readable by node_exporter's
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (daemon_uid, 0o640)
    st = prom(mroot).parent.stat()   # the directory made at start, as root, for the daemon's user
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (daemon_uid, 0o2750)
    # ie-config status --json reads the same file back
    report = shapes.status_metrics(status.metrics(config.load()))
    assert report["enabled"] is True and report["textfile"] == str(prom(mroot))
    assert report["samples"]["imunifyemail_messages_scanned_total"] >= 6
    assert report["samples"]['imunifyemail_messages_held_total{reason="spam"}'] == 2


def test_the_file_is_replaced_atomically_never_seen_half_written(mroot):
    mroot.start()
    mroot.wait_for(lambda: prom(mroot).exists(), "the first metrics file")
    # A rewrite is a new file (inode, mtime): a freed inode may come back for a later file.
    versions, reads, bad = [], [0], []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                with open(prom(mroot), "rb") as fh:
                    st = os.fstat(fh.fileno())
                    if not versions or versions[-1] != (st.st_ino, st.st_mtime_ns):
                        versions.append((st.st_ino, st.st_mtime_ns))
                    text = fh.read().decode()
            except FileNotFoundError:   # would mean a moment without the file: not atomic
                bad.append("missing")
                continue
            reads[0] += 1
            try:
                m = samples_of(text)
                # the first and the last families: a cut file lacks the end (or its newline)
                if not text.endswith("\n") or "imunifyemail_build_info{version=0.1.0}" not in m \
                        or "imunifyemail_quarantine_bytes" not in m:
                    bad.append(text)
            except Exception as exc:   # the parser refused it
                bad.append(f"{exc!r}: {text}")

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for n in range(20):   # mail meanwhile, so the files differ
            mroot.send(samples.ham(subject=f"during {n}"))
        mroot.wait_for(lambda: bad or len(versions) >= 30, "30 rewrites of the metrics file")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert bad == [] and reads[0] > len(versions)
    assert len({ino for ino, _ in versions}) > 1   # replaced, never rewritten in place
    mroot.stop()   # a write in progress has its temporary file: none once the daemon is done
    leftovers = [p.name for p in prom(mroot).parent.iterdir() if p.name != "imunifyemail.prom"]
    assert leftovers == []


def test_metrics_off_removes_the_file_and_on_writes_it_again(mroot):
    mroot.start()
    mroot.wait_for(lambda: prom(mroot).exists(), "the first metrics file")
    mroot.cli("settings", "--metrics", "off")
    mroot.wait_for(lambda: not prom(mroot).exists(), "the file removed")
    mroot.send(samples.gtube())   # mail goes on being decided; the file stays away
    mroot.wait_for(lambda: "metrics are off" in mroot.log.read_text(), "the daemon saying so")
    rewrites = mroot.log.read_text().count("metrics are off")
    # Intervals going by while off, seen rather than slept through: a file left where the daemon writes
    # is removed on its next round (had it written one, it would be there to stay). Two of them.
    for left_over in range(2):
        prom(mroot).write_text("left over\n")
        mroot.wait_for(lambda: not prom(mroot).exists(), "the left-over file removed")
    # one "metrics are off" for each file it removed: none of its own written meanwhile
    assert not prom(mroot).exists() and mroot.log.read_text().count("metrics are off") == rewrites + 2
    assert shapes.status_metrics(status.metrics(config.load())) == {"enabled": False,
                                                                    "textfile": str(prom(mroot)),
                                                                    "interval": INTERVAL}
    mroot.cli("settings", "--metrics", "on")
    m = wait_metrics(mroot, "the file back", lambda m: True)
    assert m["imunifyemail_messages_held_total{reason=spam}"] == 1   # counted while off all the same


def test_releases_through_the_daemon_and_their_failures_are_counted(mroot):
    mroot.start()
    ids = [mroot.send(samples.gtube(subject=f"rel {n}")).email_id for n in range(2)]
    sock = mroot.socket.replace("filter.sock", "control.sock")
    admin = callers.admin(callers.WHM).as_dict()
    assert clients.call(sock, {"op": "release", "caller": admin, "ids": ids[:1]}, 30) == \
        {"ok": True, "released": ids[:1]}
    mroot.fail_flag.touch()   # the MTA refuses the next one
    answer = clients.call(sock, {"op": "release", "caller": admin, "ids": ids[1:]}, 30)
    with pytest.raises(ReleaseFailed):
        raise control.answer_error(answer)
    m = wait_metrics(mroot, "two re-injections", lambda m: m["imunifyemail_reinjections_total"] == 2)
    assert m["imunifyemail_reinjection_failures_total"] == 1
    assert m["imunifyemail_quarantine_messages"] == 1 and len(mroot.reinjected()) == 1


_READ = "import sys\ntry:\n    open(sys.argv[1], 'rb').read(); print('read')\nexcept PermissionError:\n    print('EACCES')\n"


def read_as(user: str, path) -> str:
    """'read' or 'EACCES': ``path`` read by a process of ``user`` (with its own groups)."""
    out = subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", sys.executable, "-I",
                          "-c", _READ, str(path)], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_only_the_collectors_group_reads_the_file_it_names_accounts(make_root, rspamd):
    """metrics.group (here demo2's group, standing in for node_exporter's): it reads the file; a hosted
    user does not (per-account counts are nobody else's business)."""
    for name in ("demo1", "demo2"):
        ensure_hosted_user(name)
    r = make_root(rspamd.url, metrics={"interval": INTERVAL, "group": "demo2"})
    r.start()
    assert r.send(samples.gtube()).verdict == "hold"
    wait_metrics(r, "the held message", lambda m: m["imunifyemail_quarantine_messages"] == 1)
    st = prom(r).stat()
    assert (st.st_gid, stat.S_IMODE(st.st_mode)) == (grp.getgrnam("demo2").gr_gid, 0o640)
    assert read_as("demo2", prom(r)) == "read"
    assert read_as("demo1", prom(r)) == "EACCES"


def test_rspamd_unreachable_is_counted(make_root):
    r = make_root(f"http://127.0.0.1:{free_port()}", metrics={"interval": INTERVAL})   # nothing listens there
    r.start()
    sent = r.send(samples.gtube(), received_at=int(time.time()) - 3601)   # waited rspamd.max_wait already
    assert sent.verdict == "pass" and sent["action"] == "unscanned"
    m = wait_metrics(r, "one unscanned message", lambda m: m["imunifyemail_messages_scanned_total"] == 1)
    assert m["imunifyemail_rspamd_unreachable_total"] == 1 and m["imunifyemail_rspamd_answer_seconds_count"] == 0
    assert m["imunifyemail_messages_passed_total"] == 1


def test_a_directory_of_someone_elses_is_not_taken_over_and_mail_goes_on(make_root, rspamd):
    r = make_root(rspamd.url, metrics={
        "interval": INTERVAL, "textfile": "/var/lib/node_exporter/textfile_collector/imunifyemail.prom"},
        daemon={"log_level": "DEBUG"})
    theirs = r.path / "var/lib/node_exporter/textfile_collector"
    theirs.mkdir(parents=True)   # root's, 0755: the daemon's user cannot write there
    r.start()
    assert r.send(samples.gtube()).verdict == "hold" and r.send(samples.ham()).verdict == "pass"
    r.wait_for(lambda: "cannot write the metrics file" in r.log.read_text(), "the warning")
    # Its later tries are silent: what shows them going by is the look at Exim's queue each one
    # starts with, noted (at DEBUG) while Exim's message logs cannot be read.
    (r.spool / "msglog").mkdir(mode=0)
    r.wait_for(lambda: r.log.read_text().count("cannot read Exim's spool for the metrics") >= 10,
               "ten more tries at the metrics file")
    assert r.log.read_text().count("cannot write the metrics file") == 1   # said once, not every interval
    assert theirs.stat().st_uid == 0 and list(theirs.iterdir()) == []
    assert "error" in shapes.status_metrics(status.metrics(config.load()))
