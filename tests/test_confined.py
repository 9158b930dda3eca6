"""Stored files reached by descriptor (store/confined.py), on real files: a message's path is taken only in
the form the store writes, and nothing below the storage directory is reached through a link, a second
hard link or a FIFO. (tests/test_root_paths.py plays the same against root's real processes.)"""
import os
import uuid

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
