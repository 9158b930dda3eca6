"""5,000 messages over SMTP and through hosted users' sendmail while the filter daemon is killed -9
three times, Rspamd is stopped once and the quarantine's filesystem (a real tmpfs) fills up once.

Every message must end delivered (at the sink) or quarantined: none lost, and none left in Exim's
queue (what was deferred while the daemon was away or the disk full, the daemon hands back). A
message could only be doubled if a verdict were taken twice — the daemon remembers each verdict with
the Exim id in the transaction that stores or counts the message — so duplicates are counted, printed
and expected to be none.
"""
import collections
import json
import os
import re
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from devtools import samples
from devtools.stack import MailStack
from devtools.waiting import TimedOut, eventually
from imunifyemail.exim.spool import Spool

from .conftest import drop_stack

SMTP_MESSAGES = 4000
SENDMAIL_MESSAGES = 1000
TOTAL = SMTP_MESSAGES + SENDMAIL_MESSAGES
CLIENTS = 4
CONFIG = {"quarantine": {"min_free_bytes": 4 << 20, "reserve_bytes": 1 << 20}}


def _queued(stack, run: str) -> dict:
    """Exim id → subject of this run's messages still in Exim's queue."""
    found = {}
    for hfile in stack.layout.spool.glob("input/*/*-H"):
        try:
            for subject in re.findall(rf"Subject: (Chaos {run}-\d+)", hfile.read_text(errors="replace")):
                found[hfile.name[:-2]] = subject
        except FileNotFoundError:
            continue
    return found


def _queued_subjects(stack, run: str) -> list:
    return list(_queued(stack, run).values())


def _fill(storage: Path, leave: int) -> Path:
    """A file of someone else's that takes the filesystem below the floor (``leave`` bytes left)."""
    filler = storage / "someone-elses-file"
    with open(filler, "wb") as fh:
        while True:
            st = os.statvfs(storage)
            free = st.f_bavail * st.f_frsize
            if free - (1 << 20) < leave:
                break
            fh.write(b"\0" * (1 << 20))
            fh.flush()
    return filler


