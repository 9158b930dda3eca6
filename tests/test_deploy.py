"""imunifyemail-deploy.sh against fake /etc/os-release files (IMUNIFYEMAIL_DEPLOY_ROOT) with recording
`yum` and `rpm` stand-ins first on PATH: supported systems install once and a second run changes
nothing; anything else (EL7 and CentOS 8 with the way out) is refused before anything runs; the list
of supported systems is one list in usage, refusals and README; memory and disk minimums; --uninstall."""
import configparser
import functools
import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.rpm

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "imunifyemail-deploy.sh"

# Real os-release files (abridged to the fields the script reads).
SUPPORTED = {
    "almalinux-8": 'NAME="AlmaLinux"\nVERSION="8.10 (Cerulean Leopard)"\nID="almalinux"\nID_LIKE="rhel centos fedora"\n'
                   'VERSION_ID="8.10"\nPRETTY_NAME="AlmaLinux 8.10 (Cerulean Leopard)"\n',
    "almalinux-9": 'NAME="AlmaLinux"\nVERSION="9.4 (Seafoam Ocelot)"\nID="almalinux"\nID_LIKE="rhel centos fedora"\n'
                   'VERSION_ID="9.4"\nPRETTY_NAME="AlmaLinux 9.4 (Seafoam Ocelot)"\n',
    "rocky-8": 'NAME="Rocky Linux"\nVERSION="8.10 (Green Obsidian)"\nID="rocky"\nID_LIKE="rhel centos fedora"\n'
               'VERSION_ID="8.10"\nPRETTY_NAME="Rocky Linux 8.10 (Green Obsidian)"\n',
    "rocky-9": 'NAME="Rocky Linux"\nVERSION="9.6 (Blue Onyx)"\nID="rocky"\nID_LIKE="rhel centos fedora"\n'
               'VERSION_ID="9.6"\nPRETTY_NAME="Rocky Linux 9.6 (Blue Onyx)"\n',
    "cloudlinux-8": 'NAME="CloudLinux"\nVERSION="8.10 (Vladimir Aksyonov)"\nID="cloudlinux"\nID_LIKE="rhel fedora centos"\n'
                    'VERSION_ID="8.10"\nPRETTY_NAME="CloudLinux 8.10 (Vladimir Aksyonov)"\n',
    "cloudlinux-9": 'NAME="CloudLinux"\nVERSION="9.6"\nID="cloudlinux"\nID_LIKE="rhel fedora centos"\nVERSION_ID="9.6"\n'
                    'PRETTY_NAME="CloudLinux 9.6"\n',
    "rhel-8": 'NAME="Red Hat Enterprise Linux"\nVERSION="8.10 (Ootpa)"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="8.10"\n'
              'PRETTY_NAME="Red Hat Enterprise Linux 8.10 (Ootpa)"\n',
    "rhel-9": 'NAME="Red Hat Enterprise Linux"\nVERSION="9.4 (Plow)"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\n'
              'PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"\n',
}
# EL7: no Python >= 3.9 there, so no package; refused with the way up (ELevate).
EL7 = {
    "centos-7": ('NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n'
                 'PRETTY_NAME="CentOS Linux 7 (Core)"\n', "CentOS Linux 7 (Core)"),
    "cloudlinux-7": ('NAME="CloudLinux"\nVERSION="7.9 (Boris Yegorov)"\nID="cloudlinux"\nID_LIKE="rhel fedora centos"\n'
                     'VERSION_ID="7.9"\nPRETTY_NAME="CloudLinux 7.9 (Boris Yegorov)"\n', "CloudLinux 7.9 (Boris Yegorov)"),
    "rhel-7": ('NAME="Red Hat Enterprise Linux Server"\nVERSION="7.9 (Maipo)"\nID="rhel"\nID_LIKE="fedora"\n'
               'VERSION_ID="7.9"\nPRETTY_NAME="Red Hat Enterprise Linux Server 7.9 (Maipo)"\n',
               "Red Hat Enterprise Linux Server 7.9 (Maipo)"),
}
# CentOS 8 (Linux and Stream): ended, and cPanel dropped it; refused with the way across (almalinux-deploy).
CENTOS_8 = {
    "centos-8": ('NAME="CentOS Linux"\nVERSION="8"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="8"\n'
                 'PRETTY_NAME="CentOS Linux 8"\n', "CentOS Linux 8"),
    "centos-stream-8": ('NAME="CentOS Stream"\nVERSION="8"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="8"\n'
                        'PRETTY_NAME="CentOS Stream 8"\n', "CentOS Stream 8"),
}
UNSUPPORTED = {
    "debian-12": ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
                  'ID=debian\n', "Debian GNU/Linux 12 (bookworm)"),
    "debian-7": ('PRETTY_NAME="Debian GNU/Linux 7 (wheezy)"\nNAME="Debian GNU/Linux"\nVERSION_ID="7"\nID=debian\n',
                 "Debian GNU/Linux 7 (wheezy)"),   # a 7 that is not EL7
    "ubuntu-22.04": ('PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\n'
                     'ID_LIKE=debian\n', "Ubuntu 22.04.4 LTS"),
    "centos-stream-9": ('NAME="CentOS Stream"\nVERSION="9"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="9"\n'
                        'PRETTY_NAME="CentOS Stream 9"\n', "CentOS Stream 9"),
    "almalinux-10": ('NAME="AlmaLinux"\nID="almalinux"\nID_LIKE="rhel centos fedora"\nVERSION_ID="10.0"\n'
                     'PRETTY_NAME="AlmaLinux 10.0 (Purple Lion)"\n', "AlmaLinux 10.0 (Purple Lion)"),
    "centos-6": ('NAME="CentOS"\nID="centos"\nVERSION_ID="6"\nPRETTY_NAME="CentOS release 6.10 (Final)"\n',
                 "CentOS release 6.10 (Final)"),
}
REFUSED = {**EL7, **CENTOS_8, **UNSUPPORTED}

