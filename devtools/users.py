"""System users the product needs, created the way the RPM does."""
import grp
import pwd
import subprocess

DAEMON_USER = "_imunifyemail"
RSPAMD_USER = "_rspamd"
# The group of Rspamd's sockets (rpm/rspamd/override.d): the daemon's user's own group. Rspamd runs as
# _rspamd and may give a socket this group only as a member of it (the RPM's %pre adds it).
PRODUCT_GROUP = "_imunifyemail"


def ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", name], check=True)


def ensure_rspamd_serves_product() -> None:
    """``_rspamd`` in group ``_imunifyemail`` (the user and group made first if missing), as the RPM's %pre."""
    ensure_system_user(DAEMON_USER)
    pwd.getpwnam(RSPAMD_USER)   # Debian's rspamd package makes it
    if RSPAMD_USER not in grp.getgrnam(PRODUCT_GROUP).gr_mem:
        subprocess.run(["usermod", "--append", "--groups", PRODUCT_GROUP, RSPAMD_USER], check=True)


def ensure_hosted_user(name: str) -> pwd.struct_passwd:
    """A cPanel account's Unix user (real: hosted users submit and browse with their own uid)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--user-group", "--home-dir", f"/home/{name}", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", name], check=True)
        return pwd.getpwnam(name)
