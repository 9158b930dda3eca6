"""Stored files reached by descriptor (store/confined.py), on real files: a message's path is taken only in
the form the store writes, and nothing below the storage directory is reached through a link, a second
hard link or a FIFO. (tests/test_root_paths.py plays the same against root's real processes.)"""
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from imunifyemail.store import db
from imunifyemail.store.confined import Refused, StorageFiles, message_path, prepare_directory, split_stored
from imunifyemail.store.quarantine import NewMessage, Quarantine

EMAIL = "ab0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3"


@pytest.fixture
def store(tmp_path):
    conn = db.connect(tmp_path / "q.db")
    yield Quarantine(conn, tmp_path / "storage", default_limit_bytes=10 ** 6)
    conn.close()


def held(store, account="demo1"):
    return store.add(NewMessage(account=account, sender="a@demo1.test", recipients=("r@x.example",), subject="s",
                                reasons=("spam",)), b"Subject: s\r\n\r\nbody\r\n")


def test_the_form_the_store_writes_is_taken():
    assert message_path(7, EMAIL) == f"7/ab/{EMAIL}.eml"
    assert split_stored(f"7/ab/{EMAIL}.eml", EMAIL) == ("7", "ab", f"{EMAIL}.eml")
    assert split_stored(f"7/ab/.tmp-{EMAIL}") == ("7", "ab", f".tmp-{EMAIL}")   # a crashed write's leftover


@pytest.mark.parametrize("rel", [
    "", "/etc/shadow", "../../../etc/shadow", f"7/ab/../../../{EMAIL}.eml", f"/7/ab/{EMAIL}.eml",
    f"7/ab/{EMAIL}.eml/", f"7//ab/{EMAIL}.eml", f"07/ab/{EMAIL}.eml", f"0/ab/{EMAIL}.eml", f"7/cd/{EMAIL}.eml",
    f"7/AB/{EMAIL.upper()}.eml", f"7/ab/{EMAIL}", f"7/ab/.tmp-{EMAIL}.eml", f"7/ab/{EMAIL}.eml\n", "7/ab/x.eml",
    f"./7/ab/{EMAIL}.eml", f"7/ab/sub/{EMAIL}.eml",
])
def test_any_other_path_is_refused_naming_it(rel):
    with pytest.raises(Refused) as refused:
        split_stored(rel)
    assert repr(rel) in refused.value.strerror and "refused" in refused.value.strerror


def test_a_path_of_another_message_is_refused_for_this_one():
    with pytest.raises(Refused, match="not the quarantine file of email"):
        split_stored(f"7/ab/{EMAIL}.eml", str(uuid.UUID(int=1)))


def test_a_second_hard_link_or_a_fifo_in_a_files_place_is_not_read(store, tmp_path):
    m = held(store)
    path = store.storage / m.file
    outside = tmp_path / "elsewhere"
    outside.write_bytes(b"not the quarantine's")
    path.unlink()
    os.link(outside, path)
    with pytest.raises(Refused, match="has 2 hard links"):
        store.read(m)
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(Refused, match="is not a regular file"):   # and no hang on the FIFO
        store.read(m)


def test_reconcile_does_not_walk_into_a_linked_directory(store, tmp_path):
    kept = held(store)
    elsewhere = tmp_path / "elsewhere" / "ab"
    elsewhere.mkdir(parents=True)
    (elsewhere / f"{EMAIL}.eml").write_bytes(b"someone else's")
    (elsewhere / ".tmp-x").write_bytes(b"someone else's")
    os.symlink(elsewhere.parent, store.storage / "99")
    assert store.reconcile() == (0, 0)
    assert sorted(p.name for p in elsewhere.iterdir()) == [".tmp-x", f"{EMAIL}.eml"]
    assert store.read(kept) == b"Subject: s\r\n\r\nbody\r\n"


