"""The whole mail path on one machine: Exim (cPanel-shaped) → its router asks imunifyemaild (which asks
Rspamd) → Exim delivers to the sink, in one pass.

Used by the system tests (in a private network namespace: only loopback, nothing leaves, no DNS
stall), by the sandbox (``make run``: private mount namespace only, so Exim is reachable on the
machine's 127.0.0.1) and by ``make bench``. Every part is the real program; only cPanel's own
commands are stand-ins (:mod:`devtools.cpanel_standins`).

Layout of a stack rooted at ``base``: ``base/root`` is the ``$IMUNIFYEMAIL_ROOT`` (cPanel files,
Exim's config, spool and logs, the product's state), ``base/sink`` the delivered mail,
``base/rspamd`` Rspamd's work directory (its log, its layered config), ``base/*.log`` the daemons' output.
Rspamd's RUNDIR is ``base/root/var/run/rspamd``: its workers listen there on the production unix sockets
(``_rspamd:_imunifyemail`` 0660, no TCP), where the daemon's default ``rspamd.url`` finds the scanner.
"""
import grp
import os
import pwd
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import yaml

from imunifyemail import config

from devtools import cpanel_standins, processes, spool
from devtools.exim import EXIM, SANDBOX_PASSWORD, EximDaemon, EximLayout, prepare
from devtools.namespace import Namespace
from devtools.redis import RedisProcess
from devtools.rspamd import RspamdProcess
from devtools.sink import read as read_sink
from devtools.users import ensure_hosted_user, ensure_system_user
from devtools.waiting import eventually
from devtools.web import WebServer

REPO = Path(__file__).resolve().parent.parent
ACCOUNTS = {"demo1": ["demo1.test"], "demo2": ["demo2.test"]}
DAEMON_USER = "_imunifyemail"
EXIM_USER = "Debian-exim"
ADMIN_CONTACT = "admin@hosting-admin.example"   # CONTACTEMAIL in /etc/wwwacct.conf
OWNERS_DOMAIN = "owners.example"                # each account's CONTACTEMAIL: <account>-owner@ this
PYTHON = sys.executable


