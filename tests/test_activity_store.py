"""The Activity Monitor's counters on real SQLite, with an injected clock."""
import pytest


from imunifyemail.core.limits import DAILY, HOURLY, PER_MESSAGE, ServerLimits, limit_error, limit_mode_error
from imunifyemail.store import db
from imunifyemail.store.activity import ObjectNotFound
from imunifyemail.store.settings import load_server_limits, save_server_limits

T0 = 1_800_000_000.0
WHO = ("demo1", "demo1.test", "a@demo1.test", "demo1.test/x.php")


def counts(am, so_type="account"):
    return am.conn.execute(
        "SELECT COALESCE(SUM(b.messages), 0), COALESCE(SUM(b.recipients), 0), COALESCE(SUM(b.quarantined), 0)"
        " FROM am_buckets b JOIN sender_objects o ON o.id = b.object_id WHERE o.type = ?", (so_type,)).fetchone()


def test_objects_are_created_once_with_stable_ids(am):
    am.reserve(WHO, 1, ServerLimits())
    am.reserve(WHO, 1, ServerLimits())
    rows = am.conn.execute("SELECT type, name, account_id, parent_id FROM sender_objects ORDER BY type").fetchall()
    assert [(r["type"], r["name"]) for r in rows] == [
        ("account", "demo1"), ("domain", "demo1.test"), ("script", "demo1.test/x.php"),
        ("sender_email", "a@demo1.test")]
    acct = am.conn.execute("SELECT id FROM sender_objects WHERE type = 'account'").fetchone()[0]
    assert {r["account_id"] for r in rows} == {acct}


def test_null_sender_has_no_domain_or_email_object(am):
    am.record_quarantined(("root", "", "", ""))
    assert [r[0] for r in am.conn.execute("SELECT type FROM sender_objects")] == ["account"]


def test_prune_keeps_the_retention_and_the_last_hour(am):
    am.reserve(WHO, 1, ServerLimits())
    am.clock_obj.t = T0 + 86400 * 2
    am.reserve(WHO, 1, ServerLimits())
    am.prune(retention_seconds=86400)
    assert tuple(counts(am)) == (1, 1, 0)
    assert am.conn.execute("SELECT COUNT(*) FROM am_events").fetchone()[0] == 4   # the recent message's objects


def test_override_is_stored_and_removed(am):
    am.reserve(WHO, 1, ServerLimits())
    dom = am.conn.execute("SELECT id FROM sender_objects WHERE type = 'domain'").fetchone()[0]
    with pytest.raises(ObjectNotFound):
        am.set_override("00000000-0000-4000-8000-000000000000", 5)
    am.set_override(dom, 5)
    assert am.get(dom)["limit_override"] == 5
    am.set_override(dom, None)
    assert am.get(dom)["limit_override"] is None


def test_server_settings_are_merged_over_the_current_ones(am):
    assert load_server_limits(am.conn) == ServerLimits()
    assert save_server_limits(am.conn, {"domain": 7}).as_dict() == {
        "account": 0, "domain": 7, "limit_mode": 1, "observe": 0, "script": 0, "sender_email": 0,
        "daily_account": 0, "daily_domain": 0, "daily_script": 0, "daily_sender_email": 0, "max_recipients": 0}
    assert save_server_limits(am.conn, {"limit_mode": 2}) == ServerLimits(domain=7, limit_mode=2)


def test_limit_rules_name_what_is_wrong():
    assert limit_error(5, "limit", "to remove") is None and limit_error(-1, "limit", "to remove") is None
    assert "invalid limit -2" in limit_error(-2, "limit", "to remove the override")
    assert "invalid limit" in limit_error(2 ** 63, "limit", "x")
    assert "whole number" in limit_error(True, "domain limit", "x")
    assert "whole number" in limit_error("7", "domain limit", "x")
    assert limit_mode_error(1) is None and limit_mode_error(2) is None
    assert "invalid limit mode 3" in limit_mode_error(3)


