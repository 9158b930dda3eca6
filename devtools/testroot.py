"""A temporary cPanel-shaped ``$IMUNIFYEMAIL_ROOT`` with a running filter daemon (tests, bench).

Mail reaches the daemon the way Exim hands it over in the single pass: :meth:`TestRoot.send` spools
the message in Exim's format under the root's ``/var/spool/exim`` and asks the filter socket what
the router asks, once per remote address (:mod:`devtools.spool`). Released mail goes to a
recording ``sendmail`` (:mod:`devtools.recorder`), whose outbox :meth:`TestRoot.reinjected` reads.
"""
import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import yaml

from imunifyemail import paths
from imunifyemail.store import db
from imunifyemail.store.quarantine import ListQuery, Quarantine, StoredMessage

from devtools import spool
from devtools.recorder import Reinjected, Retry, install_recorder, read_outbox, read_retries
from devtools.waiting import eventually

ACCOUNTS = {"demo1": ["demo1.test", "shop.demo1.test"], "demo2": ["demo2.test"]}


@dataclass
class Sent:
    """One message handed to the daemon: its Exim id and the answer for each remote address."""
    exim_id: str
    answers: List[Dict[str, str]]

    @property
    def verdict(self) -> str:
        verdicts = {a.get("verdict") for a in self.answers}
        assert len(verdicts) == 1, f"one message, different verdicts: {self.answers}"
        return verdicts.pop()

    @property
    def email_id(self) -> Optional[str]:
        return self.answers[0].get("email_id")

    def __getitem__(self, name: str) -> Optional[str]:
        return self.answers[0].get(name)


def remove_unless_kept(path: Path) -> None:
    """A test's tree removed, unless ``IE_KEEP_ROOTS=1`` asks to keep them all for a look afterwards."""
    if os.environ.get("IE_KEEP_ROOTS") != "1":
        shutil.rmtree(path, ignore_errors=True)


