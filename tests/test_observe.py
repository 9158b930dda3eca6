"""Observe mode and suggested limits: the core rules, and the store on real SQLite with an injected clock."""
import threading

import pytest


from imunifyemail.core import observe, suggest
from imunifyemail.core.limits import ServerLimits, Usage
from imunifyemail.store import am_stats, db, observed
from imunifyemail.store.activity import Activity, ObjectNotFound

T0 = 1_800_000_000.0
WHO = ("demo1", "demo1.test", "a@demo1.test", "")
HOUR, DAY = 3600, 86400


# -- the p95 rule --------------------------------------------------------------

def test_nearest_rank_p95_is_a_count_reached():
    assert suggest.nearest_rank([]) is None
    assert suggest.nearest_rank([7]) == 7
    assert suggest.nearest_rank(range(1, 21)) == 19          # ceil(0.95 * 20) = 19th smallest
    assert suggest.nearest_rank(range(1, 101)) == 95
    assert suggest.nearest_rank([5, 1, 3]) == 5               # ceil(2.85) = 3rd of 3
    assert suggest.nearest_rank([100] + [1] * 99) == 1        # one spike in 100 hours is above the p95


def test_suggested_limit_is_twice_the_p95_of_the_periods_with_mail():
    assert suggest.suggested_limit([]) is None
    assert suggest.suggested_limit([0, 0, 0]) is None
    assert suggest.suggested_limit([0] * 500 + [10] * 20) == 20     # idle hours do not count
    assert suggest.suggested_limit(list(range(1, 21))) == 38
    assert suggest.suggested_limit([1]) == 2
    s = suggest.suggest([4, 6], [10])
    assert s == suggest.Suggestion(12, 20)
    assert s.as_dict() == {"suggested_limit": 12, "suggested_daily_limit": 20}


# -- observe, the rule ------------------------------------------------------------

def _u(object_id):
    return Usage("domain", object_id, None, 5, 5)


def test_judge_holds_when_any_full_limit_is_enforced():
    a, b = _u("a"), _u("b")
    assert observe.judge([], {}, 0) == observe.Judgement()
    assert observe.judge([a], {}, 0) == observe.Judgement(hold=(a,))
    assert observe.judge([a], {}, 1) == observe.Judgement(observed=(a,))
    assert observe.judge([a], {"a": 0}, 1) == observe.Judgement(hold=(a,))        # its own setting wins
    assert observe.judge([a], {"a": 1}, 0) == observe.Judgement(observed=(a,))
    assert observe.judge([a, b], {"a": 1}, 0) == observe.Judgement(hold=(a, b))   # b enforces
    assert observe.judge([a, b], {"a": 1, "b": 1}, 0) == observe.Judgement(observed=(a, b))


def test_observe_values_are_checked_with_a_reason():
    assert observe.observe_error(1, None) is None and observe.observe_error(0, "x") is None
    assert observe.observe_error(-1, "to follow the server") is None
    assert "invalid observe -1" in observe.observe_error(-1, None)
    assert "or -1 to follow" in observe.observe_error(2, "to follow the server")
    assert "invalid observe True" in observe.observe_error(True, None)
    assert observe.own_setting(-1) is None and observe.own_setting(1) == 1


# -- the store ---------------------------------------------------------------------

def _id(am, so_type):
    return am.conn.execute("SELECT id FROM sender_objects WHERE type = ?", (so_type,)).fetchone()[0]


def _sent(am, so_type="sender_email"):
    return am.conn.execute("SELECT COALESCE(SUM(b.messages), 0) FROM am_buckets b JOIN sender_objects o"
                           " ON o.id = b.object_id WHERE o.type = ?", (so_type,)).fetchone()[0]


def test_server_observe_passes_counts_once_and_records_each_would_be_hold(am):
    server = ServerLimits(sender_email=2, domain=3, observe=1)
    outcomes = [am.reserve(WHO, 1, server, exim_id=f"1aaaaa-00000{n}-AA") for n in range(4)]
    assert all(o.allowed for o in outcomes)
    assert [len(o.observed) for o in outcomes] == [0, 0, 1, 2]     # the 3rd over the sender's, the 4th over both
    assert _sent(am) == 4 and am.conn.execute("SELECT COUNT(*) FROM am_events WHERE object_id = ?",
                                              (_id(am, "sender_email"),)).fetchone()[0] == 4
    items, total = observed.since(am.conn, int(T0), 10)
    assert total == 3
    assert [(o.exim_id, o.limit.so_type, o.limit.limit, o.used) for o in items] == [   # newest first
        ("1aaaaa-000003-AA", "sender_email", 2, 4), ("1aaaaa-000003-AA", "domain", 3, 4),
        ("1aaaaa-000002-AA", "sender_email", 2, 3)]   # what counted against the limit, the message included
    first = items[-1].as_dict()
    assert (first["account"], first["sender"], first["recipients"], first["name"], first["time"]) == (
        "demo1", "a@demo1.test", 1, "a@demo1.test", int(T0))
    assert first["text"] == "sender_email a@demo1.test: 2 messages an hour"
    assert observed.since(am.conn, int(T0) + 1, 10) == ([], 0)


