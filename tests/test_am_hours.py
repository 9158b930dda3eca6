"""The hourly rollup of the minute buckets (store/am_hours.py): the suggestions' period totals and the
Activity Monitor's last 24 hours read it and give what the minute buckets give, before the daemon
rolls up, after, with an hour not rolled up yet, after a count taken back, and after an account is
deleted. Real SQLite, injected clock."""
import random
from typing import Dict, List, Tuple



from imunifyemail.core.limits import ServerLimits
from imunifyemail.store import am_hours, am_stats
from imunifyemail.store.activity import bucket_of, delete_account_objects

T0 = 1_800_000_000.0 - 1_800_000_000.0 % 86400   # a midnight (UTC)
HOUR, DAY = 3600, 86400
RETENTION = 90 * DAY


STEP = am_hours.STEP_HOURS * HOUR


def _who(n: int) -> Tuple[str, str, str, str]:
    acct = f"demo{n % 3}"
    return (acct, f"{acct}.test", f"s{n % 4}@{acct}.test", f"{acct}.test/m.php" if n % 5 == 0 else "")


def _minute_grouping(conn, object_ids, since, limit_mode) -> Dict[str, Tuple[List[int], List[int]]]:
    """What period_totals gave before the rollup: the minute buckets grouped by hour and by day."""
    column = "recipients" if limit_mode == 2 else "messages"
    out = {}
    for oid in object_ids:
        rows = conn.execute(f"SELECT bucket / {HOUR}, SUM({column}) FROM am_buckets"
                            f" WHERE object_id = ? AND bucket >= ? GROUP BY 1", (oid, bucket_of(since))).fetchall()
        hours = {h: t for h, t in rows if t}
        days: Dict[int, int] = {}
        for h, t in hours.items():
            days[h * HOUR // DAY] = days.get(h * HOUR // DAY, 0) + t
        out[oid] = (sorted(hours.values()), sorted(days.values()))
    return out


def _minute_sums(conn, object_ids, first: int) -> Dict[str, Tuple[int, int]]:
    """What the Activity Monitor's last 24 hours summed before the rollup: every minute bucket."""
    return {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT object_id, SUM(messages), SUM(recipients) FROM am_buckets WHERE bucket >= ? GROUP BY object_id",
        (first,)) if r[0] in object_ids}


def _sorted(totals):
    return {oid: (sorted(h), sorted(d)) for oid, (h, d) in totals.items()}


def _send(am, rng, start: float, end: float, count: int) -> List[Tuple[float, Tuple[str, str, str, str], int]]:
    sent = []
    for _ in range(count):
        at = rng.uniform(start, end)
        who, rcpts = _who(rng.randrange(60)), rng.randint(1, 7)
        am.clock_obj.t = at
        am.record_sent(who, rcpts)
        sent.append((at, who, rcpts))
    return sent


def _ids(am):
    return [r[0] for r in am.conn.execute("SELECT id FROM sender_objects")] + ["no-such"]


def _check(am, rng, now: float) -> None:
    ids = _ids(am)
    sinces = [now - 30 * DAY, now - 2 * DAY, now - DAY - 1234, T0 + 5 * HOUR, now - 90, now + 60]
    sinces += [rng.uniform(T0 - HOUR, now) for _ in range(6)]
    for since in sinces:
        for mode in (1, 2):
            assert _sorted(am_stats.period_totals(am.conn, ids, since, mode, chunk=7)) == \
                _minute_grouping(am.conn, ids, since, mode), (since, mode)
        assert am_stats.window_sums(am.conn, ids, bucket_of(since), chunk=7) == \
            _minute_sums(am.conn, ids, bucket_of(since)), since


