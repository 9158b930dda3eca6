"""The quarantine store on real SQLite and real files."""
import sqlite3

import pytest

from devtools.clock import Clock

from imunifyemail.store import audit as audit_rows
from imunifyemail.store import db
from imunifyemail.store.accounts import is_blocked, releases_since, update_account
from imunifyemail.store.quarantine import ListQuery, NewMessage, NotFound, Quarantine


@pytest.fixture
def store(tmp_path):
    clock = Clock(1_700_000_000)
    conn = db.connect(tmp_path / "q.db")
    q = Quarantine(conn, tmp_path / "storage", default_limit_bytes=1000, clock=clock)
    q.clock_obj = clock
    yield q
    conn.close()


def msg(account="demo1", subject="s", reasons=("spam",), rcpts=("r@x.example",), sender="a@demo1.test"):
    return NewMessage(account=account, sender=sender, recipients=tuple(rcpts), subject=subject, reasons=reasons)


def test_add_stores_exact_bytes_and_counts(store):
    raw = b"Subject: s\r\n\r\nbody\r\n"
    m = store.add(msg(), raw)
    assert store.read(store.get(m.email_id)) == raw
    acct = store.account("demo1")
    assert (acct.used_bytes, acct.message_count, acct.limit_bytes, acct.state) == (len(raw), 1, 1000, "active")
    assert (store.storage / m.file).stat().st_mode & 0o777 == 0o600


def test_oldest_deleted_when_full_and_counted_for_the_last_hour(store):
    ids = []
    for i in range(5):
        store.clock_obj.t += 1
        ids.append(store.add(msg(subject=f"m{i}"), b"x" * 300).email_id)
    items, total = store.list(ListQuery(account="demo1"))
    assert total == 3 and [m.subject for m in items] == ["m4", "m3", "m2"]
    assert store.account("demo1").used_bytes == 900
    assert store.account("demo1").deleted_last_hour == 2
    with pytest.raises(NotFound):
        store.get(ids[0])
    assert not (store.storage / "1" / ids[0][:2] / f"{ids[0]}.eml").exists()
    store.clock_obj.t += 3601
    assert store.account("demo1").deleted_last_hour == 0


def test_a_message_larger_than_the_limit_is_still_kept(store):
    store.add(msg(subject="small"), b"x" * 100)
    big = store.add(msg(subject="big"), b"x" * 5000)
    items, _ = store.list(ListQuery(account="demo1"))
    assert [m.email_id for m in items] == [big.email_id]


def test_accounts_are_isolated(store):
    a = store.add(msg(account="demo1"), b"a")
    b = store.add(msg(account="demo2"), b"b")
    with pytest.raises(NotFound):
        store.get(b.email_id, account="demo1")
    with pytest.raises(NotFound):
        store.remove([a.email_id, b.email_id], account="demo1")
    assert store.list(ListQuery())[1] == 2            # nothing removed
    store.remove([a.email_id], account="demo1")
    assert store.list(ListQuery())[1] == 1
    assert store.account("demo1").used_bytes == 0


def test_list_filters_and_total(store):
    for i in range(30):
        store.clock_obj.t += 10
        store.add(msg(account="demo1", subject=f"subj {i}", reasons=("spam",) if i % 3 else ("winexec",),
                      rcpts=(f"r{i}@x.example",)), b"x")
    page, total = store.list(ListQuery(limit=5, offset=5))
    assert total == 30 and len(page) == 5 and page[0].subject == "subj 24"
    assert store.list(ListQuery(reason="winexec"))[1] == 10
    assert store.list(ListQuery(recipient="r7@"))[1] == 1
    assert store.list(ListQuery(subject="subj 2"))[1] == 11
    assert store.list(ListQuery(subject="100%_"))[1] == 0
    t0 = 1_700_000_000
    assert store.list(ListQuery(since=t0 + 100, until=t0 + 200))[1] == 10


