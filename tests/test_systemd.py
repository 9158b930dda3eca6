"""The package under a real systemd: this machine's own root, copy-on-write, booted by systemd-nspawn
with systemd as PID 1 (devtools/booted_system.py), made cPanel-shaped (devtools/scratch_cpanel.py:
every cPanel stand-in but systemctl's), with a real Exim daemon on 127.0.0.1:2525 delivering to a
sink, and Rspamd as the system runs it. The RPM goes in with rpm; from then on only the real
systemctl starts, stops and restarts the units. The tests run in order: each step starts from the
state the previous one left.

After every systemctl step the check is made at once, without waiting: a unit counts as started
only once its sockets are there with their final owners and modes (Type=notify), so what systemctl
reports is what a caller — the RPM's scriptlets, ie-config, an administrator — finds.
"""
import json
import os
import re
import shlex
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple
from urllib.parse import urlencode

import pytest

from devtools.booted_system import BootedSystem
from devtools.samples import GTUBE
from devtools.stack import ADMIN_CONTACT
from devtools.packages import place_el_python
from devtools.testroot import remove_unless_kept
from devtools.waiting import eventually
from tests.web.conftest import Page

pytestmark = pytest.mark.systemd

REPO = Path(__file__).resolve().parent.parent
# The flavour whose package is booted here (devtools/packages.py builds each): EL9's, on its Python 3.9
# (EL9's systemd is 252, as this machine's).
FLAVOURS = ("el9",)
DAEMON, WEB, TIMER, NOTIFY = "imunifyemaild", "imunifyemail-web", "imunifyemail-notify.timer", "imunifyemail-notify"
RUN_DIR = "/run/imunifyemail"
SINK = "/var/tmp/ie-sink"
WHM_CGI = "/usr/local/cpanel/whostmgr/docroot/cgi/imunifyemail/index.cgi"
CPSESS = "/cpsess0123456789"
# What plugin/imunifyemail means each to be (daemon/startup.py, web/serving.py): the directory is
# root's and nobody else may rename in it; Exim's router asks as root, the web app's workers as
# _imunifyemail; admin.sock is WHM's (root), user.sock every hosted user's.
INTENDED = {
    RUN_DIR: ("root", "root", "755", "directory"),
    f"{RUN_DIR}/filter.sock": ("_imunifyemail", "_imunifyemail", "600", "socket"),
    f"{RUN_DIR}/control.sock": ("_imunifyemail", "_imunifyemail", "600", "socket"),
    f"{RUN_DIR}/admin.sock": ("root", "root", "600", "socket"),
    f"{RUN_DIR}/user.sock": ("_imunifyemail", "_imunifyemail", "666", "socket"),
}
# Who may connect to which socket: (socket, as whom) -> connects?
ACCESS = {("control.sock", "_imunifyemail"): True, ("control.sock", "demo1"): False,
          ("filter.sock", "root"): True, ("filter.sock", "demo1"): False,
          ("admin.sock", "root"): True, ("admin.sock", "demo1"): False,
          ("user.sock", "demo1"): True}
CONNECT = """
import errno, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
    print("connected")
except OSError as exc:
    print(errno.errorcode.get(exc.errno, exc.errno))
"""
# An administrator's change to config.yaml (the log level; its daemon: section is the file's last).
CONFIG = """
daemon:
  log_level: DEBUG
"""


