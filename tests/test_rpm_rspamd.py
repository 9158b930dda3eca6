"""The production Rspamd set the RPM ships (rpm/rspamd/): valid against the system's stock
rspamd.conf, loopback-only workers, greylisting and Rspamd's rate limits off, every network check
left as Rspamd ships it; the offline overrides stay in devtools/ (sandbox and tests only).

rspamadm runs in a private network namespace: its config loading resolves hostnames, and nothing
may leave the machine."""
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PRODUCTION = REPO / "rpm/rspamd"
OFFLINE = REPO / "devtools/rspamd_offline"
NETWORK_MODULES = ("spf", "dkim", "dmarc", "rbl", "hfilter")


def switched_off(config_text: str) -> bool:
    """The module's own top-level ``enabled = false;`` (not one of its sub-rules')."""
    return re.search(r"^enabled = false;$", config_text, re.MULTILINE) is not None


def rspamadm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "--net", "--", "rspamadm", f"--var=LOCAL_CONFDIR={PRODUCTION}", *args],
                          capture_output=True, text=True, timeout=120)


def section(name: str) -> str:
    proc = rspamadm("configdump", "-c", "/etc/rspamd/rspamd.conf", name)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_configtest_accepts_the_production_set():
    proc = rspamadm("configtest", "-c", "/etc/rspamd/rspamd.conf")
    assert proc.returncode == 0 and "syntax OK" in proc.stdout, proc.stdout + proc.stderr


def test_workers_listen_on_loopback_only():
    workers = section("worker")
    assert 'bind_socket = "127.0.0.1:11333";' in workers
    assert 'bind_socket = "127.0.0.1:11334";' in workers


@pytest.mark.parametrize("module", ["greylist", "ratelimit"])
def test_outbound_needs_no_greylisting_nor_rspamd_rate_limits(module):
    assert switched_off(section(module))


@pytest.mark.parametrize("module", NETWORK_MODULES)
def test_network_checks_stay_on_in_production(module):
    assert not (PRODUCTION / "local.d" / f"{module}.conf").exists()
    assert not (PRODUCTION / "override.d" / f"{module}.conf").exists()
    assert not switched_off(section(module))
    # ...and the sandbox's offline set is where they are switched off
    assert switched_off((OFFLINE / "local.d" / f"{module}.conf").read_text())


def test_the_package_carries_no_rspamd_files():
    assert not list((REPO / "plugin/imunifyemail").rglob("*rspamd*.conf"))
    assert not (REPO / "plugin/imunifyemail/data/rspamd").exists()