# -- daily limits and the recipient cap ---------------------------------------------------

def account_id(am):
    return am.conn.execute("SELECT id FROM sender_objects WHERE type = 'account'").fetchone()[0]


def test_a_daily_limit_holds_the_first_message_over_it_across_hours(am):
    server = ServerLimits(account=3, daily_account=5)
    sent = []
    for hour in range(3):   # 2 an hour: the hourly limit always has room
        am.clock_obj.t = T0 + hour * 3600
        sent += [am.reserve(WHO, 1, server).allowed for _ in range(2)]
    assert sent == [True] * 5 + [False]
    held = am.reserve(WHO, 1, server)
    assert not held.allowed and [(o.so_type, o.window, o.limit, o.used) for o in held.offenders] == [
        ("account", DAILY, 5, 6)]
    assert tuple(counts(am)) == (5, 5, 0)   # the held ones were not counted as sent


def test_the_day_counts_to_the_minute_and_then_lets_mail_go(am):
    server = ServerLimits(daily_account=2)
    am.clock_obj.t = T0 + 30   # the minute starting at T0 - 0 (T0 is a whole minute)
    assert am.reserve(WHO, 1, server).allowed and am.reserve(WHO, 1, server).allowed
    am.clock_obj.t = T0 + 86399
    assert not am.reserve(WHO, 1, server).allowed
    am.clock_obj.t = T0 + 86400   # that minute is now 24 hours old: out of the window
    assert am.reserve(WHO, 1, server).allowed


def test_an_objects_own_daily_limit_overrides_the_server_default(am):
    am.reserve(WHO, 1, ServerLimits())
    acct = account_id(am)
    with pytest.raises(ObjectNotFound):
        am.set_daily_override("00000000-0000-4000-8000-000000000000", 5)
    am.set_daily_override(acct, 1)
    assert am.get(acct)["daily_override"] == 1 and am.get(acct)["limit_override"] is None
    held = am.reserve(WHO, 1, ServerLimits(daily_account=100))
    assert [(o.window, o.limit) for o in held.offenders] == [(DAILY, 1)]
    am.set_daily_override(acct, 0)   # its own: unlimited, whatever the default
    assert am.reserve(WHO, 1, ServerLimits(daily_account=1)).allowed
    am.set_daily_override(acct, None)
    assert not am.reserve(WHO, 1, ServerLimits(daily_account=1)).allowed


def test_the_daily_limit_counts_recipients_in_recipients_mode(am):
    server = ServerLimits(daily_sender_email=10, limit_mode=2)
    assert am.reserve(WHO, 6, server).allowed
    am.clock_obj.t = T0 + 7200
    held = am.reserve(WHO, 5, server)
    assert [(o.so_type, o.window, o.limit, o.used) for o in held.offenders] == [("sender_email", DAILY, 10, 11)]
    assert am.reserve(WHO, 4, server).allowed


def test_both_windows_are_named_when_both_are_full(am):
    server = ServerLimits(account=1, daily_account=1)
    assert am.reserve(WHO, 1, server).allowed
    assert [o.window for o in am.reserve(WHO, 1, server).offenders] == [HOURLY, DAILY]


def test_a_message_over_the_cap_is_held_and_not_counted(am):
    server = ServerLimits(max_recipients=50)
    assert am.reserve(WHO, 50, server).allowed
    held = am.reserve(WHO, 51, server)
    assert not held.allowed and [(o.window, o.limit, o.used) for o in held.offenders] == [(PER_MESSAGE, 50, 51)]
    assert tuple(counts(am)) == (1, 50, 0)
    assert am.reserve(WHO, 51, ServerLimits()).allowed   # no cap: any number


def test_day_usage_is_read_only_for_objects_under_a_daily_limit(am):
    am.reserve(WHO, 3, ServerLimits())
    objects = am.lookup(WHO)
    none = am.usage(objects, T0, ServerLimits())
    assert [(u.day_messages, u.day_recipients) for u in none] == [(0, 0)] * 4
    some = am.usage(objects, T0, ServerLimits(daily_domain=9))
    assert [(u.so_type, u.day_messages, u.day_recipients) for u in some if u.day_messages] == [("domain", 1, 3)]