def test_edit_and_purge(store):
    store.add(msg(account="demo1"), b"abc")
    info = update_account(store.conn, "demo1", 1000, 0, state="block", limit_bytes=10, releases_limit=2)
    assert (info.state, info.limit_bytes, info.releases_limit) == ("block", 10, 2)
    assert is_blocked(store.conn, "demo1") and not is_blocked(store.conn, "demo2")
    assert store.purge_account("demo1").count == 1
    assert store.account("demo1").used_bytes == 0 and store.list(ListQuery())[1] == 0


def test_reconcile_removes_orphans_both_ways(store):
    kept = store.add(msg(), b"kept")
    gone = store.add(msg(), b"gone")
    (store.storage / gone.file).unlink()                      # row without file
    orphan = store.storage / "1" / "ab" / "abcdef.eml"        # file without row (never acknowledged)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"x")
    tmp = store.storage / "1" / "ab" / ".tmp-1234"
    tmp.write_bytes(b"half")
    assert store.reconcile() == (2, 1)
    assert not orphan.exists() and not tmp.exists()
    assert [m.email_id for m in store.list(ListQuery())[0]] == [kept.email_id]
    assert store.account("demo1").used_bytes == 4


def test_newer_schema_is_refused_not_recreated(tmp_path):
    path = tmp_path / "q.db"
    db.connect(path).close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.commit()
    raw.close()
    with pytest.raises(db.DatabaseError, match="newer"):
        db.connect(path)


def test_durability_settings(tmp_path):
    conn = db.connect(tmp_path / "q.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2   # FULL


def test_claims_keep_two_releases_apart(store):
    a = store.add(msg(), b"a").email_id
    b = store.add(msg(), b"b").email_id
    assert store.claim([a], ttl=60) == []
    assert store.claim([b, a], ttl=60) == [a]          # all or none: b stays free
    assert store.claim([b], ttl=60) == []
    store.unclaim([a])
    assert store.claim([a], ttl=60) == []
    store.clock_obj.t += 61                             # a crashed release frees its claim
    assert store.claim([a, b], ttl=60) == []


def test_migration_keeps_existing_mail(tmp_path):
    """A database of schema 1 (the first release) is brought up to date in place."""
    path = tmp_path / "q.db"
    raw = sqlite3.connect(path)
    raw.executescript(db.MIGRATIONS[0])
    raw.execute("PRAGMA user_version = 1")
    raw.execute("INSERT INTO accounts (name, limit_bytes, created_at) VALUES ('demo1', 1000, 0)")
    raw.execute("INSERT INTO messages (email_id, account_id, received_at, sender, recipients, subject,"
                " size_bytes, reasons, file) VALUES ('x', 1, 0, 's', '[]', 'kept', 1, 'spam', 'f')")
    raw.commit()
    raw.close()
    conn = db.connect(path)
    assert db.schema_version(conn) == len(db.MIGRATIONS)
    assert [m.subject for m in Quarantine(conn, tmp_path / "s", 1000).list(ListQuery())[0]] == ["kept"]


def test_migration_11_counts_each_release_in_recipients_and_redacts_recorded_urls(tmp_path, monkeypatch):
    """Releases noted before the quota counted recipients: their message's, if its row is still
    there, else one; new ones note theirs."""
    path = tmp_path / "q.db"
    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS[:10])
    raw = db.connect(path)
    raw.execute("INSERT INTO accounts (name, limit_bytes, created_at) VALUES ('demo1', 1000, 0)")
    raw.execute("INSERT INTO messages (email_id, account_id, received_at, sender, recipients, subject,"
                " size_bytes, reasons, file) VALUES ('kept', 1, 0, 's', '[\"a@x\", \"b@x\", \"c@x\"]', '', 1,"
                " 'spam', 'f')")
    for email_id in ("kept", "gone"):
        raw.execute("INSERT INTO releases (email_id, account_id, at, actor, via) VALUES (?, 1, 100, 'demo1',"
                    " 'cpanel')", (email_id,))
    leaked = {"webhook_url": {"from": "", "to": "https://hooks.slack.com/services/T0/B0/s3cr3t"},
              "notify_period": {"from": 3600, "to": 7200}}
    audit_rows.add(raw, 1, "root", "root", "cli", None, "server settings", [], leaked, "ok")
    audit_rows.add(raw, 2, "root", "root", "cli", None, "whitelist add", [], {"values": ["https://x/y"]}, "ok")
    raw.close()
    monkeypatch.undo()
    conn = db.connect(path)
    assert db.schema_version(conn) == len(db.MIGRATIONS) >= 11
    assert dict(conn.execute("SELECT email_id, recipients FROM releases").fetchall()) == {"kept": 3, "gone": 1}
    assert releases_since(conn, "demo1", 0) == 4 and releases_since(conn, "demo1", 0, actors=["root"]) == 0
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO releases (email_id, account_id, at, actor, via, recipients)"
                     " VALUES ('x', 1, 1, 'demo1', 'cpanel', 0)")
    # the webhook URL an audit entry recorded in full keeps only its scheme and host; nothing else changes
    entries = {e.action: e.detail for e in audit_rows.entries(conn)[0]}
    assert entries == {"server settings": {"webhook_url": {"from": "", "to": "https://hooks.slack.com/…"},
                                           "notify_period": {"from": 3600, "to": 7200}},
                       "whitelist add": {"values": ["https://x/y"]}}


