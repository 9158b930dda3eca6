"""A backup of the database before every migration, on real SQLite files (and a real full tmpfs)."""
import calendar
import os
import pwd
import re
import sqlite3
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from imunifyemail.store import backups, db
from imunifyemail.store.confined import acting_as_owner_of

OLD = 10   # the schema the databases below are made at
NAME = re.compile(r"q\.db\.v10-(\d{8}-\d{6})\.bak")


def at_old_schema(path: Path, monkeypatch, rows: int = 3, payload: int = 10) -> None:
    """A database at schema OLD with ``rows`` accounts (each name ``payload`` bytes long)."""
    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS[:OLD])
    conn = db.connect(path)
    for n in range(rows):
        conn.execute("INSERT INTO accounts (name, limit_bytes, created_at) VALUES (?, 1, 0)",
                     (f"{n:04d}".ljust(payload, "x"),))
    conn.close()
    monkeypatch.undo()


def files(directory: Path):
    return sorted(p.name for p in directory.iterdir())


def version_of(path: Path) -> int:
    conn = sqlite3.connect(path)   # not read-only: one would leave the -wal and -shm files behind
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def test_an_older_database_is_backed_up_with_its_wal_before_it_is_migrated(tmp_path, monkeypatch, daemon_user):
    path = tmp_path / "q.db"
    at_old_schema(path, monkeypatch)
    owner = pwd.getpwnam(daemon_user)
    os.chown(path, owner.pw_uid, owner.pw_gid)
    path.chmod(0o640)
    # A row committed to the WAL only (auto-checkpoints off, the connection left open)
    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS[:OLD])
    writer = db.no_auto_checkpoint(db.connect(path))
    writer.execute("INSERT INTO accounts (name, limit_bytes, created_at) VALUES ('in-the-wal', 1, 0)")
    monkeypatch.undo()
    assert (tmp_path / "q.db-wal").stat().st_size > 0
    before = int(time.time())
    conn = db.connect(path)
    assert db.schema_version(conn) == len(db.MIGRATIONS) > OLD
    [name] = [n for n in files(tmp_path) if n.endswith(".bak")]
    assert before <= calendar.timegm(time.strptime(NAME.fullmatch(name).group(1), "%Y%m%d-%H%M%S")) <= time.time()
    backup = tmp_path / name
    assert version_of(backup) == OLD
    old = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    assert [r[0] for r in old.execute("SELECT name FROM accounts ORDER BY id")] == [
        "0000xxxxxx", "0001xxxxxx", "0002xxxxxx", "in-the-wal"]
    assert old.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert old.execute("PRAGMA journal_mode").fetchone()[0] == "delete"   # one file, nothing beside it
    assert "recipients" not in [r[1] for r in old.execute("PRAGMA table_info(releases)")]   # schema 10's table
    old.close()
    st, bst = path.stat(), backup.stat()
    assert (bst.st_uid, bst.st_gid, bst.st_mode & 0o7777) == (st.st_uid, st.st_gid, 0o640)
    assert not [n for n in files(tmp_path) if n.endswith((".tmp", "-journal"))]
    conn.close()
    writer.close()
    db.connect(path).close()   # up to date now: no second backup
    assert [n for n in files(tmp_path) if ".bak" in n] == [name]


def test_a_new_database_is_not_backed_up(tmp_path):
    db.connect(tmp_path / "q.db").close()
    db.connect(tmp_path / "q.db").close()
    assert files(tmp_path) == ["q.db"]


