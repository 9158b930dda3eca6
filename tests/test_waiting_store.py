"""Held rate-limited mail waiting for automatic release, as stored (real SQLite, injected clock):
what a step picks, that it is counted and claimed together, given back uncounted, and planned again
only when something it depends on changed."""
import pytest

from devtools.clock import Clock

from imunifyemail.core.limits import ServerLimits
from imunifyemail.core.message import ScriptHeader
from imunifyemail.store import db, waiting
from imunifyemail.store.accounts import update_account
from imunifyemail.store.activity import Activity
from imunifyemail.store.quarantine import NewMessage, Quarantine

T0 = 1_800_000_000.0
H = 3600
LIMITS = ServerLimits(sender_email=1)


@pytest.fixture
def store(tmp_path):
    conn = db.connect(tmp_path / "q.db")
    clock = Clock(T0)
    s = type("Store", (), {})()
    s.conn, s.clock = conn, clock
    s.activity = Activity(conn, clock)
    s.quarantine = Quarantine(conn, tmp_path, 1 << 30, clock=clock)
    yield s
    conn.close()


def sent(s, sender: str, account: str = "demo1") -> None:
    assert s.activity.reserve((account, sender.split("@")[1], sender, ""), 1, LIMITS).allowed


def hold(s, sender: str, subject: str, account: str = "demo1", reasons=("ratelimit",), script=ScriptHeader()):
    msg = NewMessage(account=account, sender=sender, recipients=("x@remote.example",), subject=subject,
                     reasons=tuple(reasons), script=script)
    return s.quarantine.add(msg, b"Subject: " + subject.encode() + b"\r\n\r\nhi\r\n").email_id


def in_window(s, sender: str) -> int:
    return s.conn.execute("SELECT COUNT(*) FROM am_events e JOIN sender_objects o ON o.id = e.object_id"
                          " WHERE o.name = ? AND e.at > ?", (sender, s.clock.t - H)).fetchone()[0]


def buckets(s, sender: str):
    return tuple(s.conn.execute("SELECT SUM(b.messages), SUM(b.recipients) FROM am_buckets b JOIN sender_objects o"
                                " ON o.id = b.object_id WHERE o.name = ?", (sender,)).fetchone())


def claimed(s, email_id: str):
    return s.conn.execute("SELECT claimed_at FROM messages WHERE email_id = ?", (email_id,)).fetchone()[0]


def test_only_mail_held_for_nothing_but_a_limit_waits_and_the_row_gives_back_its_objects(store):
    sent(store, "a@demo1.test")
    wait = hold(store, "a@demo1.test", "w", script=ScriptHeader("x", "demo1.test", "/m.php"))
    hold(store, "a@demo1.test", "s", reasons=("spam",))
    hold(store, "a@demo1.test", "r", reasons=("spam", "ratelimit"))
    [m] = waiting.queue(store.conn, "demo1")
    assert (m.email_id, m.who) == (wait, ("demo1", "demo1.test", "a@demo1.test", "demo1.test/m.php"))


def test_a_pick_counts_and_claims_what_is_due_and_give_back_undoes_both(store):
    sent(store, "a@demo1.test")
    first, second = hold(store, "a@demo1.test", "1"), hold(store, "a@demo1.test", "2")
    assert waiting.pick(store.activity, T0 + 10, LIMITS, 10) == []
    before = buckets(store, "a@demo1.test")
    store.clock.t = T0 + H
    [p] = waiting.pick(store.activity, store.clock.t, LIMITS, 10)
    assert p.message.email_id == first and claimed(store, first) == int(T0 + H) and claimed(store, second) is None
    assert in_window(store, "a@demo1.test") == 1 and buckets(store, "a@demo1.test") == (2, 2)
    assert waiting.pick(store.activity, store.clock.t, LIMITS, 10) == []   # claimed: never taken twice
    waiting.give_back(store.activity, [p])
    assert claimed(store, first) is None and in_window(store, "a@demo1.test") == 0
    assert buckets(store, "a@demo1.test") == before
    [again] = waiting.pick(store.activity, store.clock.t, LIMITS, 10)
    assert again.message.email_id == first


def test_a_blocked_account_waits_and_expects_nothing(store):
    sent(store, "c@demo2.test", "demo2")
    email_id = hold(store, "c@demo2.test", "c", "demo2")
    assert waiting.expected(store.activity, ["demo2"], T0, LIMITS) == {email_id: T0 + H}
    update_account(store.conn, "demo2", 1 << 30, int(T0), state="block")
    assert waiting.expected(store.activity, ["demo2"], T0, LIMITS) == {}
    assert waiting.pick(store.activity, T0 + 2 * H, LIMITS, 10) == []


