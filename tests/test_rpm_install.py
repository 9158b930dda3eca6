"""The RPM installed for real — rpm, its own scriptlets, real useradd/groupadd — on a copy-on-write
view of this machine made to look like a cPanel server (devtools/scratch_system.py,
devtools/scratch_cpanel.py), with recording stand-ins for cPanel's programs and systemctl at their
real paths. Then an upgrade to a higher release, the installed tree running the mail path (its daemon
and web app with real Exim and Rspamd), and an erase. The tests run in order: each step starts from
the state the previous one left.

Each flavour in turn: ``local`` (this machine's Python), ``el8`` and ``el9``, whose scratch system has
EL's Python 3.9 where that system has it (make python39): ``/usr/bin/python3.9`` with its library
under ``/usr/lib`` (EL8's python39 package; EL9's python3). EL9 also calls it ``/usr/bin/python3``; the
package does not use that name, and the scratch system keeps Debian's there (the harness runs on it)."""
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from devtools import cpanel_standins, processes
from devtools.exim import EximDaemon, EximLayout
from devtools.packages import PYVER, place_el_python
from devtools.scratch_cpanel import ADMIN_LOCAL, CPANEL_USER
from devtools.scratch_system import ScratchSystem
from devtools.waiting import TimedOut, eventually

pytestmark = pytest.mark.rpm

REPO = Path(__file__).resolve().parent.parent
CPANEL = "/usr/local/cpanel"
HOOKS = ("/opt/imunifyemail/hooks/accounts-remove", "/opt/imunifyemail/hooks/accounts-modify")
UNITS = ("imunifyemaild", "imunifyemail-web", "imunifyemail-notify.timer")
# The administrator's own Rspamd options, there before the install (0664: a mode of theirs; no final
# newline): kept.
ADMIN_RSPAMD = "/etc/rspamd/local.d/options.inc"
ADMIN_RSPAMD_TEXT = "# the administrator's\ncheck_all_filters = true;"


class Server:
    """The scratch system and what the stand-ins recorded in it."""

    def __init__(self, system: ScratchSystem, flavour: str):
        self.system = system
        self.flavour = flavour
        self.before_install: dict = {}
        self.exim_conf_before = ""

    def calls(self, program: str = "") -> list:
        text = self.system.run(["cat", cpanel_standins.CALL_LOG], check=False).stdout
        found = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [c for c in found if not program or c["program"] == program]

    def unit(self, name: str) -> str:
        return self.system.run(["cat", f"{cpanel_standins.UNIT_STATE_DIR}/{name}"], check=False).stdout.strip()

    def hooks(self) -> dict:
        return json.loads(self.system.run([f"{CPANEL}/bin/manage_hooks", "list", "--output=JSON"]).stdout)

    def ours_in(self, hooks: dict) -> list:
        return sorted((event, h["hook"], h["stage"]) for event, entries in hooks.get("Whostmgr", {}).items()
                      for h in entries if h["hook"].startswith("/opt/imunifyemail/"))


