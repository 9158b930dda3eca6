"""``ie-config enable/disable`` on an administrator's ``/etc/exim.conf.local``, with the faithful
``buildeximconf`` stand-in (real ``exim -C … -bV`` validation). No mail flows here."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from devtools import cpanel_standins
from devtools.stack import PYTHON, MailStack
from devtools.testroot import remove_unless_kept
from imunifyemail.exim import localconf

ADMIN_FILE = Path(__file__).parent / "data/exim.conf.local"


@pytest.fixture
def cpanel(daemon_user):
    base = Path(tempfile.mkdtemp(prefix="ie-patcher-", dir="/tmp"))
    base.chmod(0o755)
    stack = MailStack(base, net=False)
    stack.build()
    yield stack
    remove_unless_kept(base)


def ie_config(stack: MailStack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "imunifyemail.cli.ie_config", *args], env=stack.env,
                          capture_output=True, text=True, cwd="/")


def builds(stack: MailStack) -> int:
    return len(cpanel_standins.calls(stack.root, "buildeximconf"))


def exim_conf(stack: MailStack) -> str:
    return stack.layout.config.read_text()


def test_enable_enable_disable_enable_disable_leaves_the_administrators_text_byte_for_byte(cpanel):
    local = cpanel.layout.local_config
    shutil.copyfile(ADMIN_FILE, local)
    original = local.read_bytes()
    assert "imunifyemail_scan:" not in exim_conf(cpanel)

    for step, (command, enabled) in enumerate([("enable", True), ("enable", True), ("disable", False),
                                               ("enable", True), ("disable", False)]):
        before = builds(cpanel)
        out = ie_config(cpanel, command)
        assert out.returncode == 0, out.stderr
        text = local.read_bytes()
        if enabled:
            assert localconf.strip(text.decode()).encode() == original
            assert localconf.blocks_present(text.decode()) == ["router"]
            assert "imunifyemail_scan:" in exim_conf(cpanel)
        else:
            assert text == original
            assert "imunifyemail_scan:" not in exim_conf(cpanel)
        repeated = step in (1,)
        assert (builds(cpanel) == before) == repeated, out.stdout   # idempotent: no second rebuild
        assert ("already" in out.stdout) == repeated

    # The managed router sits after cPanel's hourly limits and before the administrator's own router.
    conf = exim_conf(cpanel)
    ie_config(cpanel, "enable")
    conf = exim_conf(cpanel)
    assert conf.index("increment_max_emails_per_hour_if_needed:") < conf.index("imunifyemail_scan:") \
        < conf.index("shop_relay:") < conf.index("remote_sink:")
    assert "message_size_limit = 100M" in conf and "smtp_accept_max = 100" not in conf   # admin @CONFIG@ kept
    services = [c["argv"] for c in cpanel_standins.calls(cpanel.root, "systemctl")]
    assert ["enable", "--now", "imunifyemaild", "imunifyemail-web", "imunifyemail-notify.timer"] in services
    assert ["disable", "--now", "imunifyemaild", "imunifyemail-web", "imunifyemail-notify.timer"] in services


def test_a_rejected_rebuild_restores_the_previous_file_and_says_why(cpanel):
    local = cpanel.layout.local_config
    # A router of the administrator's with one of our routers' names: Exim refuses the merged config.
    text = ADMIN_FILE.read_text().replace("@ROUTERSTART@\n", "@ROUTERSTART@\nimunifyemail_continue:\n"
                                          "    driver = redirect\n    data = :unknown:\n")
    local.write_text(text)
    assert cpanel_standins_build(cpanel).returncode == 0
    conf_before = exim_conf(cpanel)
    before = builds(cpanel)
    out = ie_config(cpanel, "enable")
    assert out.returncode == 1
    assert out.stderr.startswith("Error: buildeximconf rejected the new Exim configuration")
    assert "restored" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert local.read_text() == text
    assert exim_conf(cpanel) == conf_before
    assert builds(cpanel) == before + 2   # the failed one, and the one after the restore
    assert not (cpanel.root / "usr/local/cpanel/scripts/postbuildeximconf").exists()


def cpanel_standins_build(stack: MailStack) -> subprocess.CompletedProcess:
    return subprocess.run([str(stack.root / cpanel_standins.BUILDEXIMCONF.lstrip("/"))], env=stack.env,
                          capture_output=True, text=True)


ADMIN_HOOK = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/admin-hook.log"
exit 0
"""