def test_an_objects_own_setting_wins_over_the_servers(am):
    server = ServerLimits(sender_email=1)
    am.reserve(WHO, 1, server)
    assert not am.reserve(WHO, 1, server).allowed
    am.set_observe(_id(am, "sender_email"), 1)
    assert am.reserve(WHO, 1, server).allowed
    am.set_observe(_id(am, "sender_email"), 0)
    assert not am.reserve(WHO, 1, ServerLimits(sender_email=1, observe=1)).allowed
    am.set_observe(_id(am, "sender_email"), None)
    assert am.reserve(WHO, 1, ServerLimits(sender_email=1, observe=1)).allowed
    assert am.get(_id(am, "sender_email"))["observe"] is None
    with pytest.raises(ObjectNotFound):
        am.set_observe("00000000-0000-4000-8000-000000000000", 1)


def test_an_enforced_limit_still_holds_beside_an_observed_one_and_nothing_is_recorded(am):
    am.reserve(WHO, 1, ServerLimits())
    am.set_observe(_id(am, "sender_email"), 1)
    out = am.reserve(WHO, 1, ServerLimits(sender_email=1, domain=1))
    assert not out.allowed and {u.so_type for u in out.offenders} == {"domain", "sender_email"}
    assert observed.since(am.conn, 0, 10) == ([], 0) and _sent(am) == 1


def test_concurrent_observed_messages_are_each_counted_once(tmp_path):
    db.connect(tmp_path / "q.db").close()
    server = ServerLimits(sender_email=5, observe=1)
    errors = []

    def send(n):
        conn = db.connect(tmp_path / "q.db")
        try:
            a = Activity(conn)
            for i in range(10):
                assert a.reserve(WHO, 1, server, exim_id=f"{n}-{i}").allowed
        except Exception as exc:   # surfaced below
            errors.append(exc)
        finally:
            conn.close()
    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    conn = db.connect(tmp_path / "q.db")
    am = Activity(conn)
    assert _sent(am) == 40
    used = sorted(r[0] for r in conn.execute("SELECT used FROM am_observed"))
    assert used == list(range(6, 41))      # each message saw every one counted before it (and counts itself)
    conn.close()


def test_would_be_holds_are_pruned_with_the_statistics(am):
    am.reserve(WHO, 1, ServerLimits())
    am.reserve(WHO, 1, ServerLimits(sender_email=1, observe=1))
    am.clock_obj.t = T0 + 2 * DAY
    am.reserve(WHO, 1, ServerLimits())
    am.reserve(WHO, 1, ServerLimits(sender_email=1, observe=1))
    am.prune(retention_seconds=DAY)
    assert [o.at for o in observed.since(am.conn, 0, 10)[0]] == [int(T0 + 2 * DAY)]


def test_period_totals_per_hour_and_day_in_the_limit_modes_unit(am):
    # 3 messages of 2 recipients in one hour, 1 of 5 the next, 2 of 1 the next day
    midnight = T0 - T0 % DAY
    for at, rcpts in ((0, 2), (60, 2), (1800, 2), (HOUR + 5, 5), (DAY + 10, 1), (DAY + 80, 1)):
        am.clock_obj.t = midnight + at
        am.reserve(WHO, rcpts, ServerLimits())
    sender = _id(am, "sender_email")
    now = midnight + DAY + 90
    hours, days = am_stats.period_totals(am.conn, [sender], now - 30 * DAY, 1)[sender]
    assert sorted(hours) == [1, 2, 3] and sorted(days) == [2, 4]
    hours, days = am_stats.period_totals(am.conn, [sender], now - 30 * DAY, 2)[sender]
    assert sorted(hours) == [2, 5, 6] and sorted(days) == [2, 11]
    assert am_stats.period_totals(am.conn, [sender], now - 20, 1)[sender] == ([1], [1])   # from the window's start
    assert am_stats.period_totals(am.conn, ["no-such"], 0, 1) == {"no-such": ([], [])}
