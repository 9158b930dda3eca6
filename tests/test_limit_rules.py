"""The pure rules of the sender limits: the hourly and daily windows, the recipient cap, and how
automatic release plans around them (no I/O)."""
from imunifyemail.core.autorelease import Queued, Window, schedule
from imunifyemail.core.limits import (BY_MESSAGES, BY_RECIPIENTS, DAILY, HOURLY, PER_MESSAGE, Reached,
                                      ServerLimits, Usage, daily_limited, describe, offenders, over_cap, reached)

T = 1_800_000_000.0
H, D = 3600.0, 86400.0
WHO = ("demo1", "demo1.test", "a@demo1.test", "")


def usage(so_type="account", hour=0, day=0, override=None, daily_override=None, hour_rcpts=0, day_rcpts=0):
    return Usage(so_type, so_type + "-id", override, hour, hour_rcpts, daily_override, day, day_rcpts)


def windows_of(overs):
    return [(o.so_type, o.window, o.limit, o.used) for o in overs]


def test_the_daily_limit_holds_while_the_hourly_one_has_room():
    server = ServerLimits(account=100, daily_account=500)
    assert offenders([usage(hour=10, day=499)], 1, server) == []
    assert windows_of(offenders([usage(hour=10, day=500)], 1, server)) == [("account", DAILY, 500, 501)]


def test_both_windows_of_an_object_are_checked():
    server = ServerLimits(account=10, daily_account=10)
    assert windows_of(offenders([usage(hour=10, day=10)], 1, server)) == [
        ("account", HOURLY, 10, 11), ("account", DAILY, 10, 11)]


def test_the_three_tiers_of_the_daily_limit():
    server = ServerLimits(daily_domain=5)
    assert windows_of(offenders([usage("domain", day=5)], 1, server)) == [("domain", DAILY, 5, 6)]
    assert offenders([usage("domain", day=5, daily_override=0)], 1, server) == []        # its own: unlimited
    assert windows_of(offenders([usage("domain", day=2, daily_override=2)], 1, server)) == [("domain", DAILY, 2, 3)]
    assert offenders([usage("domain", day=10**6)], 1, ServerLimits()) == []               # no daily limit at all
    # the daily override leaves the hourly default alone, and the other way round
    assert windows_of(offenders([usage("domain", hour=3, day=3, override=3, daily_override=100)], 1,
                                ServerLimits(domain=50, daily_domain=4))) == [("domain", HOURLY, 3, 4)]


def test_the_daily_limit_counts_what_the_limit_mode_counts():
    server = ServerLimits(daily_sender_email=10, limit_mode=BY_RECIPIENTS)
    u = usage("sender_email", day=1, day_rcpts=8)
    assert offenders([u], 2, server) == []
    assert windows_of(offenders([u], 3, server)) == [("sender_email", DAILY, 10, 11)]
    assert daily_limited(usage("sender_email", day=1, day_rcpts=10), server)
    assert not daily_limited(usage("sender_email", day=9, day_rcpts=9), server)


def test_the_cap_holds_a_message_with_more_recipients_whatever_was_sent():
    server = ServerLimits(account=1, max_recipients=50)
    assert not over_cap(50, server) and over_cap(51, server) and not over_cap(10**6, ServerLimits())
    assert offenders([usage()], 50, server) == []
    # over the cap: the cap alone (the objects' counts do not matter), in recipients whatever the mode
    assert windows_of(offenders([usage(hour=5)], 51, server)) == [("", PER_MESSAGE, 50, 51)]


def test_reached_says_which_limit_in_words():
    server = ServerLimits(account=10, daily_account=500, daily_domain=20, limit_mode=BY_MESSAGES,
                          max_recipients=50)
    found = reached(offenders([usage(hour=1, day=500), usage("domain", day=20)], 1, server), WHO, server)
    assert [r.text for r in found] == ["account demo1: 500 messages a day", "domain demo1.test: 20 messages a day"]
    assert found[0].as_dict() == {"type": "account", "name": "demo1", "limit": 500, "limit_mode": 1, "window": "day"}
    cap = reached(offenders([], 51, server), WHO, server)
    assert [r.text for r in cap] == ["more than 50 recipients in one message"]
    assert cap[0].as_dict()["window"] == "message" and cap[0].limit_mode == BY_RECIPIENTS
    assert Reached("sender_email", "a@demo1.test", 7, BY_RECIPIENTS).text == "sender_email a@demo1.test: 7 recipients an hour"
    assert describe(offenders([usage(hour=1, day=500)], 1, server), server) == "account account-id 501/500 a day"
    assert describe(offenders([], 51, server), server) == "51 recipients in one message/50"


def test_server_limits_keep_the_seeds_keys_and_add_the_new_ones():
    keys = list(ServerLimits().as_dict())
    assert keys[:5] == ["account", "domain", "limit_mode", "script", "sender_email"]
    assert keys[5:] == ["daily_account", "daily_domain", "daily_sender_email", "daily_script", "max_recipients",
                        "observe"]


# -- automatic release around daily limits and the cap --------------------------------

def q(key, *objects, recipients=1, capped=False):
    return Queued(key, tuple(objects), recipients, capped)


def test_a_full_day_holds_the_queue_until_its_oldest_minute_ages_out():
    hourly = Window(10, ())
    daily = Window(3, ((T - 20 * H, 1), (T - 10 * H, 1), (T - H / 2, 1)), int(D))
    when = schedule(T, [q("a", "s"), q("b", "s")], {"s": [hourly, daily]}, BY_MESSAGES)
    assert when == {"a": T - 20 * H + D, "b": T - 10 * H + D}


def test_the_hourly_and_the_daily_window_both_must_have_room():
    hourly = Window(1, ((T - 60, 1),))
    daily = Window(5, ((T - 60, 1),), int(D))
    assert schedule(T, [q("a", "s"), q("b", "s")], {"s": [hourly, daily]}, BY_MESSAGES) == \
        {"a": T - 60 + H, "b": T - 60 + 2 * H}


def test_a_message_over_the_cap_never_leaves_and_blocks_nobody():
    when = schedule(T, [q("big", "s", recipients=60, capped=True), q("small", "s")], {"s": [Window(5, ())]},
                    BY_MESSAGES)
    assert when == {"big": None, "small": T}
