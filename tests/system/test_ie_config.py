"""``ie-config`` on the running stack, and how the daemon re-injects (as the Exim user)."""
import json
import os
import pwd

from devtools import cpanel_standins, samples
from devtools.stack import EXIM_USER
from devtools.waiting import eventually

from .conftest import held, settle, sunk, wait_sunk

UNITS = ("imunifyemaild", "imunifyemail-web", "imunifyemail-notify.timer")


def exited(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet: it runs no more."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_version_and_status(stack):
    assert stack.ie_config("version").stdout.decode().strip() == "ie-config version 0.1.0"
    status = json.loads(stack.ie_config("status", "--json").stdout)
    assert status["filter"] == {"enabled": True, "exim_conf_local": True, "exim_conf": True}
    assert status["incoming_filter"]["enabled"] is False   # opt-in: off until ie-config enable-incoming
    assert status["daemon"]["running"] is True and status["daemon"]["service"] == "active"
    assert status["rspamd"]["reachable"] is True
    assert set(status["queue"]) == {"waiting_for_scanner", "total"}
    assert set(status["quarantine"]) == {"emails", "size_bytes", "accounts"}
    text = stack.ie_config("status").stdout.decode()
    assert "Incoming filter: off" in text
    for label in ("Exim filter:", "Filter daemon:", "Web application:", "Rspamd:", "Exim queue:", "Quarantine:"):
        assert label in text
    assert "enabled (outbound mail is scanned)" in text


def test_disable_sends_mail_unscanned_and_enable_brings_the_filter_back(stack, token):
    calls = len(cpanel_standins.calls(stack.root, "systemctl"))
    try:
        assert "disabled" in stack.ie_config("disable").stdout.decode()
        assert "already disabled" in stack.ie_config("disable").stdout.decode()
        assert cpanel_standins.unit_state(stack.root, "imunifyemaild") == "inactive"
        sender = f"{token}@demo1.test"
        stack.sendmail(samples.gtube(sender=sender, subject=f"Off {token}"), "-f", sender, "off@remote.example",
                       user="demo1")
        [msg] = wait_sunk(stack, token)
        assert msg.all("X-ImunifyEmail-Filter-Action") == []   # not scanned, not held
        status = json.loads(stack.ie_config("status", "--json").stdout)
        assert status["filter"]["enabled"] is False
    finally:
        assert "enabled" in stack.ie_config("enable").stdout.decode()
    assert "already enabled" in stack.ie_config("enable").stdout.decode()
    verbs = [c["argv"][:2] for c in cpanel_standins.calls(stack.root, "systemctl")[calls:]
             if c["argv"][0] != "is-active"]
    assert verbs == [["disable", "--now"], ["disable", "--now"], ["enable", "--now"], ["enable", "--now"]]
    sender = f"{token}-on@demo1.test"
    stack.sendmail(samples.gtube(sender=sender, subject=f"On {token}"), "-f", sender, "on@remote.example",
                   user="demo1")
    stack.wait_for(lambda: held(stack, f"On {token}"), "the quarantine")
    settle(stack)
    assert len(sunk(stack, token)) == 1


def test_passed_mail_goes_through_exim_once_and_the_spawner_is_the_exim_user(stack, token):
    sender = f"{token}@demo2.test"
    stack.sendmail(samples.ham(sender=sender, subject=f"One pass {token}"), "-f", sender, "p@remote.example",
                   user="demo2")
    [msg] = wait_sunk(stack, token)
    settle(stack)
    passes = [line for line in stack.exim_log().splitlines() if f"<= {sender} " in line]
    assert len(passes) == 1 and " U=demo2 P=local " in passes[0]   # received once: no second pass
    assert msg.header("X-ImunifyEmail-Filter-Action") == "no action"

    daemon = stack.daemon.pid
    children = [int(p) for p in open(f"/proc/{daemon}/task/{daemon}/children").read().split()]
    spawners = [p for p in children if os.stat(f"/proc/{p}").st_uid == pwd.getpwnam(EXIM_USER).pw_uid]
    assert len(spawners) == 1
    assert os.stat(f"/proc/{daemon}").st_uid == pwd.getpwnam("_imunifyemail").pw_uid
    stack.stop_daemon(kill=True)   # the spawner leaves with the daemon, even after SIGKILL
    try:
        eventually(lambda: exited(spawners[0]), "the spawner gone", 30)
        assert exited(spawners[0])
    finally:
        stack.start_daemon()


def test_status_tells_each_service_by_what_answers_not_by_systemctl(stack):
    """The stand-in systemctl keeps saying "active"; status believes the sockets."""
    def status():
        return json.loads(stack.ie_config("status", "--json").stdout)

    assert cpanel_standins.unit_state(stack.root, "imunifyemail-web") == "active"   # ie-config enable said so
    web = status()["web"]
    assert (web["service"], web["running"], web["admin_socket"], web["user_socket"]) == ("active", False, False, False)
    assert "Web application: not answering on admin.sock and user.sock (service active" in \
        stack.ie_config("status").stdout.decode()
    stack.start_web()
    try:
        web = status()["web"]
        assert (web["running"], web["admin_socket"], web["user_socket"]) == (True, True, True)
        assert "Web application: running (service active" in stack.ie_config("status").stdout.decode()
    finally:
        stack.stop_web()
    assert status()["web"]["running"] is False

    stack.stop_daemon()
    try:
        daemon = status()["daemon"]
        assert (daemon["service"], daemon["running"]) == ("active", False)
        assert "Filter daemon:   not answering (service active" in stack.ie_config("status").stdout.decode()
    finally:
        stack.start_daemon()
    assert status()["daemon"]["running"] is True
    assert status()["rspamd"]["reachable"] is True


def test_disable_stops_and_enable_starts_both_services_and_the_notifications(stack):
    calls = len(cpanel_standins.calls(stack.root, "systemctl"))
    try:
        stack.ie_config("disable")
        assert [cpanel_standins.unit_state(stack.root, u) for u in UNITS] == ["inactive"] * 3
    finally:
        stack.ie_config("enable")
    assert [cpanel_standins.unit_state(stack.root, u) for u in UNITS] == ["active"] * 3
    changes = [c["argv"] for c in cpanel_standins.calls(stack.root, "systemctl")[calls:] if c["argv"][0] != "is-active"]
    assert changes == [["disable", "--now", *UNITS], ["enable", "--now", *UNITS]]


def test_upgrade_restarts_and_reapplies_only_when_enabled(stack):
    """What the RPM's %post runs on an upgrade."""
    calls = len(cpanel_standins.calls(stack.root))
    out = stack.ie_config("upgrade").stdout.decode()
    assert out.startswith("Imunify Email upgraded: services restarted, filter already current")
    after = [(c["program"], c["argv"]) for c in cpanel_standins.calls(stack.root)[calls:]]
    assert ("systemctl", ["restart", *UNITS]) in after
    assert "buildeximconf" not in [p for p, _ in after]   # nothing to change: no rebuild
    try:
        stack.ie_config("disable")
        calls = len(cpanel_standins.calls(stack.root))
        out = stack.ie_config("upgrade").stdout.decode()
        assert out.strip() == "Imunify Email is disabled: nothing to restart or re-apply"
        assert cpanel_standins.calls(stack.root)[calls:] == []   # the administrator's choice stands
        assert json.loads(stack.ie_config("status", "--json").stdout)["filter"]["enabled"] is False
    finally:
        stack.ie_config("enable")
