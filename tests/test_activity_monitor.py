"""Sender limits through the real daemon answering the router (real Rspamd, real SQLite),
with an injected clock: what an administrator sees when a site starts spamming."""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from devtools import samples, spool
from devtools.clock import Clock
from imunifyemail.core.verdict import Whitelist
from imunifyemail.core.limits import Reached
from imunifyemail.store import db, events
from imunifyemail import shapes
from imunifyemail.ops.activity import Stats
from imunifyemail.store.activity import Activity
from imunifyemail.store.settings import save_server_limits
from imunifyemail.store.am_stats import StatsQuery, stats
from imunifyemail.store.settings import whitelist_add

T0 = 1_800_000_000.0
MINUTE = 60.0


@pytest.fixture
def am(root):
    clock = Clock(T0)
    root.start_in_process(clock)
    root.clock = clock
    root.verdicts = []
    root.admin = db.connect(root.path / "var/imunifyemail/quarantine/storage/quarantine.db")
    yield root
    root.stop()
    root.admin.close()


def php(script: str):
    return [("X-PHP-Script", f"demo1.test{script} for 203.0.113.5")]


def send(am, sender="alice@demo1.test", rcpts=("bob@remote.example",), script=None, spam=False):
    build = samples.gtube if spam else samples.ham
    raw = build(sender=sender, to=list(rcpts), extra_headers=php(script) if script else ())
    sent = am.send(raw, sender=sender, recipients=rcpts)
    assert sent.verdict in ("pass", "hold"), sent
    am.verdicts.append(sent.verdict)
    return sent


def outcome(am) -> list:
    """How many passed, and the reasons of each message held so far, in order."""
    return am.verdicts.count("pass"), [m.reasons for m in reversed(am.held())]


def view(am, **query):
    """``am stats`` as its JSON shape (the store's tree judged by the current limits and whitelist)."""
    tree = stats(am.admin, StatsQuery(**query), am.clock.t)
    return shapes.am_stats(Stats(tree, _server(am), _whitelist(am)))["accounts"]


def _server(am):
    from imunifyemail.store.settings import load_server_limits
    return load_server_limits(am.admin)


def _whitelist(am) -> Whitelist:
    from imunifyemail.store.settings import load_whitelist
    return load_whitelist(am.admin, am.clock.t)


def object_id(am, so_type: str, name: str) -> str:
    return am.admin.execute("SELECT id FROM sender_objects WHERE type = ? AND name = ?", (so_type, name)).fetchone()[0]


@pytest.mark.parametrize("so_type,kwargs,second", [
    ("sender_email", {}, {"sender": "bob@demo1.test"}),
    ("domain", {}, {"sender": "alice@demo2.test"}),
    ("account", {"sender": "x@shop.demo1.test"}, {"sender": "y@demo2.test"}),
    ("script", {"script": "/wp/mailer.php"}, {"script": "/wp/other.php"}),
])
def test_limit_of_three_per_hour_slides(am, so_type, kwargs, second):
    save_server_limits(am.admin, {so_type: 3})
    first = dict(kwargs)
    for minute in (0, 10, 20):
        am.clock.t = T0 + minute * MINUTE
        send(am, **first)
    am.clock.t = T0 + 30 * MINUTE
    send(am, **first)                                  # the 4th within the hour
    assert outcome(am) == (3, [["ratelimit"]])
    send(am, **second)                                 # another object of that type is not affected
    assert outcome(am)[0] == 4
    am.clock.t = T0 + 59 * MINUTE + 59                 # the first is still inside the last 60 minutes
    send(am, **first)
    assert outcome(am) == (4, [["ratelimit"], ["ratelimit"]])
    am.clock.t = T0 + 61 * MINUTE                      # ... and now it is not: one more fits
    send(am, **first)
    assert outcome(am)[0] == 5
    send(am, **first)
    assert outcome(am)[1][-1] == ["ratelimit"]
    # what the notifications will say: the limit that was reached, named
    names = {"sender_email": "alice@demo1.test", "domain": "demo1.test", "account": "demo1",
             "script": "demo1.test/wp/mailer.php"}
    held = [e for e in events.after(am.admin, 0) if e.kind == "held"]
    assert len(held) == 3 and {e.limits for e in held} == {(Reached(so_type, names[so_type], 3),)}


def test_override_beats_server_default_and_whitelist_beats_both(am):
    save_server_limits(am.admin, {"sender_email": 1})
    send(am)
    send(am)
    assert outcome(am) == (1, [["ratelimit"]])
    activity = Activity(am.admin)
    activity.set_override(object_id(am, "sender_email", "alice@demo1.test"), 3)
    send(am)
    send(am)
    send(am)
    assert outcome(am) == (3, [["ratelimit"], ["ratelimit"]])
    whitelist_add(am.admin, "sender", [("email", "alice@demo1.test")])
    for _ in range(5):
        send(am)
    assert outcome(am)[0] == 8
    [acct] = view(am)
    [dom] = acct["domains"]
    [alice] = dom["sender_emails"]
    assert (alice["whitelisted"], alice["exclusion"], alice["limit"]) == (True, True, 3)
    # back to the server default once the override is removed
    activity.set_override(alice["id"], None)
    [acct] = view(am)
    assert acct["domains"][0]["sender_emails"][0]["limit"] == 1