def test_removing_an_accounts_directories_keeps_a_link_and_what_it_points_at(store, tmp_path):
    m = held(store)
    store.remove([m.email_id])
    account_dir = store.storage / m.file.split("/")[0]
    elsewhere = tmp_path / "elsewhere" / "ab"
    elsewhere.mkdir(parents=True)
    os.rename(account_dir / m.file.split("/")[1], tmp_path / "moved")
    os.symlink(elsewhere, account_dir / m.file.split("/")[1])   # a shard directory made a link
    store.remove_account_dirs(int(m.file.split("/")[0]))
    assert elsewhere.is_dir() and account_dir.is_dir()          # the link is not a directory: kept, named
    os.unlink(account_dir / m.file.split("/")[1])
    store.remove_account_dirs(int(m.file.split("/")[0]))
    assert not account_dir.exists()


def test_writing_makes_the_storage_and_refuses_a_linked_account_directory(tmp_path):
    storage = tmp_path / "made" / "storage"
    with StorageFiles(storage, create=True) as files:
        rel = files.write(3, EMAIL, b"x")
    assert (storage / rel).read_bytes() == b"x" and oct((storage / rel).stat().st_mode & 0o777) == "0o600"
    os.symlink(tmp_path, storage / "4")
    with StorageFiles(storage) as files, pytest.raises(Refused, match="storage/4: is a symbolic link: refused"):
        files.write(4, EMAIL, b"x")
    assert not (tmp_path / "ab").exists()


def test_a_directory_is_prepared_by_descriptor_and_a_link_in_its_place_refused(tmp_path):
    made = tmp_path / "a" / "dir"
    prepare_directory(made, 0o2750, os.getuid(), os.getgid())
    assert oct(made.stat().st_mode & 0o7777) == "0o2750"
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    os.symlink(target, tmp_path / "link")
    with pytest.raises(Refused, match="link: is a symbolic link: refused"):
        prepare_directory(tmp_path / "link", 0o755, os.getuid(), os.getgid())
    assert oct(target.stat().st_mode & 0o777) == "0o700"


RECONCILE_AS_DAEMON = """
import sys
from pathlib import Path
from imunifyemail.store import db
from imunifyemail.store.quarantine import Quarantine
base = Path(sys.argv[1])
conn = db.connect(base / "q.db")
print(*Quarantine(conn, base / "storage", default_limit_bytes=10 ** 6).reconcile())
"""


def test_a_directory_the_daemon_may_not_read_keeps_its_messages_and_the_start_goes_on(daemon_user, tmp_path_factory):
    """Made by hand as root, an account's directory hides its files from the daemon's reconcile at start:
    their rows stay (the mail is not lost nor forgotten) and the start goes on (mail is not held up)."""
    base = Path(tempfile.mkdtemp(prefix="ie-unreadable-", dir="/tmp"))
    try:
        base.chmod(0o755)
        conn = db.connect(base / "q.db")
        store = Quarantine(conn, base / "storage", default_limit_bytes=10 ** 6)
        hidden, seen = held(store, "demo1"), held(store, "demo2")
        lost = held(store, "demo2")
        (store.storage / lost.file).unlink()   # a row whose file is really gone is still removed
        conn.close()
        user = pwd.getpwnam(daemon_user)
        for path in [base, *base.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        account_dir = store.storage / hidden.file.split("/")[0]
        os.chown(account_dir, 0, 0)
        account_dir.chmod(0o700)
        proc = subprocess.run(["setpriv", f"--reuid={daemon_user}", f"--regid={daemon_user}", "--clear-groups",
                               sys.executable, "-c", RECONCILE_AS_DAEMON, str(base)], capture_output=True, text=True,
                              cwd="/", env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["0", "1"]   # only the row without a file
        assert f"{account_dir} cannot be read by this process: the messages in it are kept" in proc.stderr
        conn = db.connect(base / "q.db")
        store = Quarantine(conn, base / "storage", default_limit_bytes=10 ** 6)
        assert sorted(r[0] for r in conn.execute("SELECT file FROM messages")) == sorted([hidden.file, seen.file])
        assert store.read(hidden) == b"Subject: s\r\n\r\nbody\r\n"   # root reads it: it is all there
        conn.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)