@contextmanager
def directory_of(user: str):
    """A directory of ``user`` that user can reach (pytest's tmp_path is root's alone)."""
    base = Path(tempfile.mkdtemp(prefix="ie-backup-", dir="/tmp"))
    base.chmod(0o755)
    directory = base / "storage"
    directory.mkdir()
    owner = pwd.getpwnam(user)
    os.chown(directory, owner.pw_uid, owner.pw_gid)
    try:
        yield directory
    finally:
        directory.chmod(0o700)
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_no_backup_in_a_read_only_directory_means_no_migration(monkeypatch, daemon_user):
    with directory_of(daemon_user) as storage:
        path = storage / "q.db"
        with acting_as_owner_of(storage):
            at_old_schema(path, monkeypatch)
            keep_open = sqlite3.connect(path)   # its -wal and -shm stay: the database opens as before
            keep_open.execute("SELECT 1 FROM accounts").fetchall()
        storage.chmod(0o500)
        with acting_as_owner_of(storage):
            with pytest.raises(db.DatabaseError) as refused:
                db.connect(path)
        message = str(refused.value)
        assert f"not migrated from schema {OLD} to {len(db.MIGRATIONS)}" in message
        assert "Permission denied" in message and str(storage) in message
        assert version_of(path) == OLD
        assert not [n for n in files(storage) if ".bak" in n]
        storage.chmod(0o700)
        with acting_as_owner_of(storage):   # once it can be made, the migration runs
            conn = db.connect(path)
            assert db.schema_version(conn) == len(db.MIGRATIONS)
            conn.close()
        keep_open.close()
        assert len([n for n in files(storage) if n.endswith(".bak")]) == 1


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_no_room_for_the_backup_means_no_migration_and_says_so(tmp_path, monkeypatch):
    storage = tmp_path / "storage"
    storage.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(storage)], check=True)
    try:
        path = storage / "q.db"
        at_old_schema(path, monkeypatch, rows=1000, payload=1000)   # ~6 MB (the names and their index)
        size = path.stat().st_size
        filler = storage / "filler"
        with open(filler, "wb") as fh:   # leaves room for the migration's WAL, not for a copy
            fh.write(b"\0" * (free_bytes(storage) - size // 2))
        with pytest.raises(db.DatabaseError) as refused:
            db.connect(path)
        message = str(refused.value)
        assert f"not migrated from schema {OLD}" in message and "no room on the filesystem" in message
        assert version_of(path) == OLD
        assert files(storage) == ["filler", "q.db"]   # no partial copy left behind
        filler.unlink()
        conn = db.connect(path)
        assert db.schema_version(conn) == len(db.MIGRATIONS)
        conn.close()
        [backup] = [storage / n for n in files(storage) if n.endswith(".bak")]
        assert version_of(backup) == OLD
    finally:
        subprocess.run(["umount", "-l", str(storage)], check=False)


def test_a_migration_that_fails_keeps_its_version_and_drops_its_backup(tmp_path, monkeypatch):
    path = tmp_path / "q.db"
    at_old_schema(path, monkeypatch)

    def broken(conn):
        conn.execute("CREATE TABLE half_done (x)")
        raise sqlite3.OperationalError("step 11 went wrong")

    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS[:OLD] + [broken])
    with pytest.raises(sqlite3.OperationalError, match="step 11"):
        db.connect(path)
    assert version_of(path) == OLD
    assert not [n for n in files(tmp_path) if ".bak" in n]


def test_the_newest_backups_are_kept(tmp_path, monkeypatch):
    path = tmp_path / "q.db"
    at_old_schema(path, monkeypatch)
    older = ["q.db.v7-20240101-000000.bak", "q.db.v8-20240301-000000.bak", "q.db.v9-20240601-000000.bak",
             "q.db.v9-20240601-000000.bak.tmp"]   # the last one: a crash mid-copy
    others = ["other.db.v1-20200101-000000.bak", "q.db.v1-notatime.bak", "q.db.bak"]
    for name in older + others:
        (tmp_path / name).write_bytes(b"x")
    db.connect(path).close()
    [new] = [n for n in files(tmp_path) if NAME.fullmatch(n)]
    kept = [new, "q.db.v9-20240601-000000.bak", "q.db.v8-20240301-000000.bak"]   # newest first
    assert backups.KEEP == 3 and [p.name for p in backups.existing(path)] == kept
    assert files(tmp_path) == sorted(["q.db"] + kept + others)   # v7 and the partial copy gone

def test_the_daemon_refuses_to_start_without_a_backup_and_starts_once_there_is_room(root, monkeypatch, daemon_user):
    storage = root.path / "var/imunifyemail/quarantine/storage"
    storage.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(storage)], check=True)
    try:
        path = storage / "quarantine.db"
        at_old_schema(path, monkeypatch, rows=1000, payload=1000)   # root's: the daemon takes it over
        filler = storage / "filler"
        with open(filler, "wb") as fh:
            fh.write(b"\0" * (free_bytes(storage) - path.stat().st_size // 2))
        with pytest.raises(RuntimeError, match="daemon exited 1"):
            root.start()
        assert f"not migrated from schema {OLD} to {len(db.MIGRATIONS)}" in root.log.read_text()
        assert "no room on the filesystem" in root.log.read_text()
        assert version_of(path) == OLD and not [n for n in files(storage) if ".bak" in n]
        filler.unlink()
        root.start()
        [backup] = [storage / n for n in files(storage) if n.endswith(".bak")]
        assert version_of(backup) == OLD and version_of(path) == len(db.MIGRATIONS)
        assert backup.stat().st_uid == path.stat().st_uid == pwd.getpwnam(daemon_user).pw_uid
        assert backup.stat().st_mode & 0o7777 == path.stat().st_mode & 0o7777
    finally:
        root.close()
        subprocess.run(["umount", "-l", str(storage)], check=False)