class TestRoot:
    def __init__(self, path: Path, daemon_user: str):
        self.path = path
        self.daemon_user = daemon_user
        self.proc: Optional[subprocess.Popen] = None
        self.log = path / "daemon.log"
        self.outbox = path / "outbox"
        self.fail_flag = path / "sendmail.fail"
        self.sendmail = path / "usr/sbin/sendmail"
        self._conn = None

    @classmethod
    def create(cls, rspamd_url: str, daemon_user: str, **config) -> "TestRoot":
        path = Path(tempfile.mkdtemp(prefix="ie-root-", dir="/tmp"))
        path.chmod(0o755)   # the daemon runs as _imunifyemail and must reach its files
        r = cls(path, daemon_user)
        user = pwd.getpwnam(daemon_user)
        r.outbox.mkdir()
        os.chown(r.outbox, user.pw_uid, user.pw_gid)
        install_recorder(r.sendmail, r.outbox, r.fail_flag)
        exim = pwd.getpwnam(spool.EXIM_USER)   # Exim's spool is its user's (the daemon tells Exim's own mail by it)
        r.spool.mkdir(parents=True)
        os.chown(r.spool, exim.pw_uid, grp.getgrnam("mail").gr_gid)
        r.spool.chmod(0o750)
        r.write_accounts(ACCOUNTS)
        rspamd = {"timeout": 10}
        if rspamd_url.startswith("unix:"):
            r.link_rspamd_socket(Path(rspamd_url[len("unix:"):]))   # and rspamd.url keeps its default
        else:
            rspamd["url"] = rspamd_url
        data = {"rspamd": rspamd,
                "reinject": {"sendmail": str(r.sendmail), "timeout": 30}}
        for section, values in config.items():   # merged: a test's reinject.user keeps the recorder
            data[section] = {**data.get(section, {}), **values}
        r.write_config(data)
        return r

    # -- cPanel files and config -----------------------------------------

    def link_rspamd_socket(self, socket: Path) -> None:
        """A (shared, host-path) Rspamd socket where the default ``rspamd.url`` finds it under this root, and
        its controller's beside it where the default ``rspamd.controller`` does."""
        link = self.path / paths.RSPAMD_SOCKET.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(socket)
        controller = socket.with_name(Path(paths.RSPAMD_CONTROLLER).name)
        if controller.exists():
            (self.path / paths.RSPAMD_CONTROLLER.lstrip("/")).symlink_to(controller)

    def write_accounts(self, accounts) -> None:
        etc = self.path / "etc"
        etc.mkdir(exist_ok=True)
        lines = [f"{d}: {user}" for user, domains in accounts.items() for d in domains]
        self.local_domains = [d for domains in accounts.values() for d in domains]
        (etc / "localdomains").write_text("".join(f"{d}\n" for d in self.local_domains))
        userdomains = etc / "userdomains"
        userdomains.write_text("\n".join(lines + ["*: nobody"]) + "\n")
        os.chown(userdomains, 0, grp.getgrnam("mail").gr_gid)   # as cPanel: root:mail 0640
        userdomains.chmod(0o640)
        users = self.path / "var/cpanel/users"
        users.mkdir(parents=True, exist_ok=True)
        for user, domains in accounts.items():
            (users / user).write_text(f"DNS={domains[0]}\nOWNER=root\n")
            (users / user).chmod(0o600)

    def write_config(self, data: dict) -> None:
        # The recording sendmail writes into an outbox of the daemon's user: re-inject as the caller.
        data = {**data, "reinject": {"user": None, **data.get("reinject", {})}}
        cfg = self.path / "etc/imunifyemail/config.yaml"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(yaml.safe_dump(data))

    @property
    def socket(self) -> str:
        return str(self.path / "var/run/imunifyemail/filter.sock")

    # -- the daemon ---------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        env = dict(os.environ, IMUNIFYEMAIL_ROOT=str(self.path))
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "imunifyemail.daemon.main"], env=env,
                                     stdout=logf, stderr=logf, cwd="/")
        logf.close()

        def gone() -> str:
            if self.proc.poll() is None:
                return ""
            return f"daemon exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
        self._wait_ready(timeout, gone)

    def _wait_ready(self, timeout: float, gone) -> None:
        """Until the socket answers the router's question; ``gone()`` says why the daemon cannot come up."""
        def ready() -> bool:
            why = gone()
            if why:
                raise RuntimeError(why)
            try:
                return spool.ask(self.socket, "", "ready@probe.invalid", 5).get("verdict") == "pass"
            except OSError:
                return False
        eventually(ready, "the daemon to answer on its socket", timeout, interval=0.02,
                   describe=lambda: self.log.read_text()[-3000:] if self.log.exists() else "")

    def start_in_process(self, clock, **serve_options) -> None:
        """The real daemon (``serve``) on an event loop in a thread of this
        process, with an injected clock: for time windows (no privilege drop)."""
        import asyncio
        import threading

        from imunifyemail import config
        from imunifyemail.daemon import main as daemon_main
        from imunifyemail.daemon import startup

        os.environ["IMUNIFYEMAIL_ROOT"] = str(self.path)
        cfg = config.load()
        sock_path = Path(self.socket)
        sock_path.parent.mkdir(parents=True, exist_ok=True)
        (self.path / "var/imunifyemail/quarantine/storage").mkdir(parents=True, exist_ok=True)
        sockets = startup.Sockets(startup.open_socket(sock_path, 0, 0, 0o600),
                                  startup.open_socket(sock_path.with_name("control.sock"), 0, 0, 0o600))
        loop = asyncio.new_event_loop()
        stop = []   # serve's stop Event, made on the loop: Python 3.9 binds an Event to the loop current then
        failed = []

        async def serve_until_stopped():
            stop.append(asyncio.Event())
            await daemon_main.serve(cfg, sockets, clock=clock, stop=stop[0], **serve_options)

        def run():
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(serve_until_stopped())
            except BaseException as exc:  # surfaced by stop()
                failed.append(exc)
            finally:
                loop.close()

        thread = threading.Thread(target=run, name="imunifyemaild", daemon=True)
        thread.start()
        self._in_process = (loop, stop, thread, failed)
        self._wait_ready(30, lambda: f"in-process daemon failed: {failed[0]!r}" if failed else "")

    def stop(self, kill: bool = False) -> None:
        in_process = getattr(self, "_in_process", None)
        if in_process is not None:
            loop, stop, thread, failed = in_process
            if thread.is_alive():   # a loop that ended already (failed) takes no more callbacks
                loop.call_soon_threadsafe(stop[0].set)
            thread.join(60)
            self._in_process = None
            if failed:
                raise failed[0]
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def discard(self) -> None:
        """Closed and removed; ``IE_KEEP_ROOTS=1`` keeps the tree to look at after a failure."""
        self.close()
        remove_unless_kept(self.path)

    # -- talking to it ----------------------------------------------------

    @property
    def spool(self) -> Path:
        return self.path / "var/spool/exim"

    def send(self, raw: bytes, sender: str = "alice@demo1.test", recipients=("bob@remote.example",),
             **envelope) -> Sent:
        """Spool the message as Exim would and ask for each remote recipient, as the router does
        (``envelope``: uid, login, protocol, auth_id, host of :func:`devtools.spool.write`)."""
        exim_id = spool.new_id()
        spool.write(self.spool, exim_id, raw, sender, list(recipients), **envelope)
        local = set(self.local_domains)
        remote = [r for r in recipients if r.rpartition("@")[2].lower() not in local] or list(recipients)
        return Sent(exim_id, [spool.ask(self.socket, exim_id, r) for r in remote])

    def receive(self, raw: bytes, sender: str = "someone@outside.example", recipients=("info@demo1.test",),
                **envelope) -> Sent:
        """Spool inbound mail as Exim would and ask for each local recipient, as the incoming filter's
        router does."""
        exim_id = spool.new_id()
        spool.write(self.spool, exim_id, raw, sender, list(recipients), **envelope)
        return Sent(exim_id, [spool.ask(self.socket, exim_id, r, verb="INCOMING") for r in recipients])

    def ask_again(self, sent: Sent, rcpt: Optional[str] = None) -> Dict[str, str]:
        """The router asking again (a retry, another address) for a message still spooled."""
        return spool.ask(self.socket, sent.exim_id, rcpt or "bob@remote.example")

    def wait_for(self, predicate, what: str, timeout: float = 60.0):
        """:func:`devtools.waiting.eventually`, telling the tail of the daemon's log when it fails."""
        return eventually(predicate, what, timeout, interval=0.02,
                          describe=lambda: self.log.read_text()[-3000:] if self.log.exists() else "")

    def reinjected(self) -> List[Reinjected]:
        return read_outbox(self.outbox)

    def retries(self) -> List[Retry]:
        return read_retries(self.outbox)

    # -- the store, read as root ------------------------------------------

    def quarantine(self) -> Quarantine:
        if self._conn is None:
            self._conn = db.connect(self.path / "var/imunifyemail/quarantine/storage/quarantine.db")
        return Quarantine(self._conn, self.path / "var/imunifyemail/quarantine/storage", 104857600)

    def held(self, account: Optional[str] = None, **filters) -> List[StoredMessage]:
        items, _ = self.quarantine().list(ListQuery(account=account, limit=100000, **filters))
        return items

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ, IMUNIFYEMAIL_ROOT=str(self.path))
        exe = Path(sys.executable).with_name("ie-cli")
        proc = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"ie-cli {' '.join(args)} failed {proc.returncode}: {proc.stderr}")
        return proc

    def cli_status(self, *args: str) -> str:
        """``ie-config status`` against this root."""
        env = dict(os.environ, IMUNIFYEMAIL_ROOT=str(self.path))
        exe = Path(sys.executable).with_name("ie-config")
        proc = subprocess.run([str(exe), "status", *args], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise AssertionError(f"ie-config status failed {proc.returncode}: {proc.stderr}")
        return proc.stdout

    def cli_json(self, *args: str):
        return json.loads(self.cli(*args, "--json").stdout)