class Server:
    """The booted system and the questions the tests ask it."""

    def __init__(self, system: BootedSystem, flavour: str):
        self.system = system
        self.interpreter = "/usr/bin/python3.9" if flavour != "local" else os.path.realpath("/usr/bin/python3")

    def sh(self, command: str, check: bool = True, **kwargs):
        return self.system.run(["sh", "-c", command], check=check, **kwargs)

    def systemctl(self, *args: str):
        return self.system.run(["systemctl", *args], check=False)

    def step(self, verb: str, *units: str):
        """``systemctl VERB UNITS`` as an administrator would, the units' start counters reset first:
        systemd refuses a sixth start within 10 s (StartLimitBurst), and these steps come quicker
        than any administrator's — that limit is not what is tested here."""
        self.systemctl("reset-failed", *units)
        return self.systemctl(verb, *units)

    def states(self, *units: str) -> List[str]:
        return self.systemctl("is-active", *units).stdout.split()

    def show(self, unit: str, *props: str) -> Dict[str, str]:
        out = self.systemctl("show", unit, *[f"--property={p}" for p in props]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def runtime_dir(self) -> Dict[str, Tuple[str, str, str, str]]:
        """Owner, group, mode and kind of the runtime directory and of everything in it."""
        out = self.sh(f"stat -c '%n|%U|%G|%a|%F' {RUN_DIR} {RUN_DIR}/*", check=False).stdout
        return {name: tuple(rest) for name, *rest in (line.split("|") for line in out.splitlines())}

    def listening(self) -> List[str]:
        """The unix sockets something listens on in the runtime directory."""
        out = self.system.run(["ss", "-xlnH"]).stdout
        return sorted(f for f in re.findall(r"\s(/\S+)\s", out) if f.startswith(("/run/imunifyemail/",
                                                                                  "/var/run/imunifyemail/")))

    def connects(self, sock: str, user: str) -> bool:
        out = self.system.run(["/usr/bin/python3", "-c", CONNECT, f"{RUN_DIR}/{sock}"], user=user).stdout.strip()
        assert out in ("connected", "EACCES"), f"{user} connecting to {sock}: {out}"
        return out == "connected"

    def status(self) -> dict:
        return json.loads(self.system.run(["/usr/bin/ie-config", "status", "--json"]).stdout)

    def journal(self, *units: str) -> str:
        args = " ".join(f"-u {shlex.quote(u)}" for u in units)
        return self.sh(f"journalctl --no-pager -o cat {args} | tail -n 60", check=False).stdout

    def whm(self, method: str = "GET", query: str = "", body: bytes = b"") -> Tuple[int, Dict[str, str], str]:
        """The installed WHM entry, run the way WHM runs it: as root, REMOTE_USER authenticated."""
        env = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method, "QUERY_STRING": query,
               "REMOTE_USER": "root", "SCRIPT_NAME": "/cgi/imunifyemail/index.cgi", "cp_security_token": CPSESS,
               "SERVER_SOFTWARE": "cpsrvd/11.120"}
        if body:
            env.update(CONTENT_LENGTH=str(len(body)), CONTENT_TYPE="application/x-www-form-urlencoded")
        proc = self.system.run(["env", *[f"{k}={v}" for k, v in env.items()], WHM_CGI], input=body)
        head, _, page = proc.stdout.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
        return int(lines[0].split()[1]), headers, page.decode()

    def held(self) -> List[dict]:
        return json.loads(self.system.run(["/usr/bin/ie-cli", "emails", "list", "-a", "root", "--json"]).stdout)["items"]

    def sunk(self, pattern: str) -> List[str]:
        """The sink's messages matching ``pattern`` (grep -E, in the headers or the body)."""
        return self.sh(f"grep -lE {shlex.quote(pattern)} {SINK}/*.eml 2>/dev/null", check=False).stdout.split()

    def describe(self) -> str:
        return "\n".join([self.journal(DAEMON, WEB, NOTIFY, TIMER, "exim", "ie-sink"),
                          self.sh("tail -n 20 /var/log/exim/mainlog", check=False).stdout])


def assert_as_intended(server: Server, step: str) -> None:
    """The runtime directory and the four sockets as the product makes them, each listened on,
    each reachable by whom it is for and by nobody else."""
    assert server.runtime_dir() == INTENDED, f"after {step}"
    assert server.listening() == sorted(f"/var/run/imunifyemail/{n}" for n in
                                        ("admin.sock", "control.sock", "filter.sock", "user.sock")), f"after {step}"
    for (sock, user), allowed in ACCESS.items():
        assert server.connects(sock, user) is allowed, f"after {step}: {user} -> {sock}"
    status = server.status()
    assert status["daemon"]["running"] and status["web"]["running"], (step, status)


