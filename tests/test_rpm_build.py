"""The RPM as built by `make rpm` (rpm/build.sh) for each flavour — local (this machine's Python), el8
and el9 (Python 3.9): rpmlint, the signature, the file list with owners and modes, the .pyc files of the
flavour's interpreter, the scriptlets' `$1` guards, the dependencies, the units. Installing it is
tests/test_rpm_install.py."""
import importlib.util
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from devtools.packages import PYVER

pytestmark = pytest.mark.rpm

REPO = Path(__file__).resolve().parent.parent
# flavour -> (Python, the interpreter the tree links to, what names it in Requires:, release suffix)
FLAVOURS = {
    "local": (PYVER["local"], "/usr/bin/python3", f"/usr/bin/python{PYVER['local']}", ""),
    "el8": (PYVER["el8"], "/usr/bin/python3.9", "python39", ".el8"),   # AppStream's python39 module stream
    "el9": (PYVER["el9"], "/usr/bin/python3.9", "python3", ".el9"),    # EL9's own python3 is 3.9
}
# The first two bytes of a .pyc: the interpreter's magic number (3.9: 3425)
PYC_MAGIC = {"3.9": (3425).to_bytes(2, "little") + b"\r\n", PYVER["local"]: importlib.util.MAGIC_NUMBER}


def rpm_query(path: Path, *args: str) -> str:
    proc = subprocess.run(["rpm", "-qp", *args, str(path)], capture_output=True, text=True, check=True)
    return proc.stdout


