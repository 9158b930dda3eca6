"""Automatic release of rate-limited mail and containment of a compromised account, through the real
daemon (in process, so its clock is the test's), real Rspamd and real SQLite; released mail goes to
the recording sendmail. The real Exim path is tests/system/test_automatic.py."""

import pytest

from devtools import samples
from devtools.clock import Clock
from imunifyemail.context import Context
from imunifyemail.ops import accounts as account_ops
from imunifyemail.ops import caller as callers
from imunifyemail.ops import emails as email_ops
from imunifyemail.store import db
from imunifyemail.store.settings import save_server_limits
from imunifyemail.store.settings import save_features, whitelist_add

T0 = 1_800_000_000.0
H = 3600.0
ADMIN = callers.admin(callers.CLI)


@pytest.fixture
def auto(root):
    clock = Clock(T0)
    root.start_in_process(clock, auto_release_every=0.05)
    root.clock = clock
    root.admin = db.connect(root.path / "var/imunifyemail/quarantine/storage/quarantine.db")
    root.ctx = Context(clock=clock)   # ie-cli's operations, at the test's time
    yield root
    root.stop()
    root.ctx.close()
    root.admin.close()


def send(r, sender, subject, spam=False, rcpts=("bob@remote.example",)):
    raw = (samples.gtube if spam else samples.ham)(sender=sender, to=list(rcpts), subject=subject)
    return r.send(raw, sender=sender, recipients=rcpts).verdict


def released(r, token: str):
    return [m.header("Subject") for m in r.reinjected() if token in (m.header("Subject") or "")]


def wait_released(r, token: str, count: int, held: int) -> None:
    """Until ``count`` messages were sent and removed, ``held`` left in the quarantine."""
    r.wait_for(lambda: len(released(r, token)) == count and len(waiting(r, token)) == held,
             f"{count} released and {held} left")


def rows(r, sql: str, *args):
    return [tuple(row) for row in r.admin.execute(sql, args)]


def waiting(r, token: str):
    """Subject and claim of each held message of this test, oldest first."""
    return rows(r, "SELECT subject, claimed_at FROM messages WHERE subject LIKE ? ORDER BY id", f"%{token}%")


def sent_in_window(r, sender: str, now: float) -> int:
    return rows(r, "SELECT COUNT(*) FROM am_events e JOIN sender_objects o ON o.id = e.object_id"
                   " WHERE o.type = 'sender_email' AND o.name = ? AND e.at > ?", sender, now - H)[0][0]


def claim_and_count(r, subject: str, sender: str):
    """The message's claim and its sender's count, read at one instant (one read transaction)."""
    r.admin.execute("BEGIN")
    try:
        [(claimed,)] = rows(r, "SELECT claimed_at FROM messages WHERE subject = ?", subject)
        return claimed, sent_in_window(r, sender, r.clock.t)
    finally:
        r.admin.execute("COMMIT")