@pytest.fixture(scope="module", params=FLAVOURS)
def server(request, packages):
    package = packages[request.param][1]
    system = BootedSystem(Path(tempfile.mkdtemp(prefix="ie-systemd-", dir="/tmp")) / "system", binds=[REPO])
    try:
        system.start()
        s = Server(system, request.param)
        python = f"{REPO}/.venv/bin/python"
        system.run([python, "-m", "devtools.scratch_cpanel", "--booted"], env={"PYTHONPATH": str(REPO)})
        if request.param != "local":
            place_el_python(system)
        # WHM's Basic Setup: the server's name and the administrator's address (the digests' recipient)
        system.write("/etc/wwwacct.conf", f"HOST server.scratch.test\nCONTACTEMAIL {ADMIN_CONTACT}\n")
        # cPanel's exim.service: Exim's default configuration path is the built /etc/exim.conf; the
        # "Internet" is the sink on 127.0.0.1:2526, where the template routes every remote domain
        s.sh("mount --bind /etc/exim.conf /var/lib/exim4/config.autogenerated")
        system.run(["systemd-run", "--quiet", "--unit=ie-sink", f"--setenv=PYTHONPATH={REPO}", python, "-m",
                    "devtools.sink", "--port", "2526", "--dir", SINK])
        system.run(["systemd-run", "--quiet", "--unit=exim", "/usr/sbin/exim", "-bdf", "-q30m"])
        for port, what in ((2526, "the sink"), (2525, "Exim")):
            eventually(lambda: system.run(["ss", "-ltnH", f"sport = :{port}"]).stdout.strip(),
                       f"{what} to listen on {port}", describe=s.describe)
        system.write("/var/tmp/imunifyemail.rpm", package.read_bytes())
        yield s
    finally:
        system.stop()
        remove_unless_kept(system.base.parent)


def test_install_starts_the_units_under_systemd(server):
    proc = server.system.run(["rpm", "--dbpath", "/var/lib/rpm", "-i", "--nodeps", "/var/tmp/imunifyemail.rpm"])
    assert "Imunify Email enabled" in proc.stdout, proc.stdout + proc.stderr + server.describe()
    assert server.states(DAEMON, WEB, TIMER, "rspamd") == ["active"] * 4, server.describe()
    assert server.systemctl("is-enabled", DAEMON, WEB, TIMER).stdout.split() == ["enabled"] * 3
    assert server.show(DAEMON, "User")["User"] == "" and server.show(WEB, "User")["User"] == ""   # they drop root themselves
    for unit in (DAEMON, WEB):   # the installed tree, on the system's interpreter
        pid = server.show(unit, "MainPID")["MainPID"]
        assert server.system.run(["readlink", f"/proc/{pid}/exe"]).stdout.strip() == server.interpreter, unit
    assert_as_intended(server, "rpm -i (ie-config enable)")


def test_every_restart_leaves_the_sockets_as_intended(server):
    # an administrator's change to config.yaml, applied the way the shipped file says
    server.sh(f"cat >> /etc/imunifyemail/config.yaml <<'EOF'\n{CONFIG}EOF")
    steps = (["restart", DAEMON, WEB], ["restart", WEB], ["restart", DAEMON], ["stop", DAEMON, WEB],
             ["start", DAEMON, WEB], ["restart", WEB, DAEMON])
    for step in steps:
        proc = server.step(*step)
        name = "systemctl " + " ".join(step)
        assert proc.returncode == 0, f"{name}: {proc.stderr}\n{server.describe()}"
        if step[0] == "stop":
            assert server.states(DAEMON, WEB) == ["inactive", "inactive"]
            assert server.listening() == [], name
            assert server.runtime_dir()[RUN_DIR] == INTENDED[RUN_DIR], name   # kept, still root's
            continue
        assert server.states(DAEMON, WEB) == ["active", "active"], name
        assert_as_intended(server, name)


