"""Fixtures that start the real parts: Rspamd, the filter daemon (as root,
dropping to ``_imunifyemail``), SQLite, on a temporary ``$IMUNIFYEMAIL_ROOT``."""
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from devtools.packages import Packages, SigningKey
from devtools.redis import RedisProcess
from devtools.rspamd import RspamdProcess, free_port
from devtools.clock import Clock
from devtools.users import ensure_system_user
from devtools.testroot import TestRoot
from imunifyemail import config, paths
from imunifyemail.store import db
from imunifyemail.store.activity import Activity
from tests.cli_helpers import IERoot

DAEMON_USER = "_imunifyemail"


@pytest.fixture(scope="session")
def daemon_user() -> str:
    ensure_system_user(DAEMON_USER)
    # The daemon imports lazily after dropping to this user: the interpreter, the
    # stdlib and this checkout must be readable by it, or detection degrades silently.
    probe = subprocess.run(
        ["setpriv", f"--reuid={DAEMON_USER}", f"--regid={DAEMON_USER}", "--clear-groups",
         sys.executable, "-c", "import encodings.cp437, imunifyemail.daemon.main"],
        cwd="/", capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.exit(f"{DAEMON_USER} cannot import the product from {sys.executable}: "
                    f"{probe.stderr.strip().splitlines()[-1:]} (checkout or Python not world-readable?)",
                    returncode=3)
    return DAEMON_USER


@pytest.fixture(scope="session")
def rspamd():
    workdir = tempfile.mkdtemp(prefix="ie-rspamd-", dir="/tmp")
    os.chmod(workdir, 0o755)
    # learning in a Redis of its own, as `ie-config rspamd-learning` sets it up
    redis = RedisProcess(Path(workdir) / "redis").start()
    # its sockets are linked into each root (TestRoot.create)
    proc = RspamdProcess(workdir=Path(workdir), redis=config.validate(
        {"rspamd": {"redis": {"servers": [str(redis.socket)]}}}, "test")["rspamd"]["redis"])
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def make_root(daemon_user, monkeypatch):
    """``make_root(rspamd_url, **config)``: a cPanel-shaped root (:class:`TestRoot`) with that config and a
    recording sendmail, which ``$IMUNIFYEMAIL_ROOT`` names for the rest of the test; its daemon is not
    started (``root.start()``). Each one made is stopped and removed after the test (:meth:`TestRoot.discard`)."""
    made = []

    def make(rspamd_url: str, **config) -> TestRoot:
        r = TestRoot.create(rspamd_url=rspamd_url, daemon_user=daemon_user, **config)
        made.append(r)
        monkeypatch.setenv("IMUNIFYEMAIL_ROOT", str(r.path))
        return r
    yield make
    for r in made:
        r.discard()


@pytest.fixture
def root(make_root, rspamd):
    """A root whose config points at the session's Rspamd (``make_root``)."""
    return make_root(rspamd.url)


@pytest.fixture
def daemon(root):
    root.start()
    return root


@pytest.fixture
def ie(tmp_path, monkeypatch):
    """A cPanel-shaped root for ``ie-cli`` run in this process (:class:`tests.cli_helpers.IERoot`):
    the real store, a recording sendmail, no daemon."""
    monkeypatch.setenv(paths.ROOT_ENV, str(tmp_path))
    env = IERoot(tmp_path)
    yield env
    env.conn.close()


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture
def token() -> str:
    """Tells one test's mail apart from another's (in subjects, addresses)."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def signing_key():
    """A throw-away gpg key the test packages are signed with (devtools/packages.py)."""
    key = SigningKey()
    yield key
    key.close()


@pytest.fixture(scope="session")
def packages(tmp_path_factory, signing_key):
    """Each flavour's package (local, el8, el9) built by rpm/build.sh (what `make rpm` runs), signed:
    release 1 and a higher release 2 for the upgrade, built when a test first asks for the flavour.
    The pinned wheels come from build/wheels/<flavour> (fetched once)."""
    return Packages(tmp_path_factory.mktemp("rpms"), signing_key)


@pytest.fixture(scope="session")
def rpms(packages):
    """The local flavour (this machine's Python): release 1 and 2."""
    return packages["local"]


@pytest.fixture
def am(tmp_path, request):
    """The Activity Monitor's store on a database of its own, on a clock the test moves
    (``am.clock_obj.t``), starting at the test module's ``T0``."""
    conn = db.connect(tmp_path / "q.db")
    clock = Clock(request.module.T0)
    a = Activity(conn, clock)
    a.clock_obj = clock
    yield a
    conn.close()
