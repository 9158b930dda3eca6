"""The pages' server time at scale: 1,000,000 held messages, 10,000 accounts / 100,000 sender objects.

The real gunicorn (``imunifyemail-web``, workers as ``_imunifyemail``) on a temporary root; each
figure is the time from sending the request on the admin socket to the last byte of the answer
(nothing else is on that path but the app). Also the workers' resident memory.
"""
import os
import pwd
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import List

from bench import activity_bench, quarantine_bench
from bench.stats import line, ms, pct
from devtools.users import ensure_system_user
from devtools.web import WebServer, unix_request

MESSAGES = 1_000_000
ACCOUNTS = 10_000


def timed(socket_path: str, target: str, runs: int) -> List[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        status, _, body = unix_request(socket_path, "GET", target)
        samples.append(time.perf_counter() - started)
        assert status == 200, (target, status, body[:300])
    return samples


def worker_rss_mb(master_pid: int) -> List[float]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        if re.search(rf"^PPid:\s+{master_pid}$", status, re.M):
            out.append(int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) / 1024)
    return out


def run() -> None:
    print("web pages (real gunicorn, 1,000,000 messages, 10,000 accounts / 100,000 sender objects)")
    ensure_system_user("_imunifyemail")
    tmp = Path(tempfile.mkdtemp(prefix="ie-bench-web-", dir="/var/tmp"))
    tmp.chmod(0o755)
    web = None
    try:
        storage = tmp / "var/imunifyemail/quarantine/storage"
        storage.mkdir(parents=True)
        database = storage / "quarantine.db"
        started = time.perf_counter()
        quarantine_bench.populate(database, MESSAGES, accounts=ACCOUNTS)
        activity_bench.populate_objects(database)
        print(f"  (loaded in {time.perf_counter() - started:.0f} s, search index included)")
        user = pwd.getpwnam("_imunifyemail")
        for path in (storage, *storage.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)
        web = WebServer(tmp, workers=2).start()
        sock = web.admin_socket
        for label, target, runs, goal in (
                ("Quarantine page (first page, every account)", "/admin/quarantine", 100, "(goal p95 <= 50 ms)"),
                ("Quarantine page 40,000 (keyset: after a message id)", None, 100, ""),
                ("Activity Monitor page (last hour, 25 accounts + chart)", "/admin/activity", 100,
                 "(goal p95 <= 50 ms)"),
                ("search by subject (one message matches)", "/admin/quarantine?q=number+123457&in=subject", 50,
                 "(goal p95 <= 100 ms)"),
                ("search by sender (one message matches)", "/admin/quarantine?q=s777777%40&in=sender", 50,
                 "(goal p95 <= 100 ms)"),
                ("search by recipient (one message matches)", "/admin/quarantine?q=r424242%40&in=recipient", 50,
                 "(goal p95 <= 100 ms)"),
                ("search by subject matching 111,111 messages", "/admin/quarantine?q=number+4&in=subject", 20,
                 "(goal p95 <= 100 ms)"),
        ):
            if target is None:   # a deep page by keyset: after the last message of page 39,999 (newest first;
                # message i has the id UUID(int=i + 1)), an id that exists: an unknown one is "not found"
                mark = str(__import__("uuid").UUID(int=MESSAGES - 39_999 * 25 + 1, version=4))
                target = f"/admin/quarantine?after={mark}"
            timed(sock, target, 3)   # warm the worker's cache
            samples = timed(sock, target, runs)
            line(label, f"p50 {ms(pct(samples, 50))}  p95 {ms(pct(samples, 95))}", goal)
        rss = worker_rss_mb(web.proc.pid)
        line("gunicorn worker RSS (after the above)", ", ".join(f"{r:.1f} MB" for r in sorted(rss)),
             "(goal <= 80 MB)")
    finally:
        if web is not None:
            web.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print()
