"""``_imunifyemail`` never becomes root through a path: links it plants in the storage (its own
directory) and paths it writes into the database (its own file) are refused by every root process —
the daemon's start-up, ``ie-cli`` and the cPanel hook — which neither read, re-own, truncate nor
delete the root file they point at. The attacker's moves are made by a real process of that user;
root's side runs the real daemon, console script and hook script against a temporary root."""
import base64
import json
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from devtools import samples

pytestmark = pytest.mark.service

REPO = Path(__file__).resolve().parent.parent
REMOVE_HOOK = REPO / "hooks/accounts-remove"
TOKEN = "rootsecret7f3a9c"
SECRET = f"{TOKEN} of root, never to be read, re-owned or deleted for _imunifyemail\n".encode()

PLANT_LINK = "import os, sys\ntmp = sys.argv[2] + '.planted'\nos.symlink(sys.argv[1], tmp)\nos.replace(tmp, sys.argv[2])\n"
SET_FILE = ("import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\n"
            "c.execute('UPDATE messages SET file = ? WHERE email_id = ?', (sys.argv[2], sys.argv[3]))\n"
            "c.commit()\n")


def as_daemon_user(daemon_user: str, code: str, *args: str) -> None:
    """Run ``code`` as a process of the daemon's user (no group but its own), as a compromised daemon would."""
    proc = subprocess.run(["setpriv", f"--reuid={daemon_user}", f"--regid={daemon_user}", "--clear-groups",
                           sys.executable, "-I", "-c", code, *args], capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0, proc.stderr


def victim(path: Path, content: bytes = SECRET) -> Path:
    """A file of root's (0600), in directories of root's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(0o600)
    return path


def assert_intact(path: Path, content: bytes = SECRET) -> None:
    st = path.lstat()
    assert stat.S_ISREG(st.st_mode) and (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o600), path
    assert path.read_bytes() == content, path


def storage_of(root) -> Path:
    return root.path / "var/imunifyemail/quarantine/storage"


# -- the daemon's start-up (root) ------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["-shm", "-wal", ""])
def test_start_up_refuses_a_database_file_linked_elsewhere_and_leaves_the_target_alone(root, daemon_user, suffix):
    root.start()   # the storage and the database now exist, the daemon user's
    root.stop()
    target = victim(root.path / "etc/shadow")
    planted = storage_of(root) / f"quarantine.db{suffix}"
    as_daemon_user(daemon_user, PLANT_LINK, str(target), str(planted))
    with pytest.raises(RuntimeError) as failed:
        root.start()
    assert_intact(target)
    assert f"{planted}: is a symbolic link: refused" in str(failed.value)
    assert os.readlink(planted) == str(target)   # refused, not "repaired" either


def test_start_up_re_owns_the_database_files_root_made_and_only_those(root, daemon_user):
    """What the owner fix-up is for: an ie-cli run as root before the daemon's first start."""
    root.cli("accounts", "edit", "-a", "demo1", "--limit", "1000")   # makes the database, as root
    database = storage_of(root) / "quarantine.db"
    assert database.stat().st_uid == 0
    root.start()
    uid = pwd.getpwnam(daemon_user).pw_uid
    assert database.stat().st_uid == uid and storage_of(root).stat().st_uid == uid


# -- root reading and deleting held mail: ie-cli and the Accounts::Remove hook ------------------------------

def _link_each_file(root, daemon_user, held):
    target = victim(root.path / "etc/shadow")
    for m in held:
        as_daemon_user(daemon_user, PLANT_LINK, str(target), str(storage_of(root) / m.file))
    return [target]


def _dotdot_rows(root, daemon_user, held):
    target = victim(root.path / "etc/shadow")
    for m in held:
        as_daemon_user(daemon_user, SET_FILE, str(storage_of(root) / "quarantine.db"),
                       os.path.relpath(target, storage_of(root)), m.email_id)
    return [target]


def _absolute_rows(root, daemon_user, held):
    target = victim(root.path / "etc/shadow")
    for m in held:
        as_daemon_user(daemon_user, SET_FILE, str(storage_of(root) / "quarantine.db"), str(target), m.email_id)
    return [target]


def _link_account_dir(root, daemon_user, held):
    """storage/<account id> made a link to a directory of root's laid out like it."""
    elsewhere = root.path / "etc/rootdir"
    targets = [victim(elsewhere / m.file.split("/", 1)[1]) for m in held]
    account_dir = str(storage_of(root) / held[0].file.split("/")[0])
    as_daemon_user(daemon_user, "import os, sys\nos.rename(sys.argv[2], sys.argv[2] + '.moved')\n"
                   "os.symlink(sys.argv[1], sys.argv[2])\n", str(elsewhere), account_dir)
    return targets


def _link_shard_dirs(root, daemon_user, held):
    elsewhere = root.path / "etc/rootdir"
    targets = [victim(elsewhere / m.file.rsplit("/", 1)[1]) for m in held]
    for shard in {m.file.rsplit("/", 1)[0] for m in held}:
        path = str(storage_of(root) / shard)
        as_daemon_user(daemon_user, "import os, shutil, sys\nshutil.rmtree(sys.argv[2])\n"
                       "os.symlink(sys.argv[1], sys.argv[2])\n", str(elsewhere), path)
    return targets


TAMPERING = {"file link": _link_each_file, "row ../": _dotdot_rows, "row absolute": _absolute_rows,
             "account dir link": _link_account_dir, "shard dir link": _link_shard_dirs}


def _removal(user: str) -> str:
    return json.dumps({"context": {"category": "Whostmgr", "event": "Accounts::Remove", "stage": "post"},
                       "data": {"user": user}})


@pytest.mark.parametrize("tampering", sorted(TAMPERING))
def test_root_neither_reads_nor_deletes_what_the_daemon_user_points_a_message_at(root, daemon_user, tampering):
    root.start()
    for n in range(2):
        assert root.send(samples.gtube(subject=f"held {n}")).verdict == "hold"
    held = root.held("demo1")
    assert len(held) == 2
    targets = TAMPERING[tampering](root, daemon_user, held)
    first = held[0].email_id

    shown = root.cli("emails", "show", "--id", first, check=False)
    assert TOKEN not in shown.stdout and base64.b64encode(SECRET).decode()[:16] not in shown.stdout
    assert shown.returncode == 1 and "refused" in shown.stderr, shown
    released = root.cli("emails", "release", "--ids", first, check=False)
    assert not [m for m in root.reinjected() if TOKEN.encode() in m.message]
    assert released.returncode == 1 and "refused" in released.stderr, released
    root.cli("emails", "remove", "--ids", first)       # the row goes; what it pointed at stays
    for target in targets:
        assert_intact(target)
    root.cli("accounts", "remove", "-a", "demo1")      # the purge of the account's quarantine
    for target in targets:
        assert_intact(target)
    assert [m.email_id for m in root.held("demo1")] == []

    # and the hook, once cPanel removed the account (its map and user file say so)
    proc = _cpanel_removes_demo1(root)
    assert proc.returncode == 0 and proc.stdout.startswith("1 "), proc.stdout + proc.stderr
    for target in targets:
        assert_intact(target)


def _cpanel_removes_demo1(root) -> subprocess.CompletedProcess:
    """cPanel removes demo1 (its map and user file say so), then runs the Accounts::Remove hook."""
    root.stop()
    root.write_accounts({"demo2": ["demo2.test"]})
    (root.path / "var/cpanel/users/demo1").unlink()
    env = dict(os.environ, IMUNIFYEMAIL_ROOT=str(root.path))
    return subprocess.run([sys.executable, str(REMOVE_HOOK)], input=_removal("demo1"), env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_hook_removing_an_account_whose_files_were_linked_elsewhere_deletes_nothing_there(root, daemon_user):
    """Straight to the hook: the purge and the removal of the account's directories, with its
    account directory a link to a directory of root's."""
    root.start()
    assert root.send(samples.gtube()).verdict == "hold"
    held = root.held("demo1")
    targets = _link_account_dir(root, daemon_user, held)
    proc = _cpanel_removes_demo1(root)
    assert proc.returncode == 0 and proc.stdout.startswith("1 ") and "1 email(s)" in proc.stdout, proc
    for target in targets:
        assert_intact(target)
    assert (root.path / "etc/rootdir").is_dir() and root.held("demo1") == []


# -- root opening the database the daemon user owns -----------------------------------------------------

def test_a_root_cli_does_not_write_through_a_database_link(root, daemon_user):
    root.start()
    root.stop()
    storage = storage_of(root)
    empty = victim(root.path / "etc/empty-root-file", b"")   # SQLite would make it a database
    as_daemon_user(daemon_user, "import os, sys\nfor s in ('-wal', '-shm'):\n"
                   "    try: os.unlink(sys.argv[1] + s)\n    except FileNotFoundError: pass\n",
                   str(storage / "quarantine.db"))
    as_daemon_user(daemon_user, PLANT_LINK, str(empty), str(storage / "quarantine.db"))
    proc = root.cli("accounts", "edit", "-a", "demo1", "--limit", "1000", check=False)
    assert proc.returncode == 1, proc
    assert_intact(empty, b"")
    assert not Path(str(empty) + "-wal").exists() and not Path(str(empty) + "-shm").exists()

    nowhere = root.path / "etc/created-by-root"   # in a directory of root's: not made either
    as_daemon_user(daemon_user, PLANT_LINK, str(nowhere), str(storage / "quarantine.db"))
    proc = root.cli("accounts", "edit", "-a", "demo1", "--limit", "1000", check=False)
    assert proc.returncode == 1 and not nowhere.exists(), proc