# The os-release ID of each name the supported list uses.
OS_IDS = {"AlmaLinux": "almalinux", "Rocky Linux": "rocky", "CloudLinux": "cloudlinux", "RHEL": "rhel"}
REPO_URL = "https://repo.imunify360.cloudlinux.com/defence360/imunifyemail/el/$releasever/$basearch/"

# yum and rpm as far as the script uses them: `rpm -q imunifyemail`, `yum install|autoremove -y imunifyemail`.
STANDIN = r"""#!/bin/bash
echo "$(basename "$0") $*" >> "$STANDIN_LOG"
state="$STANDIN_STATE"
case "$(basename "$0") $1" in
    "rpm -q") if [ -e "$state" ]; then echo "imunifyemail-0.1.0-1.el8.x86_64"; else
                  echo "package imunifyemail is not installed"; exit 1; fi ;;
    "yum install") [ -e "$STANDIN_FAIL" ] && { echo "Error: Failed to download metadata for repo" >&2; exit 1; }
                   touch "$state"; echo "Complete!" ;;
    "yum autoremove") rm -f "$state"; echo "Complete!" ;;
    *) echo "unexpected call: $0 $*" >&2; exit 2 ;;
esac
"""


class Box:
    def __init__(self, base: Path, os_release: str, memory_kb: int = 4 * 1024 * 1024, cpanel: bool = True):
        self.base = base
        self.root = base / "root"
        (self.root / "etc").mkdir(parents=True)
        (self.root / "proc").mkdir()
        (self.root / "var").mkdir()
        (self.root / "etc/os-release").write_text(os_release)
        (self.root / "proc/meminfo").write_text(f"MemTotal:       {memory_kb} kB\nMemFree:        1000 kB\n")
        if cpanel:
            marker = self.root / "usr/local/cpanel/cpanel"
            marker.parent.mkdir(parents=True)
            marker.write_text("#!/bin/sh\n")
            marker.chmod(0o755)
        self.bin = base / "bin"
        self.bin.mkdir()
        for name in ("yum", "rpm"):
            (self.bin / name).write_text(STANDIN)
            (self.bin / name).chmod(0o755)
        self.log = base / "calls.log"
        self.log.touch()

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMUNIFYEMAIL_")}
        return {**env, "PATH": f"{self.bin}:{os.environ['PATH']}", "IMUNIFYEMAIL_DEPLOY_ROOT": str(self.root),
                "STANDIN_LOG": str(self.log), "STANDIN_STATE": str(self.base / "installed"),
                "STANDIN_FAIL": str(self.base / "fail")}

    def run(self, *args: str, prefix=()) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, "bash", str(SCRIPT), *args], env=self.env(), capture_output=True, text=True,
                              timeout=60)

    def calls(self) -> list:
        return self.log.read_text().splitlines()

    def listing(self) -> dict:
        return {str(p.relative_to(self.root)): p.read_bytes() if p.is_file() else None
                for p in sorted(self.root.rglob("*"))}


