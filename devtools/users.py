"""System users the product needs, created the way the RPM does."""
import pwd
import subprocess


def ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", name], check=True)


def ensure_hosted_user(name: str) -> pwd.struct_passwd:
    """A cPanel account's Unix user (real: hosted users submit and browse with their own uid)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--user-group", "--home-dir", f"/home/{name}", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", name], check=True)
        return pwd.getpwnam(name)