def test_the_postbuild_hook_chains_the_administrators_and_heals_a_whm_reset(cpanel):
    scripts = cpanel.root / "usr/local/cpanel/scripts"
    hook = scripts / "postbuildeximconf"
    hook.write_text(ADMIN_HOOK)
    hook.chmod(0o755)
    shutil.copyfile(ADMIN_FILE, cpanel.layout.local_config)
    assert ie_config(cpanel, "enable").returncode == 0
    assert "imunifyemail" in hook.read_text()
    assert (scripts / "postbuildeximconf.imunifyemail-chained").read_text() == ADMIN_HOOK

    # WHM "reset": the Advanced Editor's file is gone, then cPanel rebuilds.
    cpanel.layout.local_config.unlink()
    result = cpanel_standins_build(cpanel)
    assert result.returncode == 0, result.stderr
    healed = cpanel.layout.local_config.read_text()
    assert localconf.blocks_present(healed) == ["router"]
    assert localconf.strip(healed) == localconf.SKELETON
    assert "imunifyemail_scan:" in exim_conf(cpanel)
    assert "--status ok" in (scripts / "admin-hook.log").read_text()   # the administrator's hook still runs

    assert ie_config(cpanel, "disable").returncode == 0
    assert hook.read_text() == ADMIN_HOOK and os.access(hook, os.X_OK)
    assert not (scripts / "postbuildeximconf.imunifyemail-chained").exists()
    cpanel.layout.local_config.unlink()
    assert cpanel_standins_build(cpanel).returncode == 0
    assert not cpanel.layout.local_config.exists()   # disabled: nothing re-applied


def test_a_missing_file_is_created_from_cpanels_skeleton(cpanel):
    assert not cpanel.layout.local_config.exists()
    assert ie_config(cpanel, "enable").returncode == 0
    assert localconf.strip(cpanel.layout.local_config.read_text()) == localconf.SKELETON
    assert ie_config(cpanel, "disable").returncode == 0
    assert cpanel.layout.local_config.read_text() == localconf.SKELETON


def test_bad_configuration_is_a_one_line_error_and_changes_nothing(cpanel):
    cfg = cpanel.root / "etc/imunifyemail/config.yaml"
    cfg.write_text(cfg.read_text() + "exim:\n  socket: /var/run/with space.sock\n")
    out = ie_config(cpanel, "enable")
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith("Error: ")
    assert not cpanel.layout.local_config.exists()
    assert builds(cpanel) == 1   # only the one of the initial set-up
    assert cpanel_standins.calls(cpanel.root, "systemctl") == []


def test_the_incoming_filter_comes_and_goes_with_its_own_block_and_survives_a_whm_reset(cpanel):
    shutil.copyfile(ADMIN_FILE, cpanel.layout.local_config)
    admin = ADMIN_FILE.read_text()
    refused = ie_config(cpanel, "enable-incoming")
    assert refused.returncode == 1 and "Error: Imunify Email is disabled: run ie-config enable first" in refused.stderr
    assert cpanel.layout.local_config.read_text() == admin
    assert ie_config(cpanel, "enable").returncode == 0
    assert "imunifyemail_incoming:" not in exim_conf(cpanel)   # off by default
    on = ie_config(cpanel, "enable-incoming")
    assert on.returncode == 0 and "Incoming filter enabled" in on.stdout
    assert localconf.blocks_present(cpanel.layout.local_config.read_text()) == ["router", "incoming"]
    assert "imunifyemail_incoming:" in exim_conf(cpanel)
    # after cPanel's own Spam Box and mailbox routers would come: in @PREVIRTUALUSER@, before virtual_user
    assert exim_conf(cpanel).index("imunifyemail_incoming:") < exim_conf(cpanel).index("\nvirtual_user:")
    assert ie_config(cpanel, "enable-incoming").stdout.strip() == "The incoming filter is already enabled"

    cpanel.layout.local_config.unlink()   # WHM "reset", then cPanel rebuilds: both blocks come back
    assert cpanel_standins_build(cpanel).returncode == 0
    assert localconf.blocks_present(cpanel.layout.local_config.read_text()) == ["router", "incoming"]
    assert "imunifyemail_incoming:" in exim_conf(cpanel)

    shutil.copyfile(ADMIN_FILE, cpanel.layout.local_config)
    assert ie_config(cpanel, "reapply").returncode == 0
    off = ie_config(cpanel, "disable-incoming")
    assert off.returncode == 0 and "Incoming filter disabled" in off.stdout
    assert localconf.blocks_present(cpanel.layout.local_config.read_text()) == ["router"]
    assert "imunifyemail_incoming:" not in exim_conf(cpanel) and "imunifyemail_scan:" in exim_conf(cpanel)
    assert ie_config(cpanel, "disable").returncode == 0
    assert cpanel.layout.local_config.read_text() == admin
