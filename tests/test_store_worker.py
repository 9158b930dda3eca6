"""The daemon's store thread (daemon/store_worker.py) on a real SQLite database: jobs queued together
are taken together, the mail path's counting is group-committed with a savepoint per message, and the
mail path's own reader sees settings changes at once without re-reading them on every commit."""
import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from imunifyemail.daemon.store_worker import Reader, StoreWorker
from imunifyemail.store import accounts, db, settings, verdicts
from imunifyemail.store.activity import Activity
from imunifyemail.store.db import transaction
from imunifyemail.store.quarantine import NewMessage, Quarantine
from imunifyemail.store.settings import SettingsCache
from imunifyemail.store.space import StorageFull

SPAM_ACTIONS = ("reject", "add header", "rewrite subject")


@pytest.fixture
def database(tmp_path):
    (tmp_path / "storage").mkdir()
    conn = db.connect(tmp_path / "q.db", synchronous="NORMAL")
    conn.execute("CREATE TABLE marks (name TEXT PRIMARY KEY, parent INTEGER REFERENCES accounts(id))")
    yield tmp_path / "q.db", conn
    conn.close()


@pytest.fixture
def worker(database, tmp_path):
    _, conn = database
    store = StoreWorker(Quarantine(conn, tmp_path / "storage", 1 << 20), SettingsCache(conn, SPAM_ACTIONS),
                        Activity(conn))
    yield store
    store.shutdown()


def _mark(conn, name, fail=False, seen=None):
    """A mail-path write: its own transaction (a savepoint inside a group)."""
    if seen is not None:
        seen.append(conn.in_transaction)
    with transaction(conn):
        conn.execute("INSERT INTO marks (name) VALUES (?)", (name,))
        if fail:
            raise ValueError(f"{name} failed")
    return name


def _marks(path):
    other = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in other.execute("SELECT name FROM marks"))
    finally:
        other.close()


def _together(worker, jobs):
    """Queue ``jobs`` (coroutine factories) while the store thread is held busy, so that it takes
    them in one batch; their outcomes, in order."""
    gate = threading.Event()

    async def go():
        busy = asyncio.ensure_future(worker.call(gate.wait, 10))
        await asyncio.sleep(0.05)   # the thread is inside gate.wait now
        pending = [asyncio.ensure_future(job()) for job in jobs]
        await asyncio.sleep(0.05)   # all queued behind it
        gate.set()
        await busy
        return await asyncio.gather(*pending, return_exceptions=True)
    return asyncio.run(go())


def test_grouped_jobs_share_one_transaction_and_a_failing_one_undoes_only_its_own_work(worker, database):
    path, conn = database
    seen = []
    outcomes = _together(worker, [
        lambda: worker.grouped(_mark, conn, "a", False, seen),
        lambda: worker.grouped(_mark, conn, "b", True, seen),
        lambda: worker.grouped(_mark, conn, "c", False, seen)])
    assert outcomes[0] == "a" and outcomes[2] == "c"
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "b failed"
    assert seen == [True, True, True]   # each ran inside the group's transaction
    assert _marks(path) == ["a", "c"]
    assert not conn.in_transaction


def test_a_group_whose_commit_fails_fails_every_job_in_it_and_leaves_nothing(worker, database):
    path, conn = database

    def dangling(name):   # checked only at COMMIT: the whole group's commit fails
        conn.execute("PRAGMA defer_foreign_keys = ON")
        with transaction(conn):
            conn.execute("INSERT INTO marks (name, parent) VALUES (?, 999)", (name,))

    outcomes = _together(worker, [lambda: worker.grouped(_mark, conn, "a"), lambda: worker.grouped(dangling, "b")])
    assert all(isinstance(o, sqlite3.IntegrityError) for o in outcomes), outcomes
    assert _marks(path) == []
    assert not conn.in_transaction   # rolled back: the next job starts clean
    assert asyncio.run(worker.grouped(_mark, conn, "d")) == "d"
    assert _marks(path) == ["d"]


