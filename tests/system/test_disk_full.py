"""The quarantine's filesystem (a real 4 MB tmpfs) filled by one account's held mail, on real Exim:
every message is stored or kept in Exim's queue, a purge makes room, and the daemon has Exim retry
the deferred ones at once (``exim -M`` as the Exim user) — they end up held, none lost or doubled."""
import collections
import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from devtools import samples
from devtools.stack import MailStack

from .conftest import drop_stack

SENT = 24
CONFIG = {"quarantine": {"min_free_bytes": 600 * 1024, "min_free_inodes": 20, "reserve_bytes": 256 * 1024}}


@pytest.fixture
def small_stack(daemon_user):
    base = Path(tempfile.mkdtemp(prefix="ie-diskfull-", dir="/tmp"))
    base.chmod(0o755)
    stack = MailStack(base, net=True, config_extra=CONFIG)
    stack.build()
    storage = stack.root / "var/imunifyemail/quarantine/storage"
    storage.mkdir(parents=True, exist_ok=True)
    # Mounted before the namespace is made: the daemon, Exim and this test see the same tmpfs.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=400,mode=0700", "tmpfs", str(storage)],
                   check=True)
    try:
        stack.start()
        yield stack
    finally:
        try:
            drop_stack(stack)
        finally:
            subprocess.run(["umount", "-l", str(storage)], check=False)


def queued_subjects(stack: MailStack, token: str) -> list:
    out = []
    for hfile in stack.layout.spool.glob("input/*/*-H"):
        try:
            out += [line.split("Subject: ", 1)[1].strip() for line in hfile.read_text(errors="replace").splitlines()
                    if "Subject: " in line and token in line]
        except FileNotFoundError:
            continue
    return out


def held_subjects(stack: MailStack, token: str) -> list:
    out = stack.ie_cli("emails", "list", "-a", "root", "--subject", token, "--limit", "1000", "--json")
    return [item["subject"] for item in json.loads(out.stdout)["items"]]


def test_full_quarantine_defers_then_retries_and_holds_everything(small_stack, token):
    stack = small_stack
    stack.ie_cli("accounts", "edit", "-a", "demo1", "--state", "block")
    body = ("x" * 70 + "\n") * 1400
    for n in range(SENT):
        raw = samples.ham(sender="demo1@demo1.test", subject=f"Full {token} {n:02d}", body=body)
        stack.sendmail(raw, "-f", "demo1@demo1.test", "--", f"r{n}@remote.example", user="demo1")

    def accounted():
        return len(held_subjects(stack, token)) + len(queued_subjects(stack, token)) == SENT
    stack.wait_for(accounted, "every message held or queued")
    first_held = held_subjects(stack, token)
    deferred = queued_subjects(stack, token)
    assert first_held and deferred, (len(first_held), len(deferred))
    assert "no room in the quarantine" in stack.exim_log() and "bounce" not in stack.exim_log()

    purge = stack.ie_cli("accounts", "remove", "-a", "demo1")
    assert purge.stdout.decode().strip() == "OK"
    # No queue run by the test: the daemon itself asks Exim to deliver the deferred messages now.
    stack.wait_for(lambda: sorted(held_subjects(stack, token)) == sorted(deferred)
                   and not queued_subjects(stack, token), "the deferred messages held after the purge")
    counts = collections.Counter(held_subjects(stack, token))
    assert max(counts.values()) == 1
    assert len(first_held) + len(counts) == SENT   # purged + held now = sent: none lost, none doubled
    assert "asked Exim to deliver" in stack.daemon_log()