@pytest.fixture
def box(tmp_path):
    def make(os_name: str = "almalinux-8", **kwargs) -> Box:
        text = SUPPORTED.get(os_name) or REFUSED[os_name][0]
        return Box(tmp_path, text, **kwargs)
    return make


@functools.lru_cache(maxsize=None)
def supported_systems() -> str:
    """The supported list as the script's usage prints it."""
    usage = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"^Requirements: (.+) with cPanel & WHM,$", usage, re.MULTILINE)
    assert found, usage
    return found[1]


@pytest.mark.parametrize("os_name", sorted(SUPPORTED))
def test_supported_system_installs_once_and_a_second_run_changes_nothing(box, os_name):
    b = box(os_name)
    first = b.run()
    assert first.returncode == 0, first.stderr
    assert "(supported)" in first.stdout and "Imunify Email installed (imunifyemail-0.1.0-1.el8.x86_64)" in first.stdout
    assert b.calls() == ["rpm -q imunifyemail", "yum install -y imunifyemail", "rpm -q imunifyemail"]
    repo_file = b.root / "etc/yum.repos.d/imunifyemail.repo"
    assert repo_file.stat().st_mode & 0o777 == 0o644
    repo = configparser.ConfigParser(interpolation=None)
    repo.read_string(repo_file.read_text())
    assert repo.sections() == ["imunifyemail"]
    section = repo["imunifyemail"]
    # yum fills in the system's major version; packages are checked against the key published beside them
    assert section["baseurl"] == REPO_URL and section["enabled"] == "1"
    assert section["gpgcheck"] == "1" and section["gpgkey"] == REPO_URL + "RPM-GPG-KEY-imunifyemail"
    listing = b.listing()

    second = b.run()
    assert second.returncode == 0, second.stderr
    assert "already installed (imunifyemail-0.1.0-1.el8.x86_64): nothing to do" in second.stdout
    assert b.calls()[3:] == ["rpm -q imunifyemail"]   # looked, installed nothing
    assert b.listing() == listing


def reasons(os_name: str) -> list:
    """What the refusal of this system must say besides its name and the supported list."""
    if os_name in EL7:
        return ["Python 3.9", "no package for EL7", "CentOS 7 reached its end of life on 2024-06-30",
                "ELevate", "https://github.com/cpanel/elevate", "CentOS 7 to AlmaLinux 8",
                "CloudLinux 7 to CloudLinux 8", "or move the accounts to a new server"]
    if os_name in CENTOS_8:
        return ["CentOS Linux 8 on 2021-12-31", "cPanel & WHM no longer supports it",
                "https://github.com/AlmaLinux/almalinux-deploy", "then run this script again"]
    return ["with cPanel & WHM only"]


@pytest.mark.parametrize("os_name", sorted(REFUSED))
def test_unsupported_system_is_refused_saying_why_before_anything_changes(box, os_name):
    b = box(os_name)
    listing = b.listing()
    proc = b.run()
    assert proc.returncode == 1 and proc.stdout == ""
    name = REFUSED[os_name][1]
    assert proc.stderr.startswith(f"imunifyemail-deploy: this system is {name} (ID="), proc.stderr
    for said in [*reasons(os_name), supported_systems(), "nothing was changed"]:
        assert said in proc.stderr, (said, proc.stderr)
    assert b.calls() == []            # neither yum nor rpm ran
    assert b.listing() == listing     # no repository file, nothing else written


def test_readme_usage_and_the_script_agree_on_the_supported_systems():
    phrase = supported_systems()
    accepted = set()
    for item in re.split(r", | or ", phrase):
        named = re.fullmatch(r"(.+?) (\d+(?:/\d+)*)", item)
        assert named and named[1] in OS_IDS, item
        accepted.update(f"{OS_IDS[named[1]]}-{major}" for major in named[2].split("/"))
    assert accepted == set(SUPPORTED)   # each of them installs (above), everything else is refused
    readme = (REPO / "README.md").read_text()
    install = readme.split("## Install on a cPanel server", 1)[1].split("\n## ", 1)[0]
    assert f"On {phrase} with cPanel & WHM, as root:" in " ".join(install.split())