def test_the_days_running_sums_always_equal_the_buckets_summed_afresh(am):
    """DayCounts slides each object's sum on as minutes pass; whatever the steps (seconds, minutes,
    hours, more than a day, the clock set back), a count taken back, pruning at the shortest retention
    (a day), and objects that send now and then, it equals the plain sum of the buckets."""
    import random
    from imunifyemail.store.day_counts import day_start
    rng = random.Random(19)
    server = ServerLimits(daily_account=10 ** 9, daily_domain=10 ** 9, daily_sender_email=10 ** 9,
                          daily_script=10 ** 9)
    senders = [WHO, ("demo1", "demo1.test", "b@demo1.test", ""), ("demo1", "other.test", "c@other.test", "")]
    t, sent = T0, []
    for step in range(600):
        t += rng.choice((0, 1, 7, 59, 60, 61, 600, 900, 3599, 3 * 3600, 86340, 86400, 90000, -120, -7200))
        am.clock_obj.t = t
        who = rng.choice(senders)
        recipients = rng.randint(1, 5)
        assert am.reserve(who, recipients, server).allowed
        sent.append((who, t, recipients))
        if step % 37 == 0:   # a re-injection failed: taken back (a past minute changes)
            back, at, n = sent.pop(rng.randrange(len(sent)))
            with db.transaction(am.conn):
                am.uncount(am.objects(back), n, at)
        if step % 23 == 0:
            am.prune(retention_seconds=86400)
        probe = t + rng.choice((0, 30, 900, 3600, 86399))
        objects = am.lookup(rng.choice(senders))
        for u in am.usage(objects, probe, server):
            fresh = am.conn.execute(
                "SELECT COALESCE(SUM(messages), 0), COALESCE(SUM(recipients), 0) FROM am_buckets"
                " WHERE object_id = ? AND bucket >= ? AND bucket <= ?", (u.object_id, day_start(probe), probe)).fetchone()
            assert (u.day_messages, u.day_recipients) == tuple(fresh), (step, u.so_type)


def test_a_minute_leaves_the_day_exactly_when_it_is_24_hours_old_whatever_was_read_ahead(am):
    from imunifyemail.store.day_counts import AHEAD
    server = ServerLimits(daily_account=100)
    am.reserve(WHO, 1, server)   # at T0, a whole minute
    objects = am.lookup(WHO)

    def today(at):
        return [(u.day_messages, u.day_recipients) for u in am.usage(objects, at, server) if u.so_type == "account"]
    # looked at when T0's minute is the last one read ahead of the window's start, then just after it left
    assert today(T0 + 86400 - 60 - AHEAD) == [(1, 1)]
    assert today(T0 + 86400 - 1) == [(1, 1)]
    assert today(T0 + 86400) == [(0, 0)]


def test_a_group_of_messages_rolled_back_across_a_minute_leaves_no_count_behind(am):
    """The daemon commits a group of messages at once (store/db.py's transaction nests as a savepoint):
    when that commit fails, what its messages counted, in the minute just passed too, is gone."""
    server = ServerLimits(daily_account=100)
    am.clock_obj.t = T0 + 30
    assert am.reserve(WHO, 1, server).allowed
    am.conn.execute("BEGIN IMMEDIATE")   # the group
    am.clock_obj.t = T0 + 50
    assert am.reserve(WHO, 1, server).allowed
    am.clock_obj.t = T0 + 70   # the next minute, in the same group: T0's minute is past now
    assert am.reserve(WHO, 1, server).allowed
    am.conn.execute("ROLLBACK")   # the group's commit failed
    [acct] = [u for u in am.usage(am.lookup(WHO), T0 + 80, server) if u.so_type == "account"]
    assert (acct.day_messages, acct.day_recipients) == (1, 1)