def test_a_burst_leaves_oldest_first_exactly_once_as_the_window_frees(auto, token):
    sender = f"{token}@demo1.test"
    save_server_limits(auto.admin, {"sender_email": 3})
    save_features(auto.admin, {"auto_release": True})
    for n in range(3):
        auto.clock.t = T0 + 60 * n
        assert send(auto, sender, f"{token} sent {n}") == "pass"
    auto.clock.t = T0 + 180
    for n in range(5):
        assert send(auto, sender, f"{token} held {n}") == "hold"
    held = {m.subject: m for m in auto.held(subject=token)}
    expected = email_ops.expected_releases(auto.ctx, list(held.values()))
    # each of the first three takes the slot of one sent message; the last two the slots of the first two
    assert {s: expected[m.email_id] - T0 for s, m in held.items()} == {
        f"{token} held 0": H, f"{token} held 1": H + 60, f"{token} held 2": H + 120,
        f"{token} held 3": 2 * H, f"{token} held 4": 2 * H + 60}

    auto.clock.t = T0 + H   # the first sent message ages out: one slot, the oldest held takes it
    wait_released(auto, token, 1, 4)
    assert released(auto, token) == [f"{token} held 0"]
    assert [c for _, c in waiting(auto, token)] == [None] * 4   # the others were not even picked
    auto.clock.t = T0 + H + 100
    wait_released(auto, token, 2, 3)
    assert released(auto, token) == [f"{token} held 0", f"{token} held 1"]
    assert [c for _, c in waiting(auto, token)] == [None] * 3
    assert sent_in_window(auto, sender, auto.clock.t) == 3   # the third sent and both released

    auto.clock.t = T0 + 2 * H + 100   # everything sent before has aged out: the last three fit at once
    wait_released(auto, token, 5, 0)
    assert released(auto, token) == [f"{token} held {n}" for n in range(5)]
    assert waiting(auto, token) == []

    # never more than 3 in any hour, counting what passed and what was released
    times = [T0, T0 + 60, T0 + 120] + [at for (at,) in rows(
        auto, "SELECT at FROM audit WHERE action = 'auto release' AND outcome = 'ok' ORDER BY id")]
    assert times[3:] == [T0 + H, T0 + H + 100] + [T0 + 2 * H + 100] * 3
    assert all(sum(1 for t in times if end - H < t <= end) <= 3 for end in times)
    audit = rows(auto, "SELECT actor, role, via, account, outcome FROM audit WHERE action = 'auto release'")
    assert audit == [("imunifyemaild", "daemon", "daemon", "demo1", "ok")] * 5
    assert rows(auto, "SELECT COUNT(*), MIN(reasons) FROM events WHERE kind = 'auto_released' AND sender = ?",
                sender) == [(5, "ratelimit")]
    assert rows(auto, "SELECT DISTINCT actor, via FROM releases") == [("imunifyemaild", "daemon")]
    # counted once each: 3 passed + 5 released as sent (the holds as quarantined)
    assert rows(auto, "SELECT SUM(b.messages), SUM(b.quarantined) FROM am_buckets b JOIN sender_objects o"
                      " ON o.id = b.object_id WHERE o.name = ?", sender) == [(8, 5)]
    assert all(m.protocol == "imunifyemail-released" for m in auto.reinjected())


def test_an_automatic_release_carries_the_filters_verdict_never_the_senders(auto, token):
    sender = f"{token}@demo1.test"
    save_server_limits(auto.admin, {"sender_email": 1})
    save_features(auto.admin, {"auto_release": True})
    assert send(auto, sender, f"{token} sent") == "pass"
    forged = (("X-ImunifyEmail-Filter-Action", "no action"), ("X-ImunifyEmail-Filter-Score", "-5.00"),
              ("X-ImunifyEmail-Filter-Info", "Zm9yZ2Vk"))
    raw = samples.ham(sender=sender, subject=f"{token} held", extra_headers=forged)
    assert auto.send(raw, sender=sender, recipients=("bob@remote.example",)).verdict == "hold"
    [held] = auto.held(subject=token)
    assert held.filter_score is not None and held.filter_score != -5.0   # Rspamd's own score
    auto.clock.t = T0 + H + 1
    wait_released(auto, token, 1, 0)
    [out] = [m for m in auto.reinjected() if token in (m.header("Subject") or "")]
    head = out.message.split(b"\n\n")[0].decode()
    assert [line for line in head.splitlines() if line.lower().startswith("x-imunifyemail")] == [
        f"X-ImunifyEmail-Filter-Action: {held.filter_action}", f"X-ImunifyEmail-Filter-Score: {held.filter_score:.2f}"]


def test_delete_block_and_a_failed_reinjection_stop_it_the_failure_uncounted(auto, token):
    alice, carol = f"{token}-a@demo1.test", f"{token}-c@demo2.test"
    save_server_limits(auto.admin, {"sender_email": 1})
    save_features(auto.admin, {"auto_release": True})
    for sender, who in ((alice, "a"), (carol, "c")):
        assert [send(auto, sender, f"{token} {who}{n}") for n in range(3)] == ["pass", "hold", "hold"]
    by_subject = {m.subject: m.email_id for m in auto.held(subject=token)}
    email_ops.remove(auto.ctx, ADMIN, [by_subject[f"{token} a1"]])
    account_ops.edit(auto.ctx, ADMIN, "demo2", state="block")
    assert set(email_ops.expected_releases(auto.ctx, auto.held(subject=token))) == {by_subject[f"{token} a2"]}

    auto.fail_flag.touch()   # the mail server refuses: given back, uncounted, tried again later
    auto.clock.t = T0 + H
    attempts = auto.wait_for(lambda: rows(auto, "SELECT outcome, ids FROM audit WHERE action = 'auto release'"),
                        "the failed attempt")
    assert all(o.startswith("failed: ") and by_subject[f"{token} a2"] in ids for o, ids in attempts)
    for _ in range(20):   # whenever looked at, it is counted exactly while it is claimed (being tried)
        claimed, counted = claim_and_count(auto, f"{token} a2", alice)
        assert counted == (0 if claimed is None else 1)
    assert released(auto, token) == []

    auto.fail_flag.unlink()
    wait_released(auto, token, 1, 2)
    assert released(auto, token) == [f"{token} a2"]   # not the deleted one, not the blocked account's
    assert sent_in_window(auto, alice, auto.clock.t) == 1
    assert [s for s, c in waiting(auto, token) if c is None] == [f"{token} c1", f"{token} c2"]

    account_ops.edit(auto.ctx, ADMIN, "demo2", state="active")
    wait_released(auto, token, 2, 1)
    assert released(auto, token) == [f"{token} a2", f"{token} c1"]
    assert [s for s, _ in waiting(auto, token)] == [f"{token} c2"]


