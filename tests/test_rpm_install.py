"""The RPM installed for real — rpm, its own scriptlets, real useradd/groupadd — on a copy-on-write
view of this machine made to look like a cPanel server (devtools/scratch_system.py,
devtools/scratch_cpanel.py), with recording stand-ins for cPanel's programs and systemctl at their
real paths. Then an upgrade to a higher release and an erase. The tests run in order: each step
starts from the state the previous one left."""
import json
import re
import sys
import tempfile
from pathlib import Path

import pytest

from devtools import cpanel_standins
from devtools.scratch_cpanel import ADMIN_LOCAL
from devtools.scratch_system import ScratchSystem

pytestmark = pytest.mark.rpm

REPO = Path(__file__).resolve().parent.parent
CPANEL = "/usr/local/cpanel"
HOOKS = ("/opt/imunifyemail/hooks/accounts-remove", "/opt/imunifyemail/hooks/accounts-modify")
UNITS = ("imunifyemaild", "imunifyemail-web", "imunifyemail-notify.timer")
# The administrator's own Rspamd options, there before the install (0640, no final newline): kept.
ADMIN_RSPAMD = "/etc/rspamd/local.d/options.inc"
ADMIN_RSPAMD_TEXT = "# the administrator's\ncheck_all_filters = true;"


class Server:
    """The scratch system and what the stand-ins recorded in it."""

    def __init__(self, system: ScratchSystem):
        self.system = system
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


@pytest.fixture(scope="module")
def server():
    system = ScratchSystem(Path(tempfile.mkdtemp(prefix="ie-scratch-", dir="/tmp"))).start()
    try:
        system.run([sys.executable, "-m", "devtools.scratch_cpanel"], env={"PYTHONPATH": str(REPO)})
        system.run(["sh", "-c", f"mkdir -p /etc/rspamd/local.d && cat > {ADMIN_RSPAMD} && chmod 0640 {ADMIN_RSPAMD}"],
                   input=ADMIN_RSPAMD_TEXT)
        s = Server(system)
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
    assert sysm.run(["stat", "-c", "%a", ADMIN_RSPAMD]).stdout.strip() == "640"
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
    assert where == ["/opt/imunifyemail", "/opt/imunifyemail/lib/python3.11/site-packages/imunifyemail/__init__.py"]
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
    sysm.run(["/opt/imunifyemail/bin/python3", "-c", HELD, "demo1", "demo2"])
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
    assert sysm.rpm("-q", "imunifyemail").stdout.strip() == "imunifyemail-0.1.0-2.x86_64"
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


# Left on a server after the erase, by design: the quarantine (ours, kept) and what is not ours:
# the rpm database, the users' files, the stand-ins' record, cPanel's (emptied) registries and the
# accounts this test renamed.
KEPT = ("/var/imunifyemail",)
CPANEL_REGISTRIES = ("/var/cpanel/hooks", "/var/cpanel/apps", f"{CPANEL}/whostmgr/addonfeatures",
                     f"{CPANEL}/base/frontend/jupiter/dynamicui", f"{CPANEL}/base/frontend/jupiter/branding")
NOT_OURS = ("/var/lib/rpm", "/var/lib", "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow",
            "/etc/.pwd.lock", "/etc/subuid", "/etc/subgid", cpanel_standins.CALL_LOG,
            cpanel_standins.UNIT_STATE_DIR, "/var/log", "/run", "/var/cache/ldconfig", "/var/cpanel/users",
            "/etc/userdomains") + CPANEL_REGISTRIES


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
    assert sysm.run(["stat", "-c", "%a", ADMIN_RSPAMD]).stdout.strip() == "640"
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
            ("/var/lib/rpm", cpanel_standins.CALL_LOG, "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"))]:
        assert "imunifyemail" not in sysm.read(path), path
    print(f"\nleft after erase (ours): {ours}")
