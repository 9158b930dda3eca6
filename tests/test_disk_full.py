"""A full quarantine filesystem (a real 3 MB tmpfs): held mail is deferred early, deleting and purging
keep working even at 100%, and the daemon takes mail again — and asks Exim to retry — by itself."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from imunifyemail.config import ConfigError, validate
from imunifyemail.core.headroom import Floor, Space, admits, below_floor, floor_for

from devtools import samples
from devtools import testroot

pytestmark = pytest.mark.service

KIB = 1024
FLOOR = 600 * KIB
CONFIG = {"quarantine": {"min_free_bytes": FLOOR, "min_free_inodes": 20, "reserve_bytes": 256 * KIB}}
MESSAGE_BYTES = 100 * KIB


@pytest.fixture
def small_root(make_root, rspamd):
    r = make_root(rspamd.url, **CONFIG)
    storage = r.path / "var/imunifyemail/quarantine/storage"
    storage.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,nr_inodes=400,mode=0700", "tmpfs", str(storage)],
                   check=True)
    r.storage = storage
    try:
        r.cli("accounts", "edit", "-a", "demo1", "--state", "block")   # every message of demo1 is held
        r.start()
        yield r
    finally:
        r.close()   # then make_root removes it
        subprocess.run(["umount", "-l", str(storage)], check=False)


def message(n: int, token: str) -> bytes:
    return samples.ham(subject=f"{token} {n}", body=("x" * 70 + "\n") * (MESSAGE_BYTES // 71))


def status(r: testroot.TestRoot) -> dict:
    return json.loads(r.cli_status("--json"))


def retried_ids(r: testroot.TestRoot) -> set:
    return {exim_id for retry in r.retries() for exim_id in retry.ids}


def send_until_deferred(r: testroot.TestRoot, token: str, deferrals: int = 3, limit: int = 60):
    """Held mail until the floor is reached; returns (email ids stored, messages deferred)."""
    stored, deferred = [], []
    for n in range(limit):
        sent = r.send(message(n, token))
        if sent.verdict == "hold":
            stored.append(sent.email_id)
        else:
            assert sent.verdict == "defer", sent   # Exim keeps it
            deferred.append(sent)
            if len(deferred) >= deferrals:
                break
    return stored, deferred


def held_ids(r: testroot.TestRoot, token: str) -> list:
    return [m.email_id for m in r.held(subject=token)]


def fill_to_the_brim(path: Path, leave: int = 0) -> Path:
    """A file nobody of ours owns, written until the filesystem says ENOSPC (or ``leave`` bytes are left)."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while leave == 0 or free_bytes(path) - 4096 >= leave:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    assert free_bytes(path) <= leave
    return filler


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_floor_defers_held_mail_purge_frees_it_and_deferred_mail_is_retried(small_root, token):
    r = small_root
    stored, deferred = send_until_deferred(r, token)
    assert stored and len(deferred) == 3
    # Never "hold" without a stored copy, never a stored copy without "hold".
    assert sorted(held_ids(r, token)) == sorted(stored)
    for email_id in stored:
        assert r.cli("emails", "show", "--id", email_id, "--json").returncode == 0
    st = status(r)["disk"]
    assert st["floor_bytes"] == FLOOR and st["free_bytes"] - MESSAGE_BYTES < FLOOR
    # The floor warning is logged once, not once per deferred message.
    assert r.log.read_text().count("mail that would be held is deferred") == 1

    purge = r.cli("accounts", "remove", "-a", "demo1")
    assert purge.stdout.strip() == "OK"
    assert f"Removed {len(stored)} email(s)" in purge.stderr and "freed" in purge.stderr
    assert held_ids(r, token) == []
    assert status(r)["disk"]["below_floor"] is False

    # Accepted again without a restart; the daemon asks Exim to retry what it deferred.
    assert r.send(message(1000, token)).verdict == "hold"
    wanted = {sent.exim_id for sent in deferred}
    r.wait_for(lambda: retried_ids(r) >= wanted, "Exim asked to retry the deferred messages", 30)
    # Exim's retry asks again: now they are held. Count: stored + still deferred = sent.
    assert [r.ask_again(sent)["verdict"] for sent in deferred] == ["hold"] * 3
    subjects = sorted(m.subject for m in r.held(subject=token))
    assert subjects == sorted([f"{token} {n}" for n in range(len(stored), len(stored) + 3)] + [f"{token} 1000"])


