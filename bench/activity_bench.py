"""Activity Monitor: the core's verdict rate, the latency the limit step adds
to a message — each with daily limits off and on, as a ratio — and `am stats`
over 10,000 accounts / 100,000 objects."""
import shutil
import tempfile
import time
import uuid
from types import SimpleNamespace
from typing import List
from dataclasses import replace
from pathlib import Path

from bench.stats import line, ms, pct
from devtools.clock import Clock
from imunifyemail.core import limits
from imunifyemail.core.attribution import Meta, attribute
from imunifyemail.core.limits import ServerLimits, Usage
from imunifyemail.core.message import ScriptHeader
from imunifyemail.core.verdict import FilterSettings, Scan, Whitelist, before_scan, decide
from imunifyemail.store import am_hours, db
from imunifyemail.store.activity import Activity, bucket_of
from imunifyemail import shapes
from imunifyemail.ops import activity as ops_activity
from imunifyemail.ops.activity import Stats
from imunifyemail.ops.caller import CLI, Caller
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


HOURLY = ServerLimits(account=500, domain=200, sender_email=100, script=50)
# The same with daily limits on every type and the recipient cap: what "daily limits on" costs.
DAILY = replace(HOURLY, daily_account=5000, daily_domain=2000, daily_sender_email=1000, daily_script=500,
                max_recipients=50)


def core_rate(server: ServerLimits = HOURLY, count: int = 200_000) -> float:
    directory = _Directory(1000)
    whitelist = Whitelist(sender_emails=frozenset(f"vip{i}@site{i}.example" for i in range(100)),
                          sender_domains=frozenset({"trusted.example"}))
    settings = FilterSettings()
    scan = Scan("no action", 1.2, ("A", "B"), "3.4")
    script = ScriptHeader("site1.example/x.php for 1.2.3.4", "site1.example", "/x.php")
    usages = [Usage(t, "id", None, 42, 42, None, 420, 420) for t in limits.TYPES]
    started = time.perf_counter()
    for i in range(count):
        who = attribute(f"sender{i % 50}@site{i % 1000}.example", Meta(uid=1000 + i % 7), script, directory)
        if before_scan(who, False, whitelist) is None:
            verdict = decide(settings, scan, ())
            if not verdict.quarantine:
                limits.offenders(usages, 1, server)
    return count / (time.perf_counter() - started)


WHO_COUNT = 3000   # messages per reserve run, 0.5 s apart (daemon time)


def _who(i: int):
    return (f"user{i % 200}", f"site{i % 200}.example", f"s{i % 1000}@site{i % 200}.example",
            f"site{i % 200}.example/mail.php")


def reserve_db(path: Path) -> None:
    """The objects the reserve runs use, each with a full day behind it: a minute bucket in each of the
    last 1440 minutes (the most a daily limit ever sums per object), and the hour's events."""
    conn = db.connect(path)
    activity = Activity(conn, clock=Clock(NOW - 1))
    for i in range(1000):
        activity.reserve(_who(i), 1, ServerLimits())
    ids = [r[0] for r in conn.execute("SELECT id FROM sender_objects")]
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    conn.executemany("INSERT OR IGNORE INTO am_buckets VALUES (?, ?, 1, 1, 0)",
                     [(oid, bucket_of(NOW - 60 * m)) for oid in ids for m in range(1, 1440)])
    conn.execute("COMMIT")
    conn.close()


def reserve_latency(path: Path, server: ServerLimits, first: int):
    """As the daemon does it: its connection never checkpoints; a thread does. Messages ``first`` to
    ``first + WHO_COUNT`` (each run's own, so runs in turn see the same amount of history), timed after
    one untimed message of each sender (a running daemon has seen its senders: each object's day is
    summed once per start, then slid on)."""
    conn = db.no_auto_checkpoint(db.connect(path))
    checkpointer = db.Checkpointer(path)
    checkpointer.start()
    clock = Clock(NOW - 600)
    activity = Activity(conn, clock=clock)
    for i in range(first - 1000, first):
        activity.reserve(_who(i), 1, server)
    samples = []
    for i in range(first, first + WHO_COUNT):
        clock.t = NOW + (i - first) * 0.5
        started = time.perf_counter()
        assert activity.reserve(_who(i), 1, server).allowed
        samples.append(time.perf_counter() - started)
    checkpointer.stop()
    conn.close()
    return samples


UNLIMITED = ServerLimits(account=1_000_000, domain=1_000_000, sender_email=1_000_000, script=1_000_000)
UNLIMITED_DAILY = replace(UNLIMITED, daily_account=10 ** 9, daily_domain=10 ** 9, daily_sender_email=10 ** 9,
                          daily_script=10 ** 9, max_recipients=1000)


def daily_ratios(tmp: Path, rounds: int = 3):
    """Daily limits on against off in the same run, in turns (off, on, off, on, ...) so the machine's
    load weighs on both alike: the core's verdict rate (best of each), and the limit step's median."""
    off_rates, on_rates = [], []
    for _ in range(rounds):
        off_rates.append(core_rate(HOURLY))
        on_rates.append(core_rate(DAILY))
    path = tmp / "daily.db"
    reserve_db(path)
    off, on = [], []
    for r in range(rounds):
        off += reserve_latency(path, UNLIMITED, 10_000 * (2 * r + 1))
        on += reserve_latency(path, UNLIMITED_DAILY, 10_000 * (2 * r + 2))
    return max(off_rates), max(on_rates), off, on


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


SUGGEST_DAYS = 30