def test_period_totals_from_the_rollup_equal_the_minute_grouping(am):
    rng = random.Random(19)
    sent = _send(am, rng, T0, T0 + 3 * DAY + 1000, 1500)
    now = T0 + 3 * DAY + 1000
    assert am_hours.done(am.conn) is None   # fresh: every total from the minute buckets
    _check(am, rng, now)

    am.clock_obj.t = now
    am.prune(RETENTION)   # the daemon's housekeeping: up to the current hour, and STEP back
    assert am_hours.span(am.conn) == ((now // HOUR) * HOUR - STEP, (now // HOUR) * HOUR)
    assert am.conn.execute("SELECT COUNT(*) FROM am_hours").fetchone()[0] > 0
    _check(am, rng, now)   # the days not backfilled yet from the minute buckets
    for n in range(int(3 * DAY // STEP) + 1):   # STEP more each run, until no minute is older
        am.prune(RETENTION)
        if n % 4 == 0:
            _check(am, rng, now)
    first = am_hours.span(am.conn)[0]
    assert first <= T0 and am.conn.execute("SELECT MIN(hour) FROM am_hours").fetchone()[0] == T0 // HOUR * HOUR

    # the current hour, and the next one (not rolled up yet: the daemon has not run since)
    sent += _send(am, rng, now, now + HOUR + 600, 200)
    now += HOUR + 600
    _check(am, rng, now)

    # a count taken back in a rolled-up hour (a re-injection failed), and one in an hour not rolled up
    for at, who, rcpts in (sent[0], sent[3], sent[-1]):
        am.uncount(am.objects(who), rcpts, at)
    _check(am, rng, now)

    am.clock_obj.t = now
    am.prune(RETENTION)   # twice in a row: nothing is counted twice
    am.prune(RETENTION)
    _check(am, rng, now)

    account = am.conn.execute("SELECT id FROM sender_objects WHERE type = 'account' AND name = 'demo1'").fetchone()[0]
    gone = [r[0] for r in am.conn.execute("SELECT id FROM sender_objects WHERE account_id = ?", (account,))]
    assert delete_account_objects(am.conn, "demo1") == len(gone)
    marks = ",".join("?" * len(gone))
    assert am.conn.execute(f"SELECT COUNT(*) FROM am_hours WHERE object_id IN ({marks})", gone).fetchone()[0] == 0
    assert all(t == ([], []) for t in am_stats.period_totals(am.conn, gone, now - 30 * DAY, 1).values())
    _check(am, rng, now)


def test_rollup_keeps_the_minute_buckets_retention(am):
    _send(am, random.Random(7), T0, T0 + 3 * DAY, 1500)
    am.clock_obj.t = T0 + 3 * DAY
    for _ in range(int(3 * DAY // STEP) + 1):   # all rolled up
        am.prune(RETENTION)
    cutoff = T0 + DAY + 1800   # half an hour into a day's second hour
    am.clock_obj.t = cutoff + DAY
    am.prune(DAY)
    oldest = am.conn.execute("SELECT MIN(hour) FROM am_hours").fetchone()[0]
    assert oldest == T0 + DAY   # the hour the cutoff falls in stays (its minutes still there), those before go
    assert am.conn.execute("SELECT MIN(bucket) FROM am_buckets").fetchone()[0] >= cutoff
    _check(am, random.Random(8), cutoff + DAY)
    am.clock_obj.t = cutoff + DAY + 900   # later in the same hour: its next minutes go too
    am.prune(DAY)
    _check(am, random.Random(9), cutoff + DAY + 900)


def test_a_count_taken_back_after_the_rollup_leaves_the_other_minutes_alone(am):
    server = ServerLimits()
    am.clock_obj.t = T0 + 60
    am.reserve(_who(1), 2, server)
    am.clock_obj.t = T0 + 120
    am.reserve(_who(1), 3, server)
    am.clock_obj.t = T0 + 2 * HOUR
    am.prune(RETENTION)
    objects = am.objects(_who(1))
    am.uncount(objects, 2, T0 + 60)
    am.uncount(objects, 2, T0 + 60)   # its minute is empty now: the hour's other minute stays
    sender = next(o.id for o in objects if o.type == "sender_email")
    assert tuple(am.conn.execute("SELECT messages, recipients FROM am_hours WHERE object_id = ? AND hour = ?",
                                 (sender, T0)).fetchone()) == (1, 3)
    assert am_stats.period_totals(am.conn, [sender], T0, 2)[sender] == ([3], [3])


def test_each_run_sums_at_most_a_day_forward_and_a_day_back(am):
    """The housekeeping runs on the store thread (mail waits): a daemon back after days away, or a first
    run over 30 days of minutes, rolls up STEP each way per run, the totals right all along."""
    rng = random.Random(11)
    _send(am, rng, T0, T0 + 2 * HOUR, 100)
    am.clock_obj.t = T0 + 2 * HOUR
    am.prune(RETENTION)
    start = am_hours.span(am.conn)
    _send(am, rng, T0 + 2 * HOUR, T0 + 4 * DAY, 800)   # the daemon away for days
    am.clock_obj.t = T0 + 4 * DAY
    am.prune(RETENTION)
    assert am_hours.span(am.conn)[1] == start[1] + STEP
    _check(am, rng, T0 + 4 * DAY)
    for _ in range(int(4 * DAY // STEP)):
        am.prune(RETENTION)
    assert am_hours.span(am.conn)[1] == (T0 + 4 * DAY) // HOUR * HOUR
    _check(am, rng, T0 + 4 * DAY)