def test_trigram_search_finds_what_a_scan_finds(store, monkeypatch):
    from imunifyemail.store import listing, search
    assert search.available(store.conn)
    subjects = ["Invoice 2023-11", "Re: invoice", "Ünïcode Straße offer", "100% free", "a_b literal", "x", "",
                'quote "marks" here', "MiXeD CaSe"]
    for i, subject in enumerate(subjects):
        store.clock_obj.t += 1
        store.add(msg(subject=subject, sender=f"user{i}@demo{i % 3}.test",
                      rcpts=(f"to{i}@remote{i % 2}.example", "cc@other.example")), b"x")
    queries = [("subject", "invoice"), ("subject", "INVOICE"), ("subject", "100%"), ("subject", "a_b"),
               ("subject", "straße"), ("subject", '"marks"'), ("subject", "in"), ("subject", "zzz"),
               ("sender", "@demo1.test"), ("sender", "user1"), ("recipient", "remote1"),
               ("recipient", 'example","cc'), ("recipient", "cc@other")]

    def ids(field, text):
        items, total = store.list(ListQuery(limit=100, **{field: text}))
        return sorted(m.email_id for m in items), total

    indexed = {q: ids(*q) for q in queries}
    monkeypatch.setattr(search, "available", lambda conn: False)   # the plain scan, as without trigram
    scanned = {q: ids(*q) for q in queries}
    assert indexed == scanned
    assert indexed[("subject", "invoice")][1] == 2 and indexed[("recipient", 'example","cc')][1] == 0
    assert listing.search.phrase("ab") is None   # two characters: the scan answers


@pytest.mark.parametrize("indexed", [False, True])
def test_a_keyset_page_starts_only_after_a_message_in_scope(store, monkeypatch, indexed):
    from imunifyemail.store import listing
    if indexed:   # the trigram index drives the page even for one account's few messages
        monkeypatch.setattr(listing, "SMALL_SCOPE", 0)
    mine = []
    for n in range(3):
        store.clock_obj.t += 10
        mine.append(store.add(msg(account="demo1", subject=f"offer {n}"), b"x").email_id)
    theirs = store.add(msg(account="demo2", subject="offer theirs"), b"x").email_id
    query = {"subject": "offer"}
    page, _ = store.list(ListQuery(account="demo1", after=mine[2], **query))
    assert [m.email_id for m in page] == [mine[1], mine[0]]
    for after in (theirs, "00000000-0000-4000-8000-000000000000"):
        with pytest.raises(NotFound):
            store.list(ListQuery(account="demo1", after=after, **query))
        with pytest.raises(NotFound):
            store.list(ListQuery(account="demo1", after=after))
    page, _ = store.list(ListQuery(after=theirs, **query))   # every account's list: a position like any
    assert [m.email_id for m in page] == mine[::-1]
