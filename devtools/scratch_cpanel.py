"""Make a :class:`devtools.scratch_system.ScratchSystem` look like a cPanel server before the RPM
goes in. Run inside it, as root: ``python -m devtools.scratch_cpanel`` (from the checkout);
``--booted`` in a system booted with systemd (:mod:`devtools.booted_system`): its own ``systemctl``
is kept (every other stand-in goes in), and so is Rspamd's user, whose running service and files
are the Rspamd package's (on a server the package the RPM requires made it before ``%pre`` runs).

* cPanel itself: ``/usr/local/cpanel/cpanel``, the jupiter theme, WHM's docroot, the account map
  (``/etc/userdomains`` root:mail 0640, ``/var/cpanel/users``), the Exim user ``mailnull``
  (group ``mail``), Exim running as it;
* Exim: cPanel's template at its path, ``buildeximconf``/``restartsrv_exim``/``systemctl``
  stand-ins (:mod:`devtools.cpanel_standins`), the registration stand-ins
  (:mod:`devtools.cpanel_registry_standins`), and the administrator's own ``exim.conf.local``
  (:data:`ADMIN_LOCAL`: tabs, trailing spaces, a smarthost router of its own) built into
  ``/etc/exim.conf``;
* none of the product's users or groups: the package's ``%pre`` must create them.
"""
import argparse
import grp
import os
import pwd
import subprocess
from pathlib import Path

from devtools import cpanel_registry_standins
from devtools.exim import EximLayout, prepare

ACCOUNTS = {"demo1": ["demo1.test", "shop.demo1.test"], "demo2": ["demo2.test"]}
CPANEL_USER = "mailnull"
OURS = {"users": ("_imunifyemail", "_rspamd"), "groups": ("_imunify", "_imunifyemail", "_rspamd")}
ADMIN_LOCAL = (
    "@AUTH@\n\n"
    "@BEGINACL@\n\n"
    "@CONFIG@\n"
    "message_size_limit = 60M   \n"
    "\t# the administrator's note, indented with a tab\t\n\n"
    "@ENDACL@\n\n"
    "@POSTMAILCOUNT@\n"
    "admin_smarthost:\n"
    "\tdriver = manualroute\n"
    "\tdomains = ! +local_domains\n"
    "\ttransport = remote_smtp   \n"
    "\troute_list = * 127.0.0.1::2526\n"
    "\tself = send\n"   # the smarthost is this machine's sink: deliver there, do not freeze
    "\tno_more\n\n"
    "@PREROUTERS@\n\n"
    "@RETRYEND@\n\n"
    "@TRANSPORTSTART@\n"
    "  \n"
)


def _exists(lookup, name: str) -> bool:
    try:
        lookup(name)
        return True
    except KeyError:
        return False


def run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.scratch_cpanel")
    parser.add_argument("--booted", action="store_true",
                        help="the system runs systemd: keep its systemctl and Rspamd's user")
    args = parser.parse_args()
    kept = ("_rspamd",) if args.booted else ()
    for user in OURS["users"]:
        if user not in kept and _exists(pwd.getpwnam, user):
            run("userdel", "--force", user)   # --force: the host may run processes as that user
    for group in OURS["groups"]:
        if group not in kept and _exists(grp.getgrnam, group):
            run("groupdel", group)
    if not _exists(pwd.getpwnam, CPANEL_USER):
        # as on cPanel: mailnull's group is mail (Exim's spool is mailnull:mail)
        run("useradd", "--system", "--gid", "mail", "--no-create-home", "--shell", "/sbin/nologin", CPANEL_USER)

    marker = Path("/usr/local/cpanel/cpanel")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("#!/bin/sh\necho 'cPanel & WHM (stand-in of the scratch system)'\n")
    marker.chmod(0o755)
    for d in ("/usr/local/cpanel/base/frontend/jupiter", "/usr/local/cpanel/whostmgr/docroot/cgi",
              "/usr/local/cpanel/whostmgr/docroot/addon_plugins", "/var/cpanel/users"):
        Path(d).mkdir(parents=True, exist_ok=True)
    userdomains = Path("/etc/userdomains")
    userdomains.write_text("".join(f"{d}: {u}\n" for u, ds in ACCOUNTS.items() for d in ds) + "*: nobody\n")
    os.chown(userdomains, 0, grp.getgrnam("mail").gr_gid)
    userdomains.chmod(0o640)
    for user, domains in ACCOUNTS.items():
        f = Path("/var/cpanel/users") / user
        f.write_text(f"DNS={domains[0]}\nOWNER=root\n")
        f.chmod(0o600)

    local = Path("/etc/exim.conf.local")
    local.write_text(ADMIN_LOCAL)
    local.chmod(0o644)
    prepare(EximLayout(Path("/"), 2525, 2526, hostname="server.scratch.test", exim_user=CPANEL_USER),
            [d for ds in ACCOUNTS.values() for d in ds], systemctl=not args.booted)
    cpanel_registry_standins.install(Path("/"))


if __name__ == "__main__":
    main()