@pytest.fixture(scope="module", params=list(FLAVOURS))
def flavour(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def package(packages, flavour) -> Path:
    return packages[flavour][1]


@pytest.fixture(scope="module")
def site(flavour) -> str:
    return f"/opt/imunifyemail/lib/python{FLAVOURS[flavour][0]}/site-packages"


def test_the_package_is_named_for_its_system(package, flavour):
    assert package.name == f"imunifyemail-0.1.0-1{FLAVOURS[flavour][3]}.x86_64.rpm"
    assert rpm_query(package, "--qf", "%{ARCH}") == "x86_64"


def test_the_package_is_signed_with_the_release_key(package, signing_key):
    with tempfile.TemporaryDirectory(prefix="ie-rpmdb-") as db:
        unknown = subprocess.run(["rpmkeys", "--dbpath", db, "--checksig", str(package)],
                                 capture_output=True, text=True)
        assert unknown.returncode != 0 and "SIGNATURES NOT OK" in unknown.stdout, unknown.stdout   # NOKEY
        subprocess.run(["rpmkeys", "--dbpath", db, "--import", str(signing_key.public_key)], check=True)
        known = subprocess.run(["rpmkeys", "--dbpath", db, "--checksig", str(package)],
                               capture_output=True, text=True)
        detail = subprocess.run(["rpmkeys", "--dbpath", db, "--checksig", "-v", str(package)],
                                capture_output=True, text=True).stdout
    assert known.returncode == 0 and known.stdout.rstrip().endswith("digests signatures OK"), known.stdout
    key_id = signing_key.fingerprint[-8:].lower()
    assert re.search(rf"Header V4 RSA/SHA\d+ Signature, key ID {key_id}: OK", detail), detail


@pytest.fixture(scope="module")
def files(package) -> dict:
    """path -> (mode string, owner, group, flags)"""
    out = rpm_query(package, "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} "
                                     "%{FILEFLAGS:fflags}| %{FILENAMES}\n]")
    table = {}
    for line in out.splitlines():
        meta, _, path = line.partition("| ")
        mode, owner, group, *flags = meta.split()
        table[path] = (mode, owner, group, flags[0] if flags else "")
    return table


def test_rpmlint_reports_no_error_and_every_warning_is_justified(package, signing_key, tmp_path):
    # rpmlint checks the signature with `rpm -Kv` against the rpm keyring, as a server would once it
    # has imported the release key: a keyring of its own, named by $HOME/.rpmmacros.
    subprocess.run(["rpmkeys", "--dbpath", str(tmp_path / "rpmdb"), "--import", str(signing_key.public_key)],
                   check=True)
    (tmp_path / ".rpmmacros").write_text(f"%_dbpath {tmp_path / 'rpmdb'}\n")
    proc = subprocess.run(["rpmlint", "-c", str(REPO / "rpm/rpmlint.override.toml"), str(package)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HOME": str(tmp_path)})
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.search(r"\b0 errors\b", summary), proc.stdout[-4000:]
    warnings = set(re.findall(r": W: (\S+)", proc.stdout))
    readme = (REPO / "rpm/README.md").read_text()
    unexplained = sorted(w for w in warnings if f"`{w}`" not in readme)
    assert not unexplained, f"rpmlint warnings not justified in rpm/README.md: {unexplained}"


EXPECTED = {
    # path: (mode, owner, group, flags)
    "/opt/imunifyemail/bin/ie-cli": ("-rwxr-xr-x", "root", "root", ""),
    "/opt/imunifyemail/bin/ie-config": ("-rwxr-xr-x", "root", "root", ""),
    "/opt/imunifyemail/bin/imunifyemaild": ("-rwxr-xr-x", "root", "root", ""),
    "/opt/imunifyemail/bin/imunifyemail-web": ("-rwxr-xr-x", "root", "root", ""),
    "/opt/imunifyemail/bin/python3": ("lrwxrwxrwx", "root", "root", ""),
    "/opt/imunifyemail/pyvenv.cfg": ("-rw-r--r--", "root", "root", ""),
    "/opt/imunifyemail/hooks/accounts-remove": ("-rwxr-xr-x", "root", "root", ""),
    "/opt/imunifyemail/hooks/accounts-modify": ("-rwxr-xr-x", "root", "root", ""),
    "/usr/bin/ie-cli": ("lrwxrwxrwx", "root", "root", ""),
    "/usr/bin/ie-config": ("lrwxrwxrwx", "root", "root", ""),
    "/usr/sbin/imunifyemaild": ("lrwxrwxrwx", "root", "root", ""),
    "/usr/sbin/imunifyemail-web": ("lrwxrwxrwx", "root", "root", ""),
    "/usr/lib/systemd/system/imunifyemaild.service": ("-rw-r--r--", "root", "root", ""),
    "/usr/lib/systemd/system/imunifyemail-web.service": ("-rw-r--r--", "root", "root", ""),
    "/usr/lib/systemd/system/imunifyemail-notify.service": ("-rw-r--r--", "root", "root", ""),
    "/usr/lib/systemd/system/imunifyemail-notify.timer": ("-rw-r--r--", "root", "root", ""),
    "/etc/imunifyemail": ("drwxr-xr-x", "root", "root", ""),
    "/etc/imunifyemail/config.yaml": ("-rw-r--r--", "root", "root", "cn"),
    # Rspamd's: files of the package, included from the administrator's /etc/rspamd by %post
    "/usr/share/imunifyemail/rspamd/override.d/worker-normal.inc": ("-rw-r--r--", "root", "root", ""),
    "/usr/share/imunifyemail/rspamd/override.d/worker-controller.inc": ("-rw-r--r--", "root", "root", ""),
    "/usr/share/imunifyemail/rspamd/override.d/worker-proxy.inc": ("-rw-r--r--", "root", "root", ""),
    "/usr/share/imunifyemail/rspamd/override.d/worker-fuzzy.inc": ("-rw-r--r--", "root", "root", ""),
    "/usr/share/imunifyemail/rspamd/local.d/options.inc": ("-rw-r--r--", "root", "root", ""),
    "/usr/share/imunifyemail/rspamd/local.d/greylist.conf": ("-rw-r--r--", "root", "root", ""),
    "/usr/share/imunifyemail/rspamd/local.d/ratelimit.conf": ("-rw-r--r--", "root", "root", ""),
    "/usr/share/imunifyemail/exim_conf/router.conf": ("-rw-r--r--", "root", "root", ""),
    "/usr/share/imunifyemail/exim_conf/incoming.conf": ("-rw-r--r--", "root", "root", ""),
    "/usr/share/imunifyemail/whm/imunifyemail.conf": ("-rw-r--r--", "root", "root", ""),
    "/usr/share/imunifyemail/cpanel/install.json": ("-rw-r--r--", "root", "root", ""),
    "/usr/share/imunifyemail/cpanel/imunifyemail.svg": ("-rw-r--r--", "root", "root", ""),
    "/usr/local/cpanel/whostmgr/docroot/cgi/imunifyemail/index.cgi": ("-rwxr-xr-x", "root", "root", ""),
    "/usr/local/cpanel/whostmgr/docroot/addon_plugins/imunifyemail.svg": ("-rw-r--r--", "root", "root", ""),
    "/usr/local/cpanel/base/frontend/jupiter/imunifyemail/index.live.cgi": ("-rwxr-xr-x", "root", "root", ""),
    "/var/imunifyemail": ("drwxr-xr-x", "root", "root", ""),
    "/var/imunifyemail/quarantine": ("drwxr-xr-x", "root", "root", ""),
    "/var/imunifyemail/quarantine/storage": ("drwx------", "_imunifyemail", "_imunifyemail", ""),
    "/var/imunifyemail/web-secret": ("-rw-------", "_imunifyemail", "_imunifyemail", "g"),
    "/var/imunifyemail/exim-config.lock": ("-rw-r--r--", "root", "root", "g"),
    "/var/imunifyemail/notify.lock": ("-rw-r--r--", "root", "root", "g"),
    "/var/imunifyemail/cpanel-holds.json": ("-rw-------", "root", "root", "g"),
    "/var/imunifyemail/metrics": ("drwxr-s---", "_imunifyemail", "_imunifyemail", ""),
    "/var/imunifyemail/metrics/imunifyemail.prom": ("-rw-r-----", "_imunifyemail", "_imunifyemail", "g"),
    "/run/imunifyemail": ("drwxr-xr-x", "root", "root", "g"),
}
ALLOWED_PREFIXES = ("/opt/imunifyemail", "/usr/share/imunifyemail", "/usr/share/doc/imunifyemail",
                    "/usr/local/cpanel/whostmgr/docroot/cgi/imunifyemail",
                    "/usr/local/cpanel/base/frontend/jupiter/imunifyemail")


def test_files_owners_and_modes(files):
    for path, expected in EXPECTED.items():
        assert files.get(path) == expected, (path, files.get(path))
    elsewhere = sorted(p for p in files if not p.startswith(ALLOWED_PREFIXES) and p not in EXPECTED)
    assert elsewhere == [], elsewhere
    print(f"\n{len(files)} files; e.g.:\n" + "\n".join(f"  {' '.join(files[p])} {p}" for p in sorted(EXPECTED)))


def test_the_dashboard_and_the_alert_rules_are_the_packages_docs(files):
    """README "Dashboard and alerts": /usr/share/doc/imunifyemail/monitoring/ on EL (rpm's %_docdir_fmt
    adds the version on some builders)."""
    for name in ("imunifyemail-dashboard.json", "imunifyemail-alerts.yml"):
        found = [files[p] for p in files
                 if re.fullmatch(rf"/usr/share/doc/imunifyemail(-[\d.]+)?/monitoring/{re.escape(name)}", p)]
        assert found == [("-rw-r--r--", "root", "root", "d")], (name, found)


def test_the_tree_is_compiled_by_its_own_interpreter_so_nothing_is_written_at_run_time(files, site, flavour,
                                                                                       package, tmp_path):
    pyver = FLAVOURS[flavour][0]
    tag = "cpython-" + pyver.replace(".", "")
    sources = {p for p in files if p.startswith(site) and p.endswith(".py")}
    compiled = {p for p in files if p.endswith(f".{tag}.pyc")}
    assert not [p for p in files if p.endswith(".pyc") and p not in compiled]   # no other interpreter's
    missing = [s for s in sources if not any(c.startswith(s.rsplit("/", 1)[0] + "/__pycache__/"
                                                          + s.rsplit("/", 1)[1][:-3] + ".") for c in compiled)]
    assert sources and not missing, missing[:5]
    assert f"{site}/imunifyemail/account_hooks.py" in sources
    assert not [p for p in files if p.startswith(f"{site}/bin")]
    # the bytes themselves: the magic number of the flavour's Python, checked-hash (flags 0b11)
    pyc = f"{site}/imunifyemail/__pycache__/__init__.{tag}.pyc"
    cpio = subprocess.run(f"rpm2cpio {package} | cpio -i --quiet --to-stdout .{pyc}", shell=True,
                          capture_output=True, check=True).stdout
    assert cpio[:4] == PYC_MAGIC[pyver] and int.from_bytes(cpio[4:8], "little") == 0b11


def test_scriptlets_guard_on_the_instance_count(package):
    scripts = rpm_query(package, "--scripts")
    parts = dict(re.findall(r"^(\w+) scriptlet \(using /bin/sh\):\n(.*?)(?=^\w+ scriptlet|\Z)", scripts,
                            re.MULTILINE | re.DOTALL))
    assert set(parts) == {"preinstall", "postinstall", "preuninstall", "postuninstall", "posttrans"}
    assert 'if [ "$1" -eq 1 ]; then' in parts["postinstall"]
    assert "register_appconfig" in parts["postinstall"].split("else")[0]
    assert "ie-config upgrade" in parts["postinstall"].split("else")[1]
    assert 'if [ "$1" -eq 0 ]; then' in parts["preuninstall"]
    for step in ("ie-config disable", "manage_hooks delete", "uninstall_plugin", "unregister_appconfig"):
        assert step in parts["preuninstall"]
    for text in parts.values():
        assert not re.search(r"\|\|\s*(true|:)\b", text)
        assert "chown -R" not in text and "chmod -R" not in text
    for user in ("_imunify", "_imunifyemail", "_rspamd"):
        assert f"getent {'group' if user == '_imunify' else 'passwd'} {user}" in parts["preinstall"]
    assert "usermod --append --groups _imunifyemail _rspamd" in parts["preinstall"]   # its sockets' group
    assert "systemctl restart rspamd.service" in parts["postinstall"].split("else")[0]
    assert "systemctl try-restart rspamd.service" in parts["postinstall"].split("else")[1]
    # our blocks in the administrator's /etc/rspamd: in before Rspamd restarts, out on erase, mended
    # after an upgrade's transaction
    install = parts["postinstall"].split("else")[0]
    assert install.index("ie-config rspamd-files install") < install.index("systemctl restart rspamd.service")
    assert "ie-config rspamd-files remove" in parts["preuninstall"]
    # the learning files (imunifyemail.rspamd_learning) before Rspamd (re)starts, gone on erase
    assert install.index("ie-config rspamd-learning --no-restart") < install.index("systemctl restart rspamd.service")
    assert "ie-config rspamd-learning --remove" in parts["preuninstall"]
    assert "ie-config rspamd-files check" in parts["posttrans"]
    print("\n" + scripts)


def test_dependencies_name_the_systems_own_interpreter(package, flavour, files):
    requires = {r.strip() for r in rpm_query(package, "-R").split("\n")}
    _, interpreter, package_name, _ = FLAVOURS[flavour]
    assert {"rspamd", package_name, "/usr/sbin/useradd", "/usr/sbin/groupadd", "/usr/bin/systemctl"} <= requires
    pythons = sorted(r for r in requires if "python" in r)
    assert pythons == [package_name], pythons   # one interpreter, the one the tree links to
    link = rpm_query(package, "--qf", "[%{FILENAMES} -> %{FILELINKTOS}\n]")
    assert f"/opt/imunifyemail/bin/python3 -> {interpreter}" in link.splitlines()
    assert not [r for r in requires if r.startswith(("lib", "python3dist", "python(abi)"))]


@pytest.mark.parametrize("unit", ["imunifyemaild.service", "imunifyemail-web.service"])
def test_units_run_in_the_foreground_and_restart_on_failure(unit, files):
    text = (REPO / "rpm" / unit).read_text()
    for line in ("Type=notify", "RuntimeDirectory=imunifyemail", "Restart=on-failure", "RuntimeDirectoryPreserve=yes",
                 "WantedBy=multi-user.target"):
        assert line in text.splitlines(), (unit, line)
    exec_start = re.search(r"^ExecStart=(\S+)$", text, re.MULTILINE).group(1)
    assert exec_start in files   # the command the unit runs is in the package
    assert "User=" not in text   # both start as root and drop privileges themselves


def test_the_notifications_run_every_minute_as_a_oneshot_of_the_packaged_command(files):
    service = (REPO / "rpm/imunifyemail-notify.service").read_text().splitlines()
    timer = (REPO / "rpm/imunifyemail-notify.timer").read_text().splitlines()
    assert "Type=oneshot" in service and "ExecStart=/usr/bin/ie-config notify" in service
    assert "/usr/bin/ie-config" in files and "User=" not in "\n".join(service)   # root: /var/cpanel/users
    assert "[Install]" not in service   # started by its timer only
    assert "OnCalendar=minutely" in timer and "WantedBy=timers.target" in timer