def test_purge_and_delete_work_on_a_filesystem_filled_to_100_percent_by_someone_else(small_root, token):
    r = small_root
    ids = []
    for n in range(5):
        sent = r.send(message(n, token))
        assert sent.verdict == "hold"
        ids.append(sent.email_id)
    filler = fill_to_the_brim(r.storage)
    try:
        assert status(r)["disk"]["below_floor"] is True
        assert "FLOOR REACHED" in r.cli_status()
        assert r.cli("emails", "remove", "--ids", ids[0], "-a", "root").stdout.strip() == "OK"
        purge = r.cli("accounts", "remove", "-a", "demo1")
        assert purge.stdout.strip() == "OK" and "Removed 4 email(s)" in purge.stderr
        assert held_ids(r, token) == []
        assert not any(p.suffix == ".eml" for p in r.storage.rglob("*"))
        # Still below the floor (the filler stays): held mail is deferred, not lost.
        assert os.stat(r.storage / ".reserve").st_blocks * 512 == CONFIG["quarantine"]["reserve_bytes"]
        assert r.send(message(10, token)).verdict == "defer"
    finally:
        filler.unlink()
    assert r.send(message(11, token)).verdict == "hold"
    assert [m.subject for m in r.held(subject=token)] == [f"{token} 11"]


def test_passed_mail_is_not_affected_by_the_floor(small_root, token):
    r = small_root
    filler = fill_to_the_brim(r.storage, leave=FLOOR // 2)
    try:
        assert status(r)["disk"]["below_floor"] is True
        assert r.send(message(0, token)).verdict == "defer"   # held mail waits in Exim's queue
        ham = r.send(samples.ham(sender="carol@demo2.test", subject=f"ham {token}"), sender="carol@demo2.test")
        assert ham.verdict == "pass"
    finally:
        filler.unlink()


# -- the rule and its settings -------------------------------------------------------------

def test_floor_defaults_to_the_larger_of_one_percent_and_64_mib():
    small = Space(total_bytes=1 << 30, free_bytes=0, total_inodes=10_000, free_inodes=0)
    big = Space(total_bytes=100 << 30, free_bytes=0, total_inodes=10_000_000, free_inodes=0)
    assert floor_for(small, None, None) == Floor(64 << 20, 1000)
    assert floor_for(big, None, None) == Floor(1 << 30, 100_000)
    assert floor_for(big, 5, 7) == Floor(5, 7)
    assert floor_for(Space(1 << 30, 0, 0, 0), None, None).inodes == 0   # no inode limit to respect


def test_admits_counts_what_quota_eviction_frees():
    space = Space(total_bytes=10_000, free_bytes=1_000, total_inodes=0, free_inodes=0)
    floor = Floor(800, 0)
    assert admits(space, floor, 200) and not admits(space, floor, 201)
    assert admits(space, floor, 500, freed_bytes=400)
    assert below_floor(Space(10_000, 799, 0, 0), floor) and not below_floor(space, floor)
    assert not admits(Space(10_000, 10_000, 100, 10), Floor(0, 10), 1)   # the last inodes are the floor's


def test_reserve_must_be_smaller_than_the_floor():
    with pytest.raises(ConfigError, match="quarantine.reserve_bytes"):
        validate({"quarantine": {"min_free_bytes": 1000, "reserve_bytes": 1000}}, "c.yaml")
    with pytest.raises(ConfigError, match="quarantine.reserve_bytes"):
        validate({"quarantine": {"reserve_bytes": 64 << 20}}, "c.yaml")
    assert validate({"quarantine": {"min_free_bytes": 1000, "reserve_bytes": 0}}, "c.yaml")
    with pytest.raises(ConfigError, match="quarantine.min_free_bytes"):
        validate({"quarantine": {"min_free_bytes": -1}}, "c.yaml")