def test_an_unchanged_account_is_not_planned_again_before_its_next_due_time(store, monkeypatch, tmp_path):
    sent(store, "a@demo1.test")
    first = hold(store, "a@demo1.test", "a")
    known = {}
    assert waiting.pick(store.activity, T0 + 10, LIMITS, 10, known) == []
    assert known["demo1"][1] == T0 + H
    planned = []
    real_plan = waiting.plan
    monkeypatch.setattr(waiting, "plan", lambda *a, **k: planned.append(a[1]) or real_plan(*a, **k))
    assert waiting.pick(store.activity, T0 + 20, LIMITS, 10, known) == [] and planned == []
    # a new hold of another sender changes its waiting mail: planned again, and that one has room
    fresh = hold(store, "b@demo1.test", "b")
    [p] = waiting.pick(store.activity, T0 + 30, LIMITS, 10, known)
    assert p.message.email_id == fresh and planned == ["demo1"]
    # the administrator lifts alice's limit (another connection): planned again at once
    other = db.connect(tmp_path / "q.db")
    alice = other.execute("SELECT id FROM sender_objects WHERE name = 'a@demo1.test'").fetchone()[0]
    Activity(other).set_override(alice, 0)
    other.close()
    [p] = waiting.pick(store.activity, T0 + 40, LIMITS, 10, known)
    assert p.message.email_id == first and planned == ["demo1", "demo1"]


def test_a_sender_whitelisted_since_its_mail_was_held_leaves_at_once_and_is_counted(store):
    from imunifyemail.store.settings import whitelist_add
    sent(store, "a@demo1.test")
    sent(store, "d@demo2.test", "demo2")
    first, second = hold(store, "a@demo1.test", "1"), hold(store, "a@demo1.test", "2")
    other = hold(store, "d@demo2.test", "3", "demo2")
    assert waiting.pick(store.activity, T0 + 10, LIMITS, 10) == []
    whitelist_add(store.conn, "sender", [("email", "a@demo1.test")])
    assert waiting.expected(store.activity, ["demo1", "demo2"], T0 + 20, LIMITS) == {
        first: T0 + 20, second: T0 + 20, other: T0 + H}
    picked = waiting.pick(store.activity, T0 + 20, LIMITS, 10)
    assert [p.message.email_id for p in picked] == [first, second]
    assert in_window(store, "a@demo1.test") == 3   # counted, as whitelisted mail is on the mail path
    whitelist_add(store.conn, "sender", [("domain", "demo2.test")])
    [p] = waiting.pick(store.activity, T0 + 30, LIMITS, 10)
    assert p.message.email_id == other


# -- daily limits and the recipient cap ----------------------------------------------------

D = 86400
DAILY = ServerLimits(sender_email=100, daily_sender_email=2)


def test_automatic_release_waits_for_the_daily_limit_though_the_hour_has_room(store):
    for _ in range(2):
        assert store.activity.reserve(("demo1", "demo1.test", "a@demo1.test", ""), 1, DAILY).allowed
    held = hold(store, "a@demo1.test", "over the day")
    store.clock.t = T0 + 2 * H
    assert waiting.pick(store.activity, store.clock.t, DAILY, 10) == []
    # the day counts to the minute: T0's minute leaves the window 24 hours after it began
    assert waiting.expected(store.activity, ["demo1"], store.clock.t, DAILY) == {held: T0 + D}
    store.clock.t = T0 + D - 1
    assert waiting.pick(store.activity, store.clock.t, DAILY, 10) == []
    store.clock.t = T0 + D
    [p] = waiting.pick(store.activity, store.clock.t, DAILY, 10)
    assert p.message.email_id == held and buckets(store, "a@demo1.test") == (3, 3)


def test_mail_held_by_the_recipient_cap_never_leaves_on_its_own(store):
    cap = ServerLimits(max_recipients=2)
    big = store.quarantine.add(NewMessage(account="demo1", sender="a@demo1.test", subject="big",
                                          recipients=tuple(f"r{i}@remote.example" for i in range(3)),
                                          reasons=("ratelimit",)), b"Subject: big\r\n\r\nhi\r\n").email_id
    small = hold(store, "a@demo1.test", "small")
    assert waiting.expected(store.activity, ["demo1"], T0, cap) == {small: T0}
    assert [p.message.email_id for p in waiting.pick(store.activity, T0, cap, 10)] == [small]
    store.clock.t = T0 + 30 * D
    assert waiting.pick(store.activity, store.clock.t, cap, 10) == []
    # a cap raised since (or none) lets it go; so does whitelisting its sender (no limit applies)
    assert [p.message.email_id for p in waiting.pick(store.activity, store.clock.t, ServerLimits(max_recipients=3), 10)] \
        == [big]


def test_a_whitelisted_sender_is_exempt_from_the_cap_too(store):
    from imunifyemail.store.settings import whitelist_add
    cap = ServerLimits(max_recipients=1)
    big = store.quarantine.add(NewMessage(account="demo1", sender="a@demo1.test", subject="big",
                                          recipients=("r1@remote.example", "r2@remote.example"),
                                          reasons=("ratelimit",)), b"Subject: big\r\n\r\nhi\r\n").email_id
    assert waiting.pick(store.activity, T0, cap, 10) == []
    whitelist_add(store.conn, "sender", [("email", "a@demo1.test")])
    assert [p.message.email_id for p in waiting.pick(store.activity, T0 + 5, cap, 10)] == [big]