def test_jobs_alone_and_grouped_keep_their_order(worker, database):
    _, conn = database
    order = []

    def note(name):
        order.append(name)
        return name

    outcomes = _together(worker, [lambda: worker.grouped(note, "1"), lambda: worker.call(note, "2"),
                                  lambda: worker.grouped(note, "3"), lambda: worker.grouped(note, "4")])
    assert outcomes == ["1", "2", "3", "4"] and order == ["1", "2", "3", "4"]


def test_shutdown_finishes_what_is_queued(database, tmp_path):
    path, conn = database
    store = StoreWorker(Quarantine(conn, tmp_path / "storage", 1 << 20), SettingsCache(conn, SPAM_ACTIONS),
                        Activity(conn))

    async def go():
        return [asyncio.ensure_future(store.grouped(_mark, conn, n)) for n in "xyz"]
    loop = asyncio.new_event_loop()
    futures = loop.run_until_complete(go())
    store.shutdown()
    assert loop.run_until_complete(asyncio.gather(*futures)) == ["x", "y", "z"]
    loop.close()
    assert _marks(path) == ["x", "y", "z"]


def test_the_readers_settings_follow_every_change_but_not_the_daemons_counting(database):
    path, conn = database
    reader = Reader(db.connect(path, readonly=True), SPAM_ACTIONS)
    try:
        remembered, first = reader.recall("1AbCdE-000001-Ab")
        assert remembered is None and "boss@partner.example" not in first.whitelist.sender_emails
        # the daemon's own counting and verdicts commit all the time: the snapshot is not re-read
        activity = Activity(conn)
        with transaction(conn):
            verdicts.remember(conn, verdicts.Remembered("1AbCdE-000001-Ab", "pass", {"action": "no action"}), 1)
            activity.count_sent(activity.objects(("demo1", "demo1.test", "a@demo1.test", "")), 1, 1.0)
        remembered, again = reader.recall("1AbCdE-000001-Ab")
        assert remembered.verdict == "pass" and again is first
        # a change by ie-cli or the web app (another connection) is seen by the very next message
        other = db.connect(path)
        settings.whitelist_add(other, "sender", [("email", "boss@partner.example")])
        changed = reader.settings.get()
        assert changed is not first and "boss@partner.example" in changed.whitelist.sender_emails
        other.execute("UPDATE accounts SET used_bytes = used_bytes")   # not what the snapshot holds
        assert reader.settings.get() is changed
        other.close()
    finally:
        reader.close()


def test_every_source_of_the_snapshot_moves_the_stamp_and_usage_does_not(database):
    """What the daemon's settings snapshot holds — server limits, features, the whitelist, an account's
    state and its containment — each moves the stamp when another process changes it (migration 12's
    triggers); a hold adding to an account's usage does not."""
    path, conn = database
    reader = Reader(db.connect(path, readonly=True), SPAM_ACTIONS)
    other = db.connect(path)
    try:
        now = 1_800_000_000
        accounts.update_account(other, "demo1", 1 << 20, now)   # a new account: its state is news
        snap = reader.settings.get()

        def moved(change) -> bool:
            nonlocal snap
            before = snap
            change()
            snap = reader.settings.get()
            return snap is not before

        assert moved(lambda: settings.save_server_limits(other, {"account": 7}))
        assert snap.server_limits.account == 7
        assert moved(lambda: settings.save_features(other, {"containment_threshold": 3}))
        assert snap.features.containment_threshold == 3
        assert moved(lambda: settings.whitelist_add(other, "authuser", [("email", "a@demo1.test")]))
        assert moved(lambda: accounts.update_account(other, "demo1", 1 << 20, now, state="block"))
        assert snap.blocked_accounts == {"demo1"} and not snap.contained_accounts
        assert moved(lambda: accounts.update_account(other, "demo1", 1 << 20, now, state="active"))
        with transaction(other):   # the daemon's containment, as it commits it
            assert accounts.contain(other, "demo1", now)
            assert reader.settings.get() is snap   # not committed yet: nothing to see
        snap = reader.settings.get()
        assert snap.contained_accounts == {"demo1"}
        assert not moved(lambda: other.execute(
            "UPDATE accounts SET used_bytes = used_bytes + 10, message_count = message_count + 1"))
    finally:
        other.close()
        reader.close()