class NsRspamd(RspamdProcess):
    """Rspamd started inside the namespace (its sockets are files: reached from anywhere)."""

    def __init__(self, ns: Namespace, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ns = ns

    def command(self) -> List[str]:
        return self.ns.enter_argv(super().command())


class MailStack:
    def __init__(self, base: Path, net: bool, smtp_port: int = 2525, sink_port: int = 2526,
                 rspamd_tcp_port: Optional[int] = None, accounts: Optional[Dict] = None,
                 hostname: str = "server.ie-sandbox.test", config_extra: Optional[dict] = None,
                 daemon_argv: Sequence[str] = ("-m", "imunifyemail.daemon.main"),
                 redis_servers: Optional[List[str]] = None):
        self.base = Path(base)
        self.daemon_argv = list(daemon_argv)   # devtools.clocked_daemon: a daemon whose clock the test moves
        self.config_extra = config_extra or {}
        self.root = self.base / "root"
        self.sink_dir = self.base / "sink"
        self.accounts = accounts or ACCOUNTS
        self.ns = Namespace(net=net)
        self.layout = EximLayout(self.root, smtp_port, sink_port, hostname=hostname)
        self.rspamd_tcp_port = rspamd_tcp_port   # the Exim bench's TCP listener for its spam = ACL, or None
        self.rspamd: Optional[NsRspamd] = None
        # Where Rspamd learns (config.yaml rspamd.redis.servers): a Redis of this stack's own, started
        # with it, unless given (a fleet's shared one)
        self.redis_servers = redis_servers
        self.redis: Optional[RedisProcess] = None
        self.exim: Optional[EximDaemon] = None
        self.daemon: Optional[subprocess.Popen] = None
        self.sink: Optional[subprocess.Popen] = None
        self.web: Optional[WebServer] = None

    # -- building the root ----------------------------------------------------

    @property
    def env(self) -> Dict[str, str]:
        return {**os.environ, "IMUNIFYEMAIL_ROOT": str(self.root), "PYTHONPATH": str(REPO)}

    @property
    def rspamd_rundir(self) -> Path:
        """Rspamd's RUNDIR, with its sockets: where the daemon's default ``rspamd.url`` looks, under the root."""
        return self.root / "var/run/rspamd"

    @property
    def redis_socket(self) -> Path:
        return self.base / "redis" / "redis.sock"

    @property
    def socket_path(self) -> Path:
        return self.root / "var/run/imunifyemail/filter.sock"

    def config(self) -> dict:
        exim_group = grp.getgrgid(pwd.getpwnam(EXIM_USER).pw_gid).gr_name
        # The daemon reads Exim's spool through the Exim user's group (cPanel: mail, which also reads
        # /etc/userdomains; Debian's Exim has a group of its own).
        # rspamd.url keeps its default: Rspamd's production socket, under the root.
        return {"rspamd": {"timeout": 10, "redis": {"servers": self.redis_servers or [str(self.redis_socket)]}},
                "reinject": {"user": EXIM_USER, "timeout": 60},
                "daemon": {"extra_groups": ["mail", exim_group]}}

    def write_config(self, extra: Optional[dict] = None) -> None:
        data = self.config()
        for key, value in {**self.config_extra, **(extra or {})}.items():
            data[key] = {**data.get(key, {}), **value}
        path = self.root / "etc/imunifyemail/config.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data))

    def build(self) -> None:
        """cPanel-shaped files, users, Exim's base config (idempotent)."""
        ensure_system_user(DAEMON_USER)
        for name in self.accounts:
            ensure_hosted_user(name)
        for d in (self.base, self.root, self.root / "etc", self.root / "var/cpanel/users"):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o755)
        userdomains = self.root / "etc/userdomains"
        userdomains.write_text("".join(f"{d}: {u}\n" for u, ds in self.accounts.items() for d in ds) + "*: nobody\n")
        os.chown(userdomains, 0, grp.getgrnam("mail").gr_gid)   # as cPanel: root:mail 0640
        userdomains.chmod(0o640)
        for user, domains in self.accounts.items():
            f = self.root / "var/cpanel/users" / user
            f.write_text(f"DNS={domains[0]}\nOWNER=root\nCONTACTEMAIL={user}-owner@{OWNERS_DOMAIN}\n")
            f.chmod(0o600)
        # WHM's Basic Setup: the server's name and the administrator's address (the digests go there;
        # a remote domain, so they reach the sink like any mail leaving the server)
        (self.root / "etc/wwwacct.conf").write_text(f"HOST {self.layout.hostname}\nCONTACTEMAIL {ADMIN_CONTACT}\n")
        self.sink_dir.mkdir(exist_ok=True)
        self.write_config()
        prepare(self.layout, [d for ds in self.accounts.values() for d in ds])

    # -- running ----------------------------------------------------------------

    def start(self, daemon: bool = True, enable: bool = True) -> None:
        self.ns.start()
        self.start_sink()
        if self.redis_servers is None:
            self.redis = RedisProcess(self.redis_socket.parent, wrap=self.ns.enter_argv).start()
        self.start_rspamd()
        if daemon:
            self.start_daemon()
        self.exim = EximDaemon(self.layout, self.ns)
        self.exim.start()
        if enable:
            self.ie_config("enable")

    def start_rspamd(self) -> None:
        """Rspamd with the learning files ``ie-config rspamd-learning`` writes from this stack's config."""
        redis = config.load(self.root / "etc/imunifyemail/config.yaml")["rspamd"]["redis"]
        self.rspamd = NsRspamd(self.ns, self.base / "rspamd", rundir=self.rspamd_rundir,
                               tcp_port=self.rspamd_tcp_port, redis=redis)
        self.rspamd.start()

    def start_sink(self) -> None:
        log = open(self.base / "sink.log", "ab")
        self.sink = self.ns.popen([PYTHON, "-m", "devtools.sink", "--port", str(self.layout.sink_port),
                                   "--dir", str(self.sink_dir)], env=self.env, stdout=log, stderr=log,
                                  start_new_session=True)
        log.close()
        self._wait_tcp(self.layout.sink_port, self.sink, "sink")

    def _wait_tcp(self, port: int, proc: subprocess.Popen, what: str) -> None:
        def listening() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with status {proc.returncode}")
            try:
                self.ns.connect(("127.0.0.1", port), 2).close()
                return True
            except OSError:
                return False
        eventually(listening, f"{what} to listen on {port}")

    def start_daemon(self) -> None:
        log = open(self.base / "daemon.log", "ab")
        self.daemon = self.ns.popen([PYTHON, *self.daemon_argv], env=self.env, stdout=log,
                                    stderr=log, start_new_session=True)
        log.close()

        def ready() -> bool:
            if self.daemon.poll() is not None:
                raise RuntimeError(f"imunifyemaild exited {self.daemon.returncode}: {self.daemon_log()[-2000:]}")
            try:
                return spool.ask(str(self.socket_path), "", "ready@probe.invalid", 5).get("verdict") == "pass"
            except OSError:
                return False
        eventually(ready, "imunifyemaild to answer on its socket", describe=lambda: self.daemon_log()[-2000:])
        cpanel_standins_systemctl(self.root, "start", "imunifyemaild")

    def stop_daemon(self, kill: bool = False) -> None:
        proc, self.daemon = self.daemon, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def start_web(self, dev_port: Optional[int] = None) -> WebServer:
        """The real gunicorn on the root's two sockets (and the sandbox's loopback listener, if a port is given)."""
        self.web = WebServer(self.root, dev_port=dev_port, log=self.base / "web.log").start()
        cpanel_standins_systemctl(self.root, "start", "imunifyemail-web")
        return self.web

    def stop_web(self) -> None:
        web, self.web = self.web, None
        if web is not None:
            web.stop()

    def stop(self) -> None:
        self.stop_web()
        self.stop_daemon()
        if self.exim is not None:
            self.exim.stop()
        if self.rspamd is not None:
            self.rspamd.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.sink is not None:
            processes.stop(self.sink)
        self.ns.stop()

    # -- commands inside the namespace -----------------------------------------

    def run(self, argv: Sequence[str], user: Optional[str] = None, input: Optional[bytes] = None,
            check: bool = True) -> subprocess.CompletedProcess:
        return self.ns.run(list(argv), user=user, input=input, check=check, env=self.env)

    def ie_config(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self._cli("imunifyemail.cli.ie_config", args, check)

    def ie_cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self._cli("imunifyemail.cli.ie_cli", args, check)

    def _cli(self, module: str, args: Sequence[str], check: bool) -> subprocess.CompletedProcess:
        proc = self.ns.run([PYTHON, "-m", module, *args], check=False, env=self.env)
        if check and proc.returncode != 0:
            raise AssertionError(f"{module} {' '.join(args)} failed ({proc.returncode}): "
                                 f"{proc.stderr.decode()}{proc.stdout.decode()}")
        return proc

    def sendmail(self, raw: bytes, *args: str, user: Optional[str] = None, sync: bool = True,
                 check: bool = True) -> subprocess.CompletedProcess:
        """``/usr/sbin/sendmail`` as ``user`` (a hosted account) with Exim's default config;
        ``sync``: delivered before it returns (-odi)."""
        argv = ["/usr/sbin/sendmail", *(["-odi"] if sync else []), "-oi", *args]
        return self.ns.run(argv, user=user, input=raw, check=check)

    def smtp_connection(self, login: Optional[str] = None):
        """An ``smtplib.SMTP`` connected to Exim from inside the namespace; ``login``: authenticated as
        that cPanel user or mailbox (SMTP AUTH, the sandbox's password), else an unauthenticated
        loopback client (whose mail only claims its sender's domain)."""
        import smtplib

        sock = self.ns.connect(("127.0.0.1", self.layout.smtp_port), 30)
        client = smtplib.SMTP()
        client.sock = sock
        client.file = None
        code, msg = client.getreply()
        if code != 220:
            raise smtplib.SMTPConnectError(code, msg)
        client.ehlo("client.example")
        if login is not None:
            client.login(login, SANDBOX_PASSWORD)
        return client

    def queue_run(self) -> None:
        self.run([EXIM, "-qf"])

    # -- what happened ------------------------------------------------------------

    def delivered(self):
        return read_sink(self.sink_dir)

    def wait_for(self, predicate, what: str, timeout: float = 120.0):
        """:func:`devtools.waiting.eventually`, telling the tails of Exim's and the daemon's logs when it fails."""
        return eventually(predicate, what, timeout, describe=self.logs_tail)

    def logs_tail(self) -> str:
        return (f"--- exim mainlog (tail) ---\n{self.exim_log()[-3000:]}\n"
                f"--- daemon log (tail) ---\n{self.daemon_log()[-3000:]}")

    def exim_log(self) -> str:
        try:
            return self.layout.mainlog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def daemon_log(self) -> str:
        try:
            return (self.base / "daemon.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""


def cpanel_standins_systemctl(root: Path, *args: str) -> None:
    """Tell the systemctl stand-in what the harness started, as systemd would know it."""
    subprocess.run([str(root / cpanel_standins.SYSTEMCTL.lstrip("/")), *args], check=True,
                   env={**os.environ, "IMUNIFYEMAIL_ROOT": str(root)}, capture_output=True)
