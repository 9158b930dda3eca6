"""The quarantine store: insert rate with fsync on; `emails list` first page at 100k and 1M rows."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.stats import line, ms, pct
from imunifyemail.store import db
from imunifyemail.store.quarantine import ListQuery, NewMessage, Quarantine

ACCOUNTS = 200


def insert_rate(tmp: Path, count: int = 400) -> float:
    conn = db.connect(tmp / "insert.db")
    q = Quarantine(conn, tmp / "insert-storage", default_limit_bytes=10 ** 12)
    raw = (b"Subject: bench\r\nFrom: a@demo1.test\r\n\r\n" + b"x" * 76 + b"\r\n") * 128  # ~10 KB
    msg = NewMessage(account="demo1", sender="a@demo1.test", recipients=("r@remote.example",),
                     subject="bench", reasons=("spam",))
    q.add(msg, raw)
    started = time.perf_counter()
    for _ in range(count):
        q.add(msg, raw)
    elapsed = time.perf_counter() - started
    conn.close()
    return count / elapsed


def populate(path: Path, rows: int, accounts: int = ACCOUNTS) -> None:
    """Bulk-load metadata rows (the list reads no message files); the search index follows by trigger."""
    conn = db.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO accounts (name, limit_bytes, used_bytes, message_count, created_at)"
                     " VALUES (?, 104857600, 0, 0, 0)", [(f"user{i}",) for i in range(accounts)])
    base = 1_700_000_000
    batch = []
    for i in range(rows):
        acct = i % accounts + 1
        eid = str(uuid.UUID(int=i + 1, version=4))
        batch.append((eid, acct, base + i, f"s{i}@user{acct - 1}.test", json.dumps([f"r{i}@remote.example"]),
                      f"Subject number {i}", 10240, "spam", 15.0, "reject", f"{acct}/{eid[:2]}/{eid}.eml"))
        if len(batch) == 50_000:
            conn.executemany("INSERT INTO messages (email_id, account_id, received_at, sender, recipients,"
                             " subject, size_bytes, reasons, filter_score, filter_action, file)"
                             " VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)
            batch = []
    if batch:
        conn.executemany("INSERT INTO messages (email_id, account_id, received_at, sender, recipients,"
                         " subject, size_bytes, reasons, filter_score, filter_action, file)"
                         " VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)
    conn.execute("UPDATE accounts SET message_count = (SELECT COUNT(*) FROM messages m WHERE m.account_id ="
                 " accounts.id), used_bytes = (SELECT COALESCE(SUM(size_bytes), 0) FROM messages m"
                 " WHERE m.account_id = accounts.id)")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def list_latency(path: Path, storage: Path, account, runs: int = 200):
    """Open the database and fetch the first page with its total, as `ie-cli emails list` does."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        conn = db.connect(path)
        items, total = Quarantine(conn, storage, 104857600).list(ListQuery(account=account, limit=25))
        conn.close()
        samples.append(time.perf_counter() - started)
        assert len(items) == 25 and total > 0
    return pct(samples, 50), pct(samples, 95)


def cli_latency(root: Path, runs: int = 10):
    env = dict(os.environ, IMUNIFYEMAIL_ROOT=str(root))
    exe = Path(sys.executable).with_name("ie-cli")
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(exe), "emails", "list", "-a", "root", "--json"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        samples.append(time.perf_counter() - started)
    return pct(samples, 50), pct(samples, 95)


def run() -> None:
    print("quarantine store")
    tmp = Path(tempfile.mkdtemp(prefix="ie-bench-store-", dir="/var/tmp"))
    try:
        line("insert rate (10 KB messages, fsync + WAL synchronous=FULL)", f"{insert_rate(tmp):.0f} msg/s")
        for rows in (100_000, 1_000_000):
            root = tmp / f"root{rows}"
            storage = root / "var/imunifyemail/quarantine/storage"
            storage.mkdir(parents=True)
            started = time.perf_counter()
            populate(storage / "quarantine.db", rows)
            load = time.perf_counter() - started
            p50, p95 = list_latency(storage / "quarantine.db", storage, None)
            goal = "(goal p95 <= 50 ms)" if rows == 1_000_000 else ""
            line(f"emails list first page, -a root, {rows:,} stored", f"p50 {ms(p50)}  p95 {ms(p95)}", goal)
            p50, p95 = list_latency(storage / "quarantine.db", storage, "user7")
            line(f"emails list first page, -a user7, {rows:,} stored", f"p50 {ms(p50)}  p95 {ms(p95)}", goal)
            p50, p95 = list_latency_filtered(storage / "quarantine.db", storage)
            line(f"  with --subject filter, {rows:,} stored", f"p50 {ms(p50)}  p95 {ms(p95)}")
            if rows == 1_000_000:
                p50, p95 = cli_latency(root)
                line("  whole `ie-cli emails list -a root --json` command", f"p50 {ms(p50)}  p95 {ms(p95)}",
                     "(includes Python start-up)")
            print(f"  (bulk load of {rows:,} rows took {load:.1f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()


def list_latency_filtered(path: Path, storage: Path, runs: int = 20):
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        conn = db.connect(path)
        Quarantine(conn, storage, 104857600).list(ListQuery(subject="number 4", limit=25))
        conn.close()
        samples.append(time.perf_counter() - started)
    return pct(samples, 50), pct(samples, 95)