# -- holds stored together ----------------------------------------------------------------------------

def _held(n: int, account: str = "demo1") -> NewMessage:
    return NewMessage(account=account, sender=f"s{n}@{account}.test", recipients=(f"r{n}@remote.example",),
                      subject=f"held {n}", reasons=("spam",), exim_id=f"1AbCdE-00000{n}-Ab")


def _files(storage) -> list:
    return sorted(p.name for p in storage.rglob("*") if p.is_file() and not p.name.startswith("."))


def test_holds_queued_together_are_stored_together_each_with_its_own_outcome(worker, database, tmp_path):
    path, conn = database
    quarantine = worker.quarantine
    batches = []
    real = quarantine.add_many
    quarantine.add_many = lambda holds: batches.append(len(holds)) or real(holds)

    def refuse():
        raise ValueError("this one's counting failed")

    outcomes = _together(worker, [
        lambda: worker.hold(_held(1), b"Subject: held 1\n\nspam\n", verdicts.Remembered("1AbCdE-000001-Ab", "hold", {}), None),
        lambda: worker.hold(_held(2), b"Subject: held 2\n\nspam\n", None, refuse),
        lambda: worker.hold(_held(3, "demo2"), b"Subject: held 3\n\nspam\n", None, None)])
    assert batches == [3]
    assert [o.subject for o in (outcomes[0], outcomes[2])] == ["held 1", "held 3"]
    assert isinstance(outcomes[1], ValueError)
    rows = conn.execute("SELECT subject, file FROM messages ORDER BY subject").fetchall()
    assert [r["subject"] for r in rows] == ["held 1", "held 3"]
    assert _files(tmp_path / "storage") == sorted(Path(r["file"]).name for r in rows)   # no file of the failed one
    assert verdicts.recall(conn, "1AbCdE-000001-Ab").fields["email_id"] == outcomes[0].email_id
    assert not conn.in_transaction


def test_a_group_of_holds_whose_commit_fails_stores_none_and_leaves_no_file(database, tmp_path):
    _, conn = database
    quarantine = Quarantine(conn, tmp_path / "storage", 1 << 20)

    def dangling():   # checked at COMMIT: the one durable commit of the group fails
        conn.execute("PRAGMA defer_foreign_keys = ON")
        conn.execute("INSERT INTO marks (name, parent) VALUES ('x', 999)")

    outcomes = quarantine.add_many([(_held(1), b"Subject: a\n\nx\n", None, None),
                                    (_held(2), b"Subject: b\n\nx\n", None, dangling)])
    assert all(isinstance(o, sqlite3.IntegrityError) for o in outcomes), outcomes
    assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    assert _files(tmp_path / "storage") == [] and not conn.in_transaction
    with pytest.raises(sqlite3.IntegrityError):   # add() raises what add_many gives it
        quarantine.add(_held(3), b"Subject: c\n\nx\n", None, dangling)
    assert quarantine.add(_held(4), b"Subject: d\n\nx\n").subject == "held 4"


def test_a_hold_refused_before_its_file_is_written_leaves_the_others_stored(database, tmp_path):
    _, conn = database
    quarantine = Quarantine(conn, tmp_path / "storage", 1 << 20)
    real = quarantine.space.check_room

    def floor(size, freed=0):
        if size == 7:
            raise StorageFull("below the floor")
        return real(size, freed)
    quarantine.space.check_room = floor
    outcomes = quarantine.add_many([(_held(1), b"Subject: a\n\nxx\n", None, None),
                                    (_held(2), b"1234567", None, None)])
    assert outcomes[0].subject == "held 1" and isinstance(outcomes[1], StorageFull)
    assert [r[0] for r in conn.execute("SELECT subject FROM messages")] == ["held 1"]
    assert len(_files(tmp_path / "storage")) == 1