def test_too_little_memory_is_refused_with_found_and_needed(box):
    b = box(memory_kb=384 * 1024)
    proc = b.run()
    assert proc.returncode == 1
    assert "found 384 MB, Imunify Email needs at least 512 MB" in proc.stderr and "add memory" in proc.stderr
    assert b.calls() == [] and not (b.root / "etc/yum.repos.d").exists()


def test_little_disk_space_is_a_warning_with_found_and_needed(box):
    b = box()
    # a 64 MB disk for /var: a real filesystem that df measures, in a private mount namespace
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                           f'mount -t tmpfs -o size=64m tmpfs "{b.root}/var" && exec bash "{SCRIPT}"'],
                          env=b.env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING: low disk space: found 0 GB free" in proc.stdout and "needs 20 GB" in proc.stdout
    assert "yum install -y imunifyemail" in b.calls()


def test_without_cpanel_it_refuses(box):
    b = box(cpanel=False)
    proc = b.run()
    assert proc.returncode == 1 and "cPanel & WHM not found" in proc.stderr and "install cPanel & WHM first" \
        in proc.stderr
    assert b.calls() == []


def test_not_root_is_refused(box):
    b = box()
    proc = b.run(prefix=("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"))
    assert proc.returncode == 1 and "must be run as root" in proc.stderr
    assert b.calls() == []


def test_a_failing_yum_says_what_to_do(box):
    b = box()
    (b.base / "fail").touch()
    proc = b.run()
    assert proc.returncode == 1
    assert "'yum install -y imunifyemail' failed (exit status 1)" in proc.stderr and "run this script again" \
        in proc.stderr


def test_uninstall_keeps_the_quarantine_unless_purged(box):
    b = box()
    assert b.run().returncode == 0
    storage = b.root / "var/imunifyemail/quarantine/storage"
    storage.mkdir(parents=True)
    (storage / "quarantine.db").write_bytes(b"held mail")
    proc = b.run("--uninstall")
    assert proc.returncode == 0, proc.stderr
    assert "yum autoremove -y imunifyemail" in b.calls()
    assert not (b.root / "etc/yum.repos.d/imunifyemail.repo").exists()
    assert "the quarantine is kept" in proc.stdout and (storage / "quarantine.db").exists()
    again = b.run("--uninstall")
    assert again.returncode == 0 and "not installed: nothing to remove" in again.stdout
    assert b.calls().count("yum autoremove -y imunifyemail") == 1
    purge = b.run("--uninstall", "--purge")
    assert purge.returncode == 0 and not (b.root / "var/imunifyemail").exists()


def test_help_and_bad_options(box):
    b = box()
    helped = b.run("--help")
    assert helped.returncode == 0 and helped.stdout.startswith("Usage: bash imunifyemail-deploy.sh")
    bad = b.run("--frobnicate")
    assert bad.returncode == 1 and "unknown option '--frobnicate'" in bad.stderr
    lone = b.run("--purge")
    assert lone.returncode == 1 and "--purge goes with --uninstall" in lone.stderr
    assert b.calls() == []


def test_shell_scripts_are_shellcheck_clean(rpms):
    proc = subprocess.run(["shellcheck", str(SCRIPT), str(REPO / "rpm/build.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    # and the package's scriptlets, as rpm runs them (/bin/sh)
    scripts = subprocess.run(["rpm", "-qp", "--scripts", str(rpms[1])], capture_output=True, text=True,
                             check=True).stdout
    for name, body in re.findall(r"^(\w+) scriptlet \(using /bin/sh\):\n(.*?)(?=^\w+ scriptlet|\Z)", scripts,
                                 re.MULTILINE | re.DOTALL):
        check = subprocess.run(["shellcheck", "-s", "sh", "-"], input=f"#!/bin/sh\nset -- 1\n{body}",
                               capture_output=True, text=True)
        assert check.returncode == 0, (name, check.stdout)