def test_a_service_that_cannot_start_fails_its_systemctl_start(server):
    """What ie-config enable relies on before it routes mail to the daemon."""
    good = server.system.read("/etc/imunifyemail/config.yaml")
    assert good.endswith(CONFIG)   # the daemon: section is the file's last
    server.system.write("/etc/imunifyemail/config.yaml", good + "  user: ie-no-such-user\n")
    proc = server.step("restart", DAEMON, WEB)
    assert proc.returncode != 0, proc
    assert "no such user 'ie-no-such-user'" in server.journal(DAEMON)
    assert "no such user 'ie-no-such-user'" in server.journal(WEB)
    server.system.write("/etc/imunifyemail/config.yaml", good)
    assert server.step("restart", DAEMON, WEB).returncode == 0, server.describe()
    assert_as_intended(server, "the setting put right and systemctl restart")


def test_a_release_from_the_pages_after_the_web_unit_restarts(server, token):
    eventually(lambda: server.status()["rspamd"]["reachable"], "Rspamd to answer on its socket",
               timeout=180, describe=lambda: server.journal("rspamd"))
    message = (f"From: info@demo1.test\nTo: someone@remote.example\nSubject: {token}\n\n"
               f"This is spam.\n\n{GTUBE}\n")
    server.system.run(["/usr/sbin/sendmail", "-odi", "-oi", "-t"], input=message, user="demo1")
    [held] = [m for m in server.held() if m["subject"] == token]
    assert held["account_name"] == "demo1" and held["reasons"] == ["spam"]
    assert server.sunk(token) == []

    assert server.step("restart", WEB).returncode == 0
    status, _, html = server.whm()
    assert status == 200 and held["email_id"] in html, html[:500]
    fields = {"csrf_token": Page(html).csrf(), "action": "release", "ids": held["email_id"]}
    status, _, confirm = server.whm("POST", "route=/admin/emails", urlencode(fields).encode())
    assert status == 200 and "Yes, release" in confirm, confirm[:500]
    fields.update(csrf_token=Page(confirm).csrf(), confirm="yes")
    status, headers, _ = server.whm("POST", "route=/admin/emails", urlencode(fields).encode())
    assert status == 303 and headers["location"].startswith(f"{CPSESS}/cgi/imunifyemail/index.cgi"), headers

    assert [m for m in server.held() if m["subject"] == token] == []
    eventually(lambda: server.sunk(token), "the released message in the sink", describe=server.describe)
    [sunk] = server.sunk(token)
    assert "X-Sink-Rcpt-To: <someone@remote.example>" in server.system.read(sunk)
    assert "P=imunifyemail-released" in server.sh("grep ' <= ' /var/log/exim/mainlog").stdout


def test_the_notify_timer_fires_and_its_run_mails_the_digest(server):
    # Nothing here starts imunifyemail-notify.service: only its timer (OnCalendar=minutely) can.
    # The hold above is an event for the administrator's digest, which the run hands to Exim.
    eventually(lambda: server.sunk(f"X-Sink-Rcpt-To: <{ADMIN_CONTACT}>"), "the digest of the timer's run",
               timeout=180, describe=server.describe)
    timer = server.show(TIMER, "LastTriggerUSec", "Result")
    assert timer["Result"] == "success" and timer["LastTriggerUSec"] not in ("", "n/a", "0"), timer
    service = server.show(NOTIFY, "Result", "ExecMainStatus", "TriggeredBy", "NRestarts")
    assert service["TriggeredBy"] == TIMER and service["Result"] == "success", service
    assert "digest sent to " + ADMIN_CONTACT in server.journal(NOTIFY)


def test_erase_stops_and_removes_the_units(server):
    proc = server.system.run(["rpm", "--dbpath", "/var/lib/rpm", "-e", "imunifyemail"])
    assert "Imunify Email disabled" in proc.stdout, proc.stdout + proc.stderr
    assert server.states(DAEMON, WEB, TIMER) == ["inactive"] * 3
    assert server.listening() == []
    for unit in (DAEMON, WEB, TIMER, NOTIFY):
        assert server.show(unit, "LoadState")["LoadState"] == "not-found", unit
    assert server.systemctl("--failed", "--plain", "--no-legend").stdout.strip() == "", server.describe()
    assert server.states("rspamd", "exim") == ["active", "active"]