def test_chaos_nothing_lost_nothing_doubled(daemon_user, capsys):
    base = Path(tempfile.mkdtemp(prefix="ie-chaos-", dir="/tmp"))
    base.chmod(0o755)
    stack = MailStack(base, net=True, config_extra=CONFIG)
    stack.build()
    storage = stack.root / "var/imunifyemail/quarantine/storage"
    storage.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(storage)], check=True)
    run = uuid.uuid4().hex[:6]
    sent = 0
    lock = threading.Lock()
    errors, events = [], []

    def subject(i: int) -> str:
        return f"Chaos {run}-{i:05d}"

    def raw(i: int, sender: str, rcpt: str) -> bytes:
        build = samples.gtube if i % 10 == 0 else samples.ham
        return build(sender=sender, to=(rcpt,), subject=subject(i))

    def smtp_client(n: int) -> None:
        nonlocal sent
        smtp = None
        try:
            for k, i in enumerate(range(n, SMTP_MESSAGES, CLIENTS)):
                if k % 10 == 0:   # past 10 a connection Exim only queues (smtp_accept_queue_per_connection)
                    if smtp is not None:
                        smtp.close()
                    smtp = stack.smtp_connection()
                sender, rcpt = f"user{i % 40}@demo{1 + i % 2}.test", f"rcpt{i}@remote.example"
                smtp.sendmail(sender, [rcpt], raw(i, sender, rcpt))
                with lock:
                    sent += 1
        except Exception as exc:   # reported below; the count of sent stays exact
            errors.append(repr(exc))
        finally:
            if smtp is not None:
                smtp.close()

    def sendmail_client() -> None:
        nonlocal sent
        try:
            for i in range(SMTP_MESSAGES, TOTAL):
                user = f"demo{1 + i % 2}"
                sender, rcpt = f"php{i % 7}@{user}.test", f"rcpt{i}@remote.example"
                stack.sendmail(raw(i, sender, rcpt), "-f", sender, rcpt, user=user, sync=False)
                with lock:
                    sent += 1
        except Exception as exc:
            errors.append(repr(exc))

    def at(mark: int, what: str) -> None:
        stack.wait_for(lambda: sent >= mark or not any(t.is_alive() for t in threads), f"{mark} sent", 900)
        events.append(f"{what} at {sent}")

    try:
        stack.start()
        # A tenth of the mail is spam from the same accounts: containment would (rightly) block them and
        # hold their clean mail too. This test is about the mail path; containment has its own.
        stack.ie_cli("settings", "--containment-threshold", "0")
        threads = [threading.Thread(target=smtp_client, args=(n,)) for n in range(CLIENTS)]
        threads.append(threading.Thread(target=sendmail_client))
        for t in threads:
            t.start()
        # The plan's pauses (time.sleep) are how long each fault lasts: part of the scenario, not a wait.
        at(800, "kill -9")
        stack.stop_daemon(kill=True)
        time.sleep(0.5)
        stack.start_daemon()
        at(1600, "Rspamd stopped")
        stack.rspamd.stop()
        time.sleep(3)
        stack.rspamd.start()
        at(2400, "kill -9")
        stack.stop_daemon(kill=True)
        time.sleep(0.5)
        stack.start_daemon()
        at(3000, "quarantine filesystem filled")
        filler = _fill(storage, leave=2 << 20)
        time.sleep(3)
        filler.unlink()
        at(3800, "kill -9")
        stack.stop_daemon(kill=True)
        time.sleep(0.5)
        stack.start_daemon()
        for t in threads:
            t.join()
        assert not errors, errors
        assert sent == TOTAL

        # The daemon has Exim deliver what it deferred (restarts, a full disk): wait for the queue to empty.
        try:
            eventually(lambda: not _queued_subjects(stack, run), "an empty queue", 300, interval=1)
        except TimedOut:
            pass   # what is still queued, and why, is reported below

        delivered = collections.Counter(m.header("Subject") for m in stack.delivered()
                                        if m.header("Subject").startswith(f"Chaos {run}-"))
        listing = json.loads(stack.ie_cli("emails", "list", "-a", "root", "--subject", f"Chaos {run}-",
                                          "--limit", "100000", "--json").stdout)
        quarantined = collections.Counter(item["subject"] for item in listing["items"])
        queued = collections.Counter(_queued_subjects(stack, run))
        expected = {subject(i) for i in range(TOTAL)}
        lost = sorted(expected - set(delivered) - set(quarantined) - set(queued))
        doubled = {s: c for s, c in (delivered + quarantined).items() if c > 1}
        spam_delivered = sum(1 for s in delivered if int(s.rsplit("-", 1)[1]) % 10 == 0)
        with capsys.disabled():
            print(f"\n  chaos: sent {TOTAL} ({SMTP_MESSAGES} SMTP, {SENDMAIL_MESSAGES} sendmail), delivered "
                  f"{len(delivered)}, quarantined {len(quarantined)}, still queued {len(queued)}, duplicates "
                  f"{sum(c - 1 for c in doubled.values())}; {'; '.join(events)}; GTUBE delivered unscanned "
                  f"while Rspamd was down: {spam_delivered}")
        stuck = _queued(stack, run)
        if stuck:   # why each is still waiting: its own log and Exim's main log lines for it
            with capsys.disabled():
                mainlog = stack.layout.mainlog.read_text(errors="replace").splitlines()
                daemon_log = stack.daemon_log() if hasattr(stack, "daemon_log") else ""
                for exim_id in stuck:
                    print(f"--- still queued {exim_id} ---")
                    print(Spool(stack.layout.spool).msglog(exim_id) or "(no msglog)")
                    print("\n".join(line for line in mainlog if exim_id in line))
                    print("\n".join(line for line in daemon_log.splitlines() if exim_id in line))
        assert lost == [], f"{len(lost)} lost, e.g. {lost[:5]}"
        assert stuck == {}, "the daemon hands back to Exim all it deferred"
        assert doubled == {}, f"doubled: {list(doubled.items())[:5]}"
        assert len(delivered) + len(quarantined) + len(queued) == TOTAL
        assert all(int(s.rsplit("-", 1)[1]) % 10 == 0 for s in quarantined)   # only GTUBE is held
        assert len(quarantined) + spam_delivered == TOTAL // 10
    finally:
        try:
            drop_stack(stack)
        finally:
            subprocess.run(["umount", "-l", str(storage)], check=False)
