"""Activity Monitor: the core's verdict rate, the latency the limit step adds
to a message, and `am stats` over 10,000 accounts / 100,000 objects."""
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from bench.stats import line, ms, pct
from devtools.clock import Clock
from imunifyemail.core import limits
from imunifyemail.core.attribution import Meta, attribute
from imunifyemail.core.limits import ServerLimits, Usage
from imunifyemail.core.message import ScriptHeader
from imunifyemail.core.verdict import FilterSettings, Scan, Whitelist, before_scan, decide
from imunifyemail.store import db
from imunifyemail.store.activity import Activity, bucket_of
from imunifyemail.store.settings import save_server_limits
from imunifyemail import shapes
from imunifyemail.ops.activity import Stats
from imunifyemail.store.am_stats import StatsQuery, stats

NOW = 1_800_000_000.0


class _Directory:
    def __init__(self, n: int):
        self.domains = {f"site{i}.example": f"user{i}" for i in range(n)}
        self.accounts = set(self.domains.values())

    def account_for_domain(self, domain):
        return self.domains.get(domain)

    def account_for_uid(self, uid):
        return None

    def is_account(self, name):
        return name in self.accounts


def core_rate(count: int = 200_000) -> float:
    directory = _Directory(1000)
    whitelist = Whitelist(sender_emails=frozenset(f"vip{i}@site{i}.example" for i in range(100)),
                          sender_domains=frozenset({"trusted.example"}))
    server = ServerLimits(account=500, domain=200, sender_email=100, script=50)
    settings = FilterSettings()
    scan = Scan("no action", 1.2, ("A", "B"), "3.4")
    script = ScriptHeader("site1.example/x.php for 1.2.3.4", "site1.example", "/x.php")
    usages = [Usage(t, "id", None, 42, 42) for t in limits.TYPES]
    started = time.perf_counter()
    for i in range(count):
        who = attribute(f"sender{i % 50}@site{i % 1000}.example", Meta(uid=1000 + i % 7), script, directory)
        if before_scan(who, False, whitelist) is None:
            verdict = decide(settings, scan, ())
            if not verdict.quarantine:
                limits.offenders(usages, 1, server)
    return count / (time.perf_counter() - started)


def reserve_latency(tmp: Path, count: int = 3000):
    """As the daemon does it: its connection never checkpoints; a thread does."""
    conn = db.no_auto_checkpoint(db.connect(tmp / "reserve.db"))
    checkpointer = db.Checkpointer(tmp / "reserve.db")
    checkpointer.start()
    clock = Clock(NOW)
    activity = Activity(conn, clock=clock)
    server = save_server_limits(conn, {"account": 1_000_000, "domain": 1_000_000, "sender_email": 1_000_000,
                                       "script": 1_000_000})
    samples = []
    for i in range(count):
        clock.t = NOW + i * 0.5
        who = (f"user{i % 200}", f"site{i % 200}.example", f"s{i % 1000}@site{i % 200}.example",
               f"site{i % 200}.example/mail.php")
        started = time.perf_counter()
        activity.reserve(who, 1, server)
        samples.append(time.perf_counter() - started)
    checkpointer.stop()
    conn.close()
    return pct(samples, 50), pct(samples, 99)


def populate_objects(path: Path, accounts: int = 10_000, per_account: int = 10) -> None:
    """10 objects per account: the account, 1 domain, 7 sender emails, 1 script; all active in the last hour."""
    conn = db.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    objects, buckets, events = [], [], []
    for a in range(accounts):
        acct = str(uuid.uuid4())
        dom = str(uuid.uuid4())
        objects.append((acct, "account", f"user{a:05d}", acct, ""))
        objects.append((dom, "domain", f"site{a}.example", acct, acct))
        for s in range(per_account - 3):
            objects.append((str(uuid.uuid4()), "sender_email", f"s{s}@site{a}.example", acct, dom))
        objects.append((str(uuid.uuid4()), "script", f"site{a}.example/mail.php", acct, acct))
    for i, (oid, *_rest) in enumerate(objects):
        for k in range(2):
            buckets.append((oid, bucket_of(NOW - 60 * (i % 50) - 600 * k), 1 + i % 3, 2, i % 2))
        events.append((oid, NOW - (i % 3000), 1))
    conn.executemany("INSERT INTO sender_objects (id, type, name, account_id, parent_id, created_at)"
                     " VALUES (?, ?, ?, ?, ?, 0)", objects)
    conn.executemany("INSERT OR IGNORE INTO am_buckets VALUES (?, ?, ?, ?, ?)", buckets)
    conn.executemany("INSERT INTO am_events VALUES (?, ?, ?)", events)
    conn.execute("COMMIT")
    conn.close()


def stats_latency(path: Path, query: StatsQuery, runs: int = 20):
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        conn = db.connect(path)
        result = shapes.am_stats(Stats(stats(conn, query, NOW), ServerLimits(sender_email=100), Whitelist()))
        conn.close()
        samples.append(time.perf_counter() - started)
    return pct(samples, 50), pct(samples, 95), result


def run() -> None:
    print("Activity Monitor")
    line("core verdict rate (attribution + whitelist + limits, no I/O)", f"{core_rate():,.0f} /s",
         "(goal >= 20,000/s)")
    tmp = Path(tempfile.mkdtemp(prefix="ie-bench-am-", dir="/var/tmp"))
    try:
        p50, p99 = reserve_latency(tmp)
        line("latency the limit step adds per message (check + count,", f"p50 {ms(p50)}  p99 {ms(p99)}",
             "(goal p99 <= 2 ms)")
        print("  real SQLite, synchronous=FULL)")
        path = tmp / "stats.db"
        started = time.perf_counter()
        populate_objects(path)
        print(f"  (10,000 accounts / 100,000 objects loaded in {time.perf_counter() - started:.1f} s)")
        for label, query in (("am stats --since 3600 (first page of 25 accounts)", StatsQuery()),
                             ("am stats --since 3600 --offset 9000", StatsQuery(offset=9000)),
                             ("am stats --since 3600 --domain site7777.example",
                              StatsQuery(domain="site7777.example"))):
            p50, p95, result = stats_latency(path, query)
            assert result["accounts"], label
            goal = "(goal <= 200 ms)" if query.offset == 0 and query.domain is None else ""
            line(label, f"p50 {ms(p50)}  p95 {ms(p95)}", goal)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
