"""How imunifyemail-web runs: workers never root, a per-install secret (never a default), sockets with the
right modes, the development listener on loopback only, the disk warning on the pages."""
import grp
import os
import pwd
import signal
import stat
import subprocess
import sys

import pytest

from devtools.rspamd import free_port
from devtools import testroot
from devtools.waiting import eventually
from devtools.web import WEB, WebServer, unix_request

from .conftest import EXIM_USER, Page


def children(master: int) -> dict:
    """pid -> /proc status of the processes whose parent is ``master``."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = open(f"/proc/{pid}/status").read()
        except OSError:   # gone meanwhile
            continue
        if f"PPid:\t{master}\n" in status:
            out[int(pid)] = status
    return out


def uids_of(workers: dict) -> dict:
    return {pid: set(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:])
            for pid, status in workers.items()}


def dropped(master: int, uids: set) -> dict:
    """The workers' uids once each of them runs as ``uids`` only ({} while one is still root)."""
    found = uids_of(children(master))
    return found if found and all(u == uids for u in found.values()) else {}


def test_workers_run_as_the_daemon_user_and_the_sockets_say_who_may_connect(site):
    daemon_uid = {str(pwd.getpwnam("_imunifyemail").pw_uid)}
    # /healthz answered once one worker serves; another may still be between fork and gunicorn's
    # drop of root (post_fork runs as root) on a loaded machine: wait for it, a bounded while.
    uids = eventually(lambda: dropped(site.web.proc.pid, daemon_uid), "every worker to have dropped root", 15,
                      interval=0.1, describe=lambda: str(uids_of(children(site.web.proc.pid))))
    assert uids and all(u == daemon_uid for u in uids.values()), uids
    admin, user = os.stat(site.web.admin_socket), os.stat(site.web.user_socket)
    assert (admin.st_uid, stat.S_IMODE(admin.st_mode)) == (0, 0o600)
    assert stat.S_IMODE(user.st_mode) == 0o666


def groups_of(status: str) -> set:
    return set(next(line for line in status.splitlines() if line.startswith("Groups:")).split()[1:])


def test_workers_keep_no_group_of_exims_and_still_find_every_cpanel_account(site):
    """Exim's group reads its whole spool (and /etc/userdomains): the daemon keeps it, the pages need
    none of it. An account cPanel has but the quarantine does not yet is still found (by its
    /var/cpanel/users file), an unknown one is not."""
    daemon = pwd.getpwnam("_imunifyemail")
    exim_groups = {str(grp.getgrnam("mail").gr_gid), str(pwd.getpwnam(EXIM_USER).pw_gid)}
    # as above: a worker may still be between fork and the drop
    eventually(lambda: dropped(site.web.proc.pid, {str(daemon.pw_uid)}), "every worker to have dropped root", 15,
               interval=0.1, describe=lambda: str(uids_of(children(site.web.proc.pid))))
    workers = children(site.web.proc.pid)
    assert workers and all(groups_of(status) == {str(daemon.pw_gid)} for status in workers.values()), workers
    assert not exim_groups & set().union(*(groups_of(status) for status in workers.values()))

    site.root.write_accounts({**testroot.ACCOUNTS, "demo9": ["demo9.test"]})   # root:mail 0640, as cPanel
    users = site.root.path / "var/cpanel/users"
    users.chmod(0o711)   # as cPanel: its users' files are not listed for anyone but root
    try:
        status, _, body = unix_request(site.web.admin_socket, "GET", "/admin/settings/account/demo9")
        assert status == 200 and b"demo9" in body, body[:300]
        status, _, _ = unix_request(site.web.admin_socket, "GET", "/admin/settings/account/nosuch9")
        assert status == 404
    finally:
        users.chmod(0o755)
        site.root.write_accounts(testroot.ACCOUNTS)
        (users / "demo9").unlink()


def test_the_secret_is_made_at_first_start_and_private(site):
    secret = site.root.path / "var/imunifyemail/web-secret"
    st = os.stat(secret)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == pwd.getpwnam("_imunifyemail").pw_uid
    assert len(secret.read_text().strip()) == 64


@pytest.fixture
def bare_root(make_root, rspamd):
    return make_root(rspamd.url, quarantine={"min_free_bytes": 10 ** 15, "reserve_bytes": 0})


def start_failing(root, **env) -> str:
    proc = subprocess.run([str(WEB)], env={**os.environ, "IMUNIFYEMAIL_ROOT": str(root.path), **env},
                          capture_output=True, text=True, timeout=60, cwd="/")
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


def test_a_secret_others_can_read_is_refused(bare_root):
    secret = bare_root.path / "var/imunifyemail/web-secret"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("0" * 64 + "\n")
    secret.chmod(0o644)
    assert "readable by its owner only" in start_failing(bare_root)


DIES_WRITING_THE_SECRET = """
import resource, signal
from imunifyemail.web import serving
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)        # Python ignores it; the kernel's default kills
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))   # so its first byte written to a file kills it
serving.ensure_secret(None)
"""


def test_a_first_start_killed_while_making_the_secret_leaves_none_to_trip_the_next(bare_root):
    """systemctl restart during the very first start, or a crash: what is left must not be a secret
    the next start refuses ("too short") for ever after."""
    proc = subprocess.run([sys.executable, "-c", DIES_WRITING_THE_SECRET], capture_output=True, cwd="/",
                          env={**os.environ, "IMUNIFYEMAIL_ROOT": str(bare_root.path)})
    assert proc.returncode == -signal.SIGXFSZ, proc.stderr
    secret = bare_root.path / "var/imunifyemail/web-secret"
    assert not secret.exists()
    WebServer(bare_root.path).start().stop()
    assert len(secret.read_text().strip()) == 64 and stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_the_development_listener_must_be_loopback(bare_root):
    out = start_failing(bare_root, IMUNIFYEMAIL_WEB_DEV_LISTEN=f"0.0.0.0:{free_port()}")
    assert "must be a loopback address" in out


def test_pages_warn_when_the_quarantines_disk_is_below_its_floor(bare_root):
    web = WebServer(bare_root.path).start()
    try:
        status, _, body = unix_request(web.admin_socket, "GET", "/admin/quarantine")
        assert status == 503 and "start imunifyemaild" in body.decode()   # no store yet: said so, nothing made
        bare_root.start()   # the daemon makes the store (its floor warning aside, it serves)
        status, _, body = unix_request(web.admin_socket, "GET", "/admin/quarantine")
        assert status == 200
        text = Page(body.decode()).all_text
        assert "The quarantine's disk is nearly full" in text and "waiting in the mail queue" in text
    finally:
        web.stop()


def test_a_stopped_service_leaves_no_worker_behind(bare_root):
    web = WebServer(bare_root.path).start()
    master = web.proc.pid
    web.stop()
    eventually(lambda: children(master) == {}, "the workers gone with their master", interval=0.1,
               describe=lambda: str(children(master)))
    assert children(master) == {}