def populate_suggestions(path: Path, accounts: int = 25, others: int = 200) -> List[str]:
    """A first page of ``accounts`` accounts whose objects (the account, its domain, 2 sender emails and
    a script) each sent a message every minute for 30 days, then ``others`` accounts (later in name
    order) active in the last hour; the page's object ids."""
    conn = db.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    objects, page = [], []
    for a in range(accounts + others):
        acct, dom = str(uuid.uuid4()), str(uuid.uuid4())
        tree = [(acct, "account", f"user{a:05d}", acct, ""), (dom, "domain", f"site{a}.example", acct, acct),
                (str(uuid.uuid4()), "sender_email", f"a@site{a}.example", acct, dom),
                (str(uuid.uuid4()), "sender_email", f"b@site{a}.example", acct, dom),
                (str(uuid.uuid4()), "script", f"site{a}.example/mail.php", acct, acct)]
        objects += tree
        if a < accounts:
            page += [t[0] for t in tree]
    conn.executemany("INSERT INTO sender_objects (id, type, name, account_id, parent_id, created_at)"
                     " VALUES (?, ?, ?, ?, ?, 0)", objects)
    conn.execute("CREATE TEMP TABLE page (id TEXT)")
    conn.executemany("INSERT INTO temp.page VALUES (?)", [(i,) for i in page])
    last = bucket_of(NOW)
    conn.execute("INSERT INTO am_buckets (object_id, bucket, messages, recipients, quarantined)"
                 " WITH RECURSIVE minute(b) AS (SELECT ? UNION ALL SELECT b + 60 FROM minute WHERE b < ?)"
                 " SELECT p.id, m.b, 1, 1 + m.b / 60 % 3, 0 FROM temp.page p CROSS JOIN minute m",
                 (last - SUGGEST_DAYS * 86400 + 60, last))
    conn.executemany("INSERT OR IGNORE INTO am_buckets VALUES (?, ?, 1, 1, 0)",
                     [(o[0], last - 60 * (i % 50), ) for i, o in enumerate(objects[5 * accounts:])])
    conn.execute("COMMIT")
    conn.close()
    return page


def suggestions_latency(path: Path, runs: int = 10):
    """``am stats`` with each object's suggested limits (ops.activity.stats, as the WHM page and
    ie-cli call it): the first page, 25 accounts."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        conn = db.connect(path)
        ctx = SimpleNamespace(conn=conn, clock=lambda: NOW)
        result = ops_activity.stats(ctx, Caller(None, CLI), StatsQuery())
        conn.close()
        samples.append(time.perf_counter() - started)
    return pct(samples, 50), pct(samples, 95), result


def roll_up(path: Path) -> float:
    """What the daemon's housekeeping does (Activity.prune), run until the 30 days are rolled up
    (am_hours.STEP_HOURS back per run); the longest run in seconds (the store thread's pause)."""
    conn = db.connect(path)
    activity, longest = Activity(conn, clock=Clock(NOW)), 0.0
    while True:
        started = time.perf_counter()
        activity.prune(90 * 86400)
        longest = max(longest, time.perf_counter() - started)
        first = am_hours.span(conn)[0]
        if not conn.execute("SELECT 1 FROM am_buckets WHERE bucket < ? LIMIT 1", (first,)).fetchone():
            break
    conn.close()
    return longest


def suggestions_bench(tmp: Path) -> None:
    path = tmp / "suggest.db"
    started = time.perf_counter()
    page = populate_suggestions(path)
    print(f"  ({len(page)} objects x 30 days of minutes loaded in {time.perf_counter() - started:.1f} s)")
    p50, p95, result = suggestions_latency(path, runs=3)
    line("am stats with suggestions, first page of 25 accounts,", f"p50 {ms(p50)}  p95 {ms(p95)}")
    print("  each object sending every minute for 30 days: before the rollup (minute buckets)")
    longest = roll_up(path)
    line("  the daemon's rollup of those 30 days, 6 hours back per housekeeping run", f"longest run {ms(longest)}")
    p50, p95, after = suggestions_latency(path)
    assert after.suggestions == result.suggestions and len(after.suggestions) == len(page)
    line("  the same with the daemon's hourly rollup done", f"p50 {ms(p50)}  p95 {ms(p95)}")


def run() -> None:
    print("Activity Monitor")
    tmp = Path(tempfile.mkdtemp(prefix="ie-bench-am-", dir="/var/tmp"))
    try:
        rate_off, rate_on, off, on = daily_ratios(tmp)
        line("core verdict rate (attribution + whitelist + limits, no I/O)", f"{rate_off:,.0f} /s",
             "(goal >= 20,000/s)")
        line("latency the limit step adds per message (check + count,", f"p50 {ms(pct(off, 50))}  p99 {ms(pct(off, 99))}",
             "(goal p99 <= 2 ms)")
        print("  real SQLite, synchronous=FULL)")
        line("  the same with daily limits and the recipient cap on", f"{rate_on:,.0f} /s; "
             f"p50 {ms(pct(on, 50))}  p99 {ms(pct(on, 99))}")
        print("  (each object with a full day of minute buckets behind it)")
        line("daily limits on / off: core verdict rate", f"{rate_on / rate_off:.2f}", "(goal >= 0.95)")
        line("daily limits on / off: limit steps per second (1 / mean)",
             f"{(sum(off) / len(off)) / (sum(on) / len(on)):.2f}", "(goal >= 0.95)")
        line("daily limits on / off: median limit step (off / on)", f"{pct(off, 50) / pct(on, 50):.2f}",
             "(goal >= 0.95)")
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
        suggestions_bench(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
