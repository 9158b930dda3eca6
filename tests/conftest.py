"""Fixtures that start the real parts: Rspamd, the filter daemon (as root,
dropping to ``_imunifyemail``), SQLite, on a temporary ``$IMUNIFYEMAIL_ROOT``."""
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from devtools.rspamd import RspamdProcess, free_port
from tests.sandbox_root import TestRoot

DAEMON_USER = "_imunifyemail"


def ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", name], check=True)


@pytest.fixture(scope="session")
def daemon_user() -> str:
    ensure_system_user(DAEMON_USER)
    return DAEMON_USER


@pytest.fixture(scope="session")
def rspamd():
    workdir = tempfile.mkdtemp(prefix="ie-rspamd-", dir="/tmp")
    proc = RspamdProcess(workdir=__import__("pathlib").Path(workdir), normal_port=free_port(),
                         controller_port=free_port())
    proc.start()
    yield proc
    proc.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def root(daemon_user, rspamd, monkeypatch):
    """A cPanel-shaped root with config pointing at the session's Rspamd and a
    recording sendmail; the daemon is not started yet (``root.start()``)."""
    r = TestRoot.create(rspamd_url=rspamd.url, daemon_user=daemon_user)
    monkeypatch.setenv("IMUNIFYEMAIL_ROOT", str(r.path))
    yield r
    r.close()
    if os.environ.get("IE_KEEP_ROOTS") != "1":
        shutil.rmtree(r.path, ignore_errors=True)


@pytest.fixture
def daemon(root):
    root.start()
    return root


@pytest.fixture
def unused_port() -> int:
    return free_port()