def test_zero_override_means_unlimited_under_a_server_limit(am):
    save_server_limits(am.admin, {"domain": 1})
    send(am)
    Activity(am.admin).set_override(object_id(am, "domain", "demo1.test"), 0)
    for _ in range(4):
        send(am)
    assert outcome(am) == (5, [])


def test_recipient_mode_counts_each_recipient(am):
    save_server_limits(am.admin, {"sender_email": 6, "limit_mode": 2})
    five = [f"r{i}@remote.example" for i in range(5)]
    send(am, rcpts=five)
    send(am, rcpts=five)                               # 10 > 6
    send(am, rcpts=["one@remote.example"])             # 5 + 1 = 6 fits
    assert outcome(am) == (2, [["ratelimit"]])
    [e] = events.after(am.admin, 0)
    assert e.limits == (Reached("sender_email", "alice@demo1.test", 6, 2),)
    save_server_limits(am.admin, {"limit_mode": 1})    # by messages: 2 sent, limit 6
    send(am, rcpts=five)
    assert outcome(am)[0] == 3


def test_spam_is_counted_as_quarantined_not_against_the_limit(am):
    save_server_limits(am.admin, {"sender_email": 2})
    send(am, spam=True)
    send(am, spam=True)
    send(am)
    send(am)
    assert outcome(am) == (2, [["spam"], ["spam"]])
    [acct] = view(am)
    assert (acct["messages"], acct["quarantined"]) == (2, 2)
    alice = acct["domains"][0]["sender_emails"][0]
    assert (alice["messages"], alice["quarantined"], alice["rateLimited"], alice["limit"]) == (2, 2, True, 2)


def test_a_deferred_message_does_not_use_up_the_limit(am):
    save_server_limits(am.admin, {"sender_email": 1})
    gone = spool.new_id()   # Exim asked, but the message is not readable: deferred, not counted
    assert spool.ask(am.socket, gone, "bob@remote.example")["verdict"] == "defer"
    send(am)
    assert outcome(am) == (1, [])
    [acct] = view(am)
    assert acct["messages"] == 1


def test_stats_agree_with_what_was_sent(am):
    send(am, sender="a@demo1.test", script="/x.php")
    send(am, sender="a@demo1.test", spam=True)
    send(am, sender="b@demo1.test")
    send(am, sender="c@demo2.test", rcpts=("1@r.example", "2@r.example"))
    am.clock.t = T0 + 2 * 3600
    send(am, sender="c@demo2.test")
    names = [a["name"] for a in view(am, since=3600)]
    assert names == ["demo2"]
    accounts = view(am, since=3 * 3600)
    assert [a["name"] for a in accounts] == ["demo1", "demo2"]
    demo1, demo2 = accounts
    assert (demo1["messages"], demo1["quarantined"], demo2["messages"]) == (2, 1, 2)
    senders = {s["name"]: (s["messages"], s["quarantined"]) for s in demo1["domains"][0]["sender_emails"]}
    assert senders == {"a@demo1.test": (1, 1), "b@demo1.test": (1, 0)}
    assert [s["name"] for s in demo1["scripts"]] == ["demo1.test/x.php"]
    assert demo2["scripts"] is None
    assert [a["name"] for a in view(am, since=3 * 3600, limit=1, offset=1)] == ["demo2"]
    only = view(am, since=3 * 3600, sender_email="b@demo1.test")
    assert [s["name"] for s in only[0]["domains"][0]["sender_emails"]] == ["b@demo1.test"]


def test_eight_clients_400_messages_limit_100_exactly_100_pass(am):
    save_server_limits(am.admin, {"account": 100})
    passed = []
    lock = threading.Lock()

    def client(n: int):
        for i in range(50):
            exim_id = spool.new_id()
            spool.write(am.spool, exim_id, samples.ham(subject=f"client {n} message {i}"), "alice@demo1.test",
                        ["bob@remote.example"])
            answer = spool.ask(am.socket, exim_id, "bob@remote.example")
            assert answer["verdict"] in ("pass", "hold")
            if answer["verdict"] == "pass":
                with lock:
                    passed.append((n, i))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(client, range(8)))
    assert len(passed) == 100
    held = am.held()
    assert len(held) == 300 and all(m.reasons == ["ratelimit"] for m in held)
    [acct] = view(am)
    assert (acct["messages"], acct["quarantined"], acct["rateLimited"]) == (100, 300, True)
