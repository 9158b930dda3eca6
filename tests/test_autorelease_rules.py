"""The pure rules of automatic release (the schedule) and containment: no I/O."""
import pytest

from imunifyemail.core import containment
from imunifyemail.core.autorelease import Queued, Window, due, schedule, waits_for_room
from imunifyemail.core.limits import BY_MESSAGES, BY_RECIPIENTS

T = 1_800_000_000.0
H = 3600.0


def q(key, *objects, recipients=1):
    return Queued(key, tuple(objects), recipients)


def test_only_mail_held_for_nothing_but_a_limit_waits():
    assert waits_for_room(["ratelimit"])
    assert not waits_for_room(["spam", "ratelimit"]) and not waits_for_room(["blocked"]) and not waits_for_room([])


def test_a_full_window_frees_one_slot_as_each_sent_message_ages_out():
    sent = Window(3, ((T, 1), (T + 10, 1), (T + 20, 1)))
    when = schedule(T + 30, [q("a", "s"), q("b", "s"), q("c", "s"), q("d", "s")], {"s": [sent]}, BY_MESSAGES)
    # a, b, c take the slots of the three sent; d the slot a takes, an hour after a left
    assert when == {"a": T + H, "b": T + 10 + H, "c": T + 20 + H, "d": T + 2 * H}


def test_room_now_means_now_and_the_queue_fills_it_in_order():
    when = schedule(T, [q("a", "s"), q("b", "s"), q("c", "s")], {"s": [Window(2, ((T - 100, 1),))]}, BY_MESSAGES)
    assert when == {"a": T, "b": T - 100 + H, "c": T + H}


def test_never_more_than_the_limit_in_any_hour():
    sent = tuple((T - 3000 + 7 * i, 1) for i in range(5))
    queue = [q(f"m{i}", "s", "acct") for i in range(40)]
    when = schedule(T, queue, {"s": [Window(5, sent)], "acct": [Window(8, ())]}, BY_MESSAGES)
    times = sorted([at for at, _ in sent] + list(when.values()))
    for start in times:
        assert sum(1 for t in times if start <= t < start + H) <= 5
    assert [when[f"m{i}"] for i in range(40)] == sorted(when.values())   # oldest first


def test_every_limited_object_must_have_room():
    windows = {"dom": [Window(1, ((T - 60, 1),))], "acct": [Window(1, ((T - 600, 1),))]}
    assert schedule(T, [q("a", "acct", "dom")], windows, BY_MESSAGES) == {"a": T - 60 + H}


def test_unlimited_objects_do_not_hold_anything_back():
    assert schedule(T, [q("a", "acct", "s")], {"s": [Window(0, ((T, 1),) * 9)]}, BY_MESSAGES) == {"a": T}


def test_recipients_mode_weighs_each_message_by_its_recipients():
    sent = Window(10, ((T - 3000, 6), (T - 1000, 3)))
    when = schedule(T, [q("a", "s", recipients=5), q("b", "s", recipients=1)], {"s": [sent]}, BY_RECIPIENTS)
    # b would fit now (9 + 1), but does not overtake a: both once the 6 have aged out
    assert when == {"a": T - 3000 + H, "b": T - 3000 + H}


def test_a_message_heavier_than_a_limit_never_leaves_and_blocks_nobody():
    when = schedule(T, [q("big", "s", recipients=11), q("small", "s", recipients=2)],
                    {"s": [Window(10, ())]}, BY_RECIPIENTS)
    assert when == {"big": None, "small": T}


def test_messages_of_different_limited_objects_do_not_wait_for_each_other():
    windows = {"alice": [Window(1, ((T - 10, 1),))], "bob": [Window(1, ())]}
    assert schedule(T, [q("a", "acct", "alice"), q("b", "acct", "bob")], windows, BY_MESSAGES) == \
        {"a": T - 10 + H, "b": T}


def test_what_left_after_now_still_counts():
    # the window counts what was sent after ``now`` too (a clock set back): nothing leaves early
    assert schedule(T, [q("a", "s")], {"s": [Window(1, ((T + 50, 1),))]}, BY_MESSAGES) == {"a": T + 50 + H}


def test_due_is_now_or_before():
    assert due(T, T) and due(T, T - 1) and not due(T, T + 1) and not due(T, None)


@pytest.mark.parametrize("held,contained", [(49, False), (50, False), (51, True)])
def test_containment_is_more_than_the_threshold(held, contained):
    assert containment.over(50, held) is contained


def test_containment_off_for_zero_root_and_accounts_not_active():
    assert not containment.over(0, 10 ** 6)
    assert not containment.applies("demo1", "active", 0)
    assert not containment.applies("root", "active", 50)
    assert not containment.applies("demo1", "block", 50)
    assert containment.applies("demo1", "active", 50)


def test_containment_counts_spam_and_winexec_only():
    assert containment.counts(["spam"]) and containment.counts(["winexec"]) and containment.counts(["spam", "winexec"])
    assert not containment.counts(["ratelimit"]) and not containment.counts(["blocked"])


def test_containment_counts_from_the_administrators_last_state_change():
    assert containment.window_start(10_000, None) == 10_000 - 3600
    assert containment.window_start(10_000, 9_000) == 9_000
    assert containment.window_start(10_000, 1_000) == 10_000 - 3600


def test_a_contained_account_holds_all_but_its_whitelisted_senders_a_block_holds_all():
    from imunifyemail.core.attribution import Attribution
    from imunifyemail.core.message import ScriptHeader
    from imunifyemail.core.verdict import Whitelist, before_scan

    who = Attribution("demo1", "demo1.test", "a@demo1.test", "", ScriptHeader(), domain_owner="demo1")
    listed = Whitelist(sender_emails=frozenset({"a@demo1.test"}))
    assert before_scan(who, True, listed, contained=True).quarantine is False
    assert before_scan(who, True, Whitelist(), contained=True).reasons == ("blocked",)
    assert before_scan(who, True, listed, contained=False).reasons == ("blocked",)