@pytest.fixture(scope="module", params=["local", "el8", "el9"])
def flavour(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def rpms(packages, flavour):
    return packages[flavour]


@pytest.fixture(scope="module")
def server(flavour, rpms):
    system = ScratchSystem(Path(tempfile.mkdtemp(prefix="ie-scratch-", dir="/tmp"))).start()
    try:
        system.run([sys.executable, "-m", "devtools.scratch_cpanel"], env={"PYTHONPATH": str(REPO)})
        if flavour != "local":
            place_el_python(system)
        system.run(["sh", "-c", f"mkdir -p /etc/rspamd/local.d && cat > {ADMIN_RSPAMD} && chmod 0664 {ADMIN_RSPAMD}"],
                   input=ADMIN_RSPAMD_TEXT)
        s = Server(system, flavour)
        s.before_install = system.changes()
        s.exim_conf_before = system.read("/etc/exim.conf")
        yield s
    finally:
        system.stop()
        system.remove()


def appconfig(text: str) -> dict:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def test_install_runs_the_scriptlets_and_registers_everything(server, rpms):
    sysm = server.system
    assert not sysm.exists("/usr/bin/ie-cli")
    assert sysm.run(["getent", "passwd", "_imunifyemail"], check=False).returncode == 2   # %pre must make it
    proc = sysm.rpm("-i", "--nodeps", str(rpms[1]))
    assert "imunifyemail registered" in proc.stdout and "Imunify Email enabled" in proc.stdout, proc.stdout

    # users and groups, by the real useradd/groupadd of %pre
    groups = sysm.run(["id", "-nG", "_imunifyemail"]).stdout.split()
    assert "_imunify" in groups
    assert sysm.run(["getent", "passwd", "_rspamd"]).stdout.startswith("_rspamd:")
    assert "_imunifyemail" in sysm.run(["id", "-nG", "_rspamd"]).stdout.split()   # the group of its sockets

    # WHM: the AppConfig with its Plugins entry, the CGI and icon it names
    conf = appconfig(sysm.read("/var/cpanel/apps/imunifyemail.conf"))
    assert conf["name"] == "imunifyemail" and conf["service"] == "whostmgr" and conf["acls"] == "all"
    assert conf["url"] == "/cgi/imunifyemail/index.cgi" and conf["entryurl"] == "imunifyemail/index.cgi"
    assert conf["displayname"] and conf["icon"] == "imunifyemail.svg"
    assert sysm.exists(f"{CPANEL}/whostmgr/docroot{conf['url']}")
    assert sysm.exists(f"{CPANEL}/whostmgr/docroot/addon_plugins/{conf['icon']}")
    assert sysm.run(["stat", "-c", "%a", "/var/cpanel/apps/imunifyemail.conf"]).stdout.strip() == "600"

    # cPanel: the plugin in the Security group, its page, icon and feature
    dui = sysm.read(f"{CPANEL}/base/frontend/jupiter/dynamicui/dynamicui_imunifyemail.conf")
    entry = dict(kv.split("=>", 1) for kv in dui.strip().split(","))
    assert entry["group"] == "security" and entry["url"] == "imunifyemail/index.live.cgi"
    assert sysm.exists(f"{CPANEL}/base/frontend/jupiter/{entry['url']}")
    assert sysm.exists(f"{CPANEL}/base/frontend/jupiter/branding/imunifyemail.svg")
    assert sysm.read(f"{CPANEL}/whostmgr/addonfeatures/imunifyemail").startswith("imunifyemail:")

    # both account hooks (registered from their --describe) and the Exim re-apply point
    assert server.ours_in(server.hooks()) == [("Accounts::Modify", HOOKS[1], "post"),
                                              ("Accounts::Remove", HOOKS[0], "post")]
    reapply = sysm.read(f"{CPANEL}/scripts/postbuildeximconf")
    assert "imunifyemail postbuildeximconf hook" in reapply
    assert "/opt/imunifyemail/bin/python3 -m imunifyemail.cli.ie_config" in reapply

    # Exim: our blocks in exim.conf.local around the administrator's text, and in the live config
    local = sysm.read("/etc/exim.conf.local")
    assert "# BEGIN imunifyemail router" in local and "imunifyemail_continue:" in local
    assert "admin_smarthost:" in local
    assert re.search(r"^imunifyemail_scan:$", sysm.read("/etc/exim.conf"), re.MULTILINE)

    # Rspamd: our block at the end of the administrator's options.inc, which is otherwise as it was
    options = sysm.read(ADMIN_RSPAMD)
    assert options.startswith(ADMIN_RSPAMD_TEXT + "\n# BEGIN imunifyemail rspamd"), options
    assert '"/usr/share/imunifyemail/rspamd/local.d/options.inc"' in options
    assert sysm.run(["stat", "-c", "%a", ADMIN_RSPAMD]).stdout.strip() == "664"
    assert '"/usr/share/imunifyemail/rspamd/override.d/worker-normal.inc"' in \
        sysm.read("/etc/rspamd/override.d/worker-normal.inc")

    # services: enabled and started through systemctl
    assert [server.unit(u) for u in UNITS] == ["active"] * 3
    systemctl = [c["argv"] for c in server.calls("systemctl")]
    assert ["daemon-reload"] in systemctl and ["enable", "--now", "rspamd.service"] in systemctl
    assert systemctl.index(["restart", "rspamd.service"]) < \
        systemctl.index(["enable", "--now", *UNITS])   # Rspamd on our sockets, with their group, before mail comes


def test_installed_commands_run_from_the_installed_tree(server):
    sysm = server.system
    assert sysm.run(["/usr/bin/ie-cli", "version"]).stdout.strip() == "ie-cli version 0.1.0"
    assert sysm.run(["/usr/bin/ie-config", "version"]).stdout.strip() == "ie-config version 0.1.0"
    where = sysm.run(["/opt/imunifyemail/bin/python3", "-c",
                      "import sys, imunifyemail; print(sys.prefix); print(imunifyemail.__file__)"]).stdout.split()
    assert where == ["/opt/imunifyemail",
                     f"/opt/imunifyemail/lib/python{PYVER[server.flavour]}/site-packages/imunifyemail/__init__.py"]
    assert sysm.run(["head", "-1", "/opt/imunifyemail/bin/ie-cli"]).stdout.strip() == \
        "#!/opt/imunifyemail/bin/python3"
    status = json.loads(sysm.run(["/usr/bin/ie-config", "status", "--json"]).stdout)
    assert status["filter"]["enabled"] is True
    # the stand-in systemctl says "active", but nothing answers on the sockets: status says so
    assert status["daemon"]["service"] == "active" and status["daemon"]["running"] is False
    assert status["web"]["service"] == "active" and status["web"]["running"] is False
    assert sysm.rpm("-V", "--nodeps", "imunifyemail", check=False).stdout == ""   # nothing of the tree was rewritten


HELD = """
import sys
from imunifyemail import config, paths
from imunifyemail.context import Context
from imunifyemail.store.quarantine import NewMessage
ctx = Context()
for account in sys.argv[1:]:
    ctx.quarantine.add(NewMessage(account=account, sender=f"x@{account}.test", recipients=("r@remote.example",),
                                  subject="held for " + account, reasons=("spam",)), b"Subject: held\\r\\n\\r\\nbody\\r\\n")
ctx.close()
"""


def hook_payload(event: str, **data) -> str:
    return json.dumps({"context": {"category": "Whostmgr", "event": event, "stage": "post", "point": "main"},
                       "data": data, "hook": {"hook": "x", "exectype": "script", "stage": "post"}})


def test_installed_hooks_follow_a_rename_and_a_removal(server):
    sysm = server.system
    # held as the daemon holds mail: as _imunifyemail, whose storage it is
    sysm.run(["setpriv", "--reuid=_imunifyemail", "--regid=_imunifyemail", "--init-groups",
              "/opt/imunifyemail/bin/python3", "-c", HELD, "demo1", "demo2"])
    # cPanel renamed demo1 to demo7 and removed demo2: its map says so by the post stage
    sysm.run(["sh", "-c", "sed -i -e 's/: demo1$/: demo7/' -e '/: demo2$/d' /etc/userdomains && "
                          "mv /var/cpanel/users/demo1 /var/cpanel/users/demo7 && rm /var/cpanel/users/demo2"])
    renamed = sysm.run([HOOKS[1]], input=hook_payload("Accounts::Modify", user="demo1", newuser="demo7",
                                                        domain="demo1.test"))
    assert renamed.stdout.startswith("1 "), renamed
    removed = sysm.run([HOOKS[0]], input=hook_payload("Accounts::Remove", user="demo2", killdns=1,
                                                       keep_remote_databases=0))
    assert removed.stdout.startswith("1 ") and "1 email(s)" in removed.stdout, removed
    held = json.loads(sysm.run(["/usr/bin/ie-cli", "emails", "list", "-a", "root", "--json"]).stdout)["items"]
    assert [(m["account_name"], m["subject"]) for m in held] == [("demo7", "held for demo1")]
    bad = sysm.run([HOOKS[0]], input="{not json", check=False)
    assert bad.returncode == 1 and "not JSON" in bad.stderr


def test_upgrade_registers_nothing_again_and_reapplies_exim(server, rpms):
    sysm = server.system
    sysm.run(["sh", "-c", "cat > /etc/exim.conf.local"], input=ADMIN_LOCAL)   # a WHM reset lost our blocks
    seen = len(server.calls())
    proc = sysm.rpm("-U", "--nodeps", str(rpms[2]))
    assert "Imunify Email upgraded" in proc.stdout, proc.stdout
    suffix = "" if server.flavour == "local" else f".{server.flavour}"
    assert sysm.rpm("-q", "imunifyemail").stdout.strip() == f"imunifyemail-0.1.0-2{suffix}.x86_64"
    after = server.calls()[seen:]
    programs = [c["program"] for c in after]
    for program in ("register_appconfig", "unregister_appconfig", "install_plugin", "uninstall_plugin",
                    "manage_hooks"):
        assert program not in programs, after
    assert ["restart", *UNITS] in [c["argv"] for c in after if c["program"] == "systemctl"]
    assert ["try-restart", "rspamd.service"] in [c["argv"] for c in after if c["program"] == "systemctl"]
    assert "buildeximconf" in programs and "restartsrv_exim" in programs
    assert "# BEGIN imunifyemail router" in sysm.read("/etc/exim.conf.local")
    assert sysm.read(ADMIN_RSPAMD).count("# BEGIN imunifyemail rspamd") == 1
    assert len(server.ours_in(server.hooks())) == 2 and sysm.exists("/var/cpanel/apps/imunifyemail.conf")
    assert [server.unit(u) for u in UNITS] == ["active"] * 3


HAM = b"From: shop <php@demo1.test>\r\nTo: someone@remote.example\r\nSubject: installed ham\r\n\r\nhello\r\n"
GTUBE = (b"From: shop <php@demo1.test>\r\nTo: someone@remote.example\r\nSubject: installed gtube\r\n\r\n"
         b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n")
WHM_CGI = "/usr/local/cpanel/whostmgr/docroot/cgi/imunifyemail/index.cgi"
PLAIN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}


class InstalledStack:
    """What systemd would start on the server, started by hand in the scratch system (its systemctl only
    records): Rspamd as its unit runs it, our two services from the installed tree, Exim on the
    configuration cPanel built, and the sink standing in for the Internet (the administrator's
    smarthost router, ADMIN_LOCAL, sends remote mail to it)."""

    def __init__(self, server: Server, work: Path):
        self.sys = server.system
        self.work = work
        self.sink_dir = work / "sink"
        self.procs = {}
        self.exim = EximDaemon(EximLayout(Path("/"), 2525, 2526, hostname="server.scratch.test",
                                          exim_user=CPANEL_USER), server.system.ns)

    def spawn(self, name: str, argv, user=None, **env) -> None:
        with open(self.work / f"{name}.err", "wb") as err:
            self.procs[name] = self.sys.ns.popen(argv, user=user, stdin=subprocess.DEVNULL,
                                                 stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                                                 env={**PLAIN_ENV, **env})

    def alive(self, name: str) -> bool:
        assert self.procs[name].poll() is None, (name, (self.work / f"{name}.err").read_text()[-5000:])
        return True

    def start(self) -> "InstalledStack":
        self.sink_dir.mkdir()
        self.spawn("sink", [sys.executable, "-m", "devtools.sink", "--port", "2526", "--dir", str(self.sink_dir)],
                   PYTHONPATH=str(REPO))
        # Rspamd's unit: User=_rspamd (a member of _imunifyemail since %pre), RuntimeDirectory=rspamd.
        # %pre made _rspamd anew in this system: its state directories become its own, as on a server.
        self.sys.run(["install", "-d", "-o", "_rspamd", "-g", "_rspamd", "/run/rspamd"])
        self.sys.run(["chown", "-R", "_rspamd:_rspamd", "/var/lib/rspamd", "/var/log/rspamd"])
        self.spawn("rspamd", ["rspamd", "-c", "/etc/rspamd/rspamd.conf", "-f"], user="_rspamd")
        eventually(lambda: self.alive("rspamd") and self.sys.exists("/run/rspamd/normal.sock"),
                   "Rspamd's scanner socket", 180)
        self.spawn("daemon", ["/usr/sbin/imunifyemaild"])
        self.spawn("web", ["/usr/sbin/imunifyemail-web"])
        eventually(lambda: self.alive("daemon") and self.alive("web") and all(
            self.sys.exists(f"/run/imunifyemail/{sock}") for sock in ("filter.sock", "control.sock", "admin.sock")),
            "the installed daemon and web app", 120)
        self.exim.start()
        return self

    def stop(self) -> None:
        self.exim.stop()
        for proc in self.procs.values():
            processes.stop(proc, 30)
        self.sys.run(["rm", "-rf", "/run/rspamd"])

    def executable(self, name: str) -> str:
        """The binary a service's process runs (nsenter execs the command: the same pid)."""
        return os.readlink(f"/proc/{self.procs[name].pid}/exe")

    def diagnosis(self) -> str:
        """What each part said, for a failure's message."""
        logs = {name: (self.work / f"{name}.err").read_text(errors="replace")[-4000:] for name in self.procs}
        for log in ("mainlog", "paniclog"):
            logs[f"exim {log}"] = self.sys.run(["cat", f"/var/log/exim/{log}"], check=False).stdout[-3000:]
        logs["spool"] = self.sys.run(["ls", "-lnR", "/var/spool/exim"], check=False).stdout[-1500:]
        logs["ids"] = self.sys.run(["sh", "-c", "id mailnull; id _imunifyemail; getent group mail; grep -i 'uid\\|gid\\|groups' /proc/%d/status" % self.procs["daemon"].pid], check=False).stdout
        return "\n".join(f"--- {name} ---\n{text}" for name, text in logs.items())

    def delivered(self) -> list:
        return sorted(p.read_bytes().split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
                      for p in self.sink_dir.glob("*.eml"))


def test_the_installed_tree_runs_the_mail_path_on_its_interpreter(server, tmp_path):
    sysm = server.system
    stack = InstalledStack(server, tmp_path)
    try:
        stack.start()
        interpreter = "/usr/bin/python3.9" if server.flavour != "local" else \
            sysm.run(["readlink", "-f", "/usr/bin/python3"]).stdout.strip()
        assert stack.executable("daemon") == interpreter and stack.executable("web") == interpreter

        # root submits for the owner of demo1.test (demo7 since the rename above), as a PHP script would
        for message in (HAM, GTUBE):
            sysm.ns.run(["/usr/sbin/sendmail", "-odi", "-oi", "-f", "php@demo1.test", "someone@remote.example"],
                        input=message)
        try:
            eventually(lambda: stack.delivered() == ["installed ham"], "the ham at the sink", 60)
        except TimedOut:
            raise AssertionError(f"sink has {stack.delivered()}\n{stack.diagnosis()}") from None
        held = json.loads(sysm.run(["/usr/bin/ie-cli", "emails", "list", "-a", "demo7", "--json"]).stdout)["items"]
        assert [(m["subject"], m["reasons"]) for m in held if m["subject"].startswith("installed")] == \
            [("installed gtube", ["spam"])], held
        assert stack.exim.queue() == {}   # nothing left waiting

        # WHM → Plugins → Imunify Email: the installed CGI, as WHM runs it, through the web app's admin socket
        env = {**PLAIN_ENV, "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET", "QUERY_STRING": "",
               "REMOTE_USER": "root", "SCRIPT_NAME": "/cgi/imunifyemail/index.cgi",
               "cp_security_token": "/cpsess0123456789", "SERVER_SOFTWARE": "cpsrvd/11.120"}
        page = sysm.run([WHM_CGI], env=env).stdout
        assert page.startswith("Status: 200"), page[:500]
        assert "installed gtube" in page and "demo7" in page
        print(f"\n{server.flavour}: daemon and web app on {interpreter}; sink got {stack.delivered()}; "
              f"held {[m['subject'] for m in held]}")
    finally:
        stack.stop()


# Left on a server after the erase, by design: the quarantine (ours, kept) and what is not ours:
# the rpm database, the users' files, the stand-ins' record, cPanel's (emptied) registries and the
# accounts this test renamed.
KEPT = ("/var/imunifyemail",)
CPANEL_REGISTRIES = ("/var/cpanel/hooks", "/var/cpanel/apps", f"{CPANEL}/whostmgr/addonfeatures",
                     f"{CPANEL}/base/frontend/jupiter/dynamicui", f"{CPANEL}/base/frontend/jupiter/branding")
NOT_OURS = ("/var/lib/rpm", "/var/lib", "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow",
            "/etc/.pwd.lock", "/etc/subuid", "/etc/subgid", cpanel_standins.CALL_LOG,
            cpanel_standins.UNIT_STATE_DIR, "/var/log", "/run", "/var/cache/ldconfig", "/var/cpanel/users",
            "/etc/userdomains", "/var/spool/exim", "/var/mail") + CPANEL_REGISTRIES
# Other programs' logs and state (Exim's, Rspamd's) name our router and socket, rightly.
THEIR_STATE = ("/var/log", "/var/spool/exim", "/var/lib/rspamd", "/run")


def test_erase_undoes_every_registration_and_keeps_the_quarantine(server):
    sysm = server.system
    seen = len(server.calls())
    proc = sysm.rpm("-e", "imunifyemail")
    assert "Imunify Email disabled" in proc.stdout, proc.stdout
    assert sysm.rpm("-q", "imunifyemail", check=False).returncode == 1
    after = [(c["program"], c["argv"]) for c in server.calls()[seen:]]
    assert ("unregister_appconfig", ["imunifyemail"]) in after
    assert ("uninstall_plugin", ["/usr/share/imunifyemail/cpanel", "--theme", "jupiter"]) in after
    assert [a for p, a in after if p == "manage_hooks" and a[0] == "delete"] == \
        [["delete", "script", HOOKS[1]], ["delete", "script", HOOKS[0]]]
    assert ("systemctl", ["try-reload-or-restart", "rspamd.service"]) in after   # our overrides left

    # WHM, cPanel, hooks, Exim, systemd: nothing of ours
    assert not sysm.exists("/var/cpanel/apps/imunifyemail.conf")
    assert not sysm.exists(f"{CPANEL}/base/frontend/jupiter/dynamicui/dynamicui_imunifyemail.conf")
    assert not sysm.exists(f"{CPANEL}/whostmgr/addonfeatures/imunifyemail")
    assert server.ours_in(server.hooks()) == []
    assert not sysm.exists(f"{CPANEL}/scripts/postbuildeximconf")
    assert sysm.read("/etc/exim.conf.local") == ADMIN_LOCAL   # byte for byte
    assert sysm.read(ADMIN_RSPAMD) == ADMIN_RSPAMD_TEXT        # byte for byte, and its mode
    assert sysm.run(["stat", "-c", "%a", ADMIN_RSPAMD]).stdout.strip() == "664"
    assert sysm.read("/etc/exim.conf") == server.exim_conf_before
    assert [server.unit(u) for u in UNITS] == ["inactive"] * 3

    # a listing of the whole root: only the kept quarantine is ours
    new = {p: kind for p, kind in sysm.changes().items() if server.before_install.get(p) != kind}
    leftovers = sorted(f"{p} ({new[p]})" for p in new if not p.startswith(KEPT + NOT_OURS))
    assert leftovers == [], leftovers
    for registry in CPANEL_REGISTRIES:
        assert sysm.run(["find", registry, "-type", "f"]).stdout == "", registry   # emptied
    ours = sorted(p for p in new if p.startswith(KEPT))
    assert ours[:3] == ["/var/imunifyemail", "/var/imunifyemail/quarantine", "/var/imunifyemail/quarantine/storage"]
    assert "/var/imunifyemail/quarantine/storage/quarantine.db" in ours
    assert not [p for p in ours if not p.startswith("/var/imunifyemail/quarantine/storage")
                and p not in ("/var/imunifyemail", "/var/imunifyemail/quarantine")], ours
    for path in [p for p in new if p.startswith(NOT_OURS) and new[p] == "file" and not p.startswith(
            ("/var/lib/rpm", cpanel_standins.CALL_LOG, "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow")
            + THEIR_STATE)]:
        assert "imunifyemail" not in sysm.read(path), path
    print(f"\nleft after erase (ours): {ours}")