def test_off_nothing_is_expected_and_turned_on_what_is_due_leaves(auto, token):
    sender = f"{token}@demo1.test"
    save_server_limits(auto.admin, {"sender_email": 1})
    assert [send(auto, sender, f"{token} {n}") for n in range(2)] == ["pass", "hold"]
    assert email_ops.expected_releases(auto.ctx, auto.held(subject=token)) == {}
    auto.clock.t = T0 + 2 * H
    save_features(auto.admin, {"auto_release": True})
    wait_released(auto, token, 1, 0)
    assert released(auto, token) == [f"{token} 1"]


def test_containment_blocks_at_threshold_plus_one_and_one_edit_restores(auto, token):
    spammer, friend = f"{token}-s@demo1.test", f"{token}-f@demo1.test"
    save_features(auto.admin, {"containment_threshold": 3})
    whitelist_add(auto.admin, "sender", [("email", friend)])
    for n in range(3):
        assert send(auto, spammer, f"{token} spam {n}", spam=True) == "hold"
    assert auto.ctx.quarantine.account("demo1").state == "active"
    assert send(auto, spammer, f"{token} spam 3", spam=True) == "hold"   # the 4th: over 3
    info = auto.ctx.quarantine.account("demo1")
    assert (info.state, info.contained_at) == ("block", int(T0))
    assert rows(auto, "SELECT actor, role, via, account, action, outcome FROM audit WHERE action = 'contain'") == \
        [("imunifyemaild", "daemon", "daemon", "demo1", "contain", "ok")]
    assert rows(auto, "SELECT account, sender FROM events WHERE kind = 'contained'") == [("demo1", spammer)]

    auto.clock.t = T0 + 10
    assert send(auto, spammer, f"{token} ham", rcpts=("x@remote.example",)) == "hold"
    assert [m.reasons for m in auto.held(subject=f"{token} ham")] == [["blocked"]]
    assert send(auto, friend, f"{token} friend") == "pass"   # whitelisted: exempt from containment

    account_ops.edit(auto.ctx, ADMIN, "demo1", state="active")   # ie-cli accounts edit --state active
    info = auto.ctx.quarantine.account("demo1")
    assert (info.state, info.contained_at) == ("active", None)
    [(detail,)] = rows(auto, "SELECT detail FROM audit WHERE action = 'account edit' AND account = 'demo1'")
    assert '"contained_at": 1800000000' in detail and '"state": "active"' in detail
    assert send(auto, spammer, f"{token} ham again") == "pass"
    # the count starts afresh at the restore: one more spam does not contain it again
    assert send(auto, spammer, f"{token} spam 4", spam=True) == "hold"
    assert auto.ctx.quarantine.account("demo1").state == "active"


def test_a_block_by_the_administrator_holds_whitelisted_senders_too(auto, token):
    friend = f"{token}-f@demo2.test"
    whitelist_add(auto.admin, "sender", [("email", friend)])
    account_ops.edit(auto.ctx, ADMIN, "demo2", state="block")
    assert send(auto, friend, f"{token} friend") == "hold"
    assert [m.reasons for m in auto.held(subject=token)] == [["blocked"]]


def test_containment_off_at_zero(auto, token):
    save_features(auto.admin, {"containment_threshold": 0})
    for n in range(4):
        assert send(auto, f"{token}@demo2.test", f"{token} {n}", spam=True) == "hold"
    assert auto.ctx.quarantine.account("demo2").state == "active"
