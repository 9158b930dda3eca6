"""cPanel's own hold of outgoing mail follows containment (notify/outgoing_hold.py), run by the root
notification job on a cPanel-shaped root: the real store, the real ``ie-cli`` restore, and the recording
``whmapi1`` stand-in (devtools/cpanel_standins.py, faithful to CPANEL.md) whose calls are asserted."""
import json
import os
import stat

import pytest

from devtools import cpanel_standins
from devtools.clock import Clock
from imunifyemail import paths
from imunifyemail.cli import ie_cli, ie_config
from imunifyemail.context import Context
from imunifyemail.core.containment import cpanel_holds
from imunifyemail.notify import job
from imunifyemail.store import accounts, db

T0 = 1_800_000_000


@pytest.fixture
def server(make_root):
    """No daemon, no Rspamd: the store, cPanel's accounts (demo1, demo2) and the whmapi1 stand-in."""
    r = make_root("http://127.0.0.1:9")
    cpanel_standins.install_whmapi1(r.path)
    return r


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


def contain(clock, *names) -> None:
    """As the daemon's containment leaves an account (store/containment.py): blocked, contained_at set."""
    ctx = Context(clock=clock)
    try:
        with db.transaction(ctx.conn):
            for name in names:
                accounts.ensure_account(ctx.conn, name, 1 << 30, T0)
                assert accounts.contain(ctx.conn, name, int(clock()))
    finally:
        ctx.close()


def run(clock) -> job.Report:
    ctx = Context(clock=clock)
    try:
        return job.run(ctx)
    finally:
        ctx.close()


def whmapi1_calls(r):
    return [(c["function"], c["params"]) for c in cpanel_standins.calls(r.path, "whmapi1")]


def audit(clock, action):
    ctx = Context(clock=clock)
    try:
        rows = ctx.conn.execute("SELECT actor, role, via, account, detail, outcome FROM audit WHERE action = ?"
                                " ORDER BY id", (action,)).fetchall()
        return [(r["actor"], r["role"], r["via"], r["account"], json.loads(r["detail"]), r["outcome"]) for r in rows]
    finally:
        ctx.close()


def restore(name) -> None:
    assert ie_cli.run(["accounts", "edit", "-a", name, "--state", "active"]) == 0


def test_the_rule_holds_contained_cpanel_accounts_and_releases_ours_once_their_containment_ended():
    assert cpanel_holds({"demo1", "unverified:demo2"}, set()) == (["demo1"], [])
    assert cpanel_holds({"demo1"}, {"demo1"}) == ([], [])
    assert cpanel_holds(set(), {"demo1"}) == ([], ["demo1"])


def test_a_contained_account_is_held_the_cpanel_way_and_released_when_restored(server, clock):
    contain(clock, "demo1")
    report = run(clock)
    assert report.holds.held == ["demo1"] and report.holds.failed == []
    assert whmapi1_calls(server) == [("hold_outgoing_email", {"user": "demo1"})]
    assert cpanel_standins.calls(server.path, "whmapi1")[0]["argv"] == [
        "--output=json", "hold_outgoing_email", "user=demo1"]
    assert cpanel_standins.held_outgoing(server.path) == ["demo1"]   # what WHM's account list shows
    run(clock)   # held already: not asked again
    assert len(whmapi1_calls(server)) == 1

    restore("demo1")   # ie-cli's restore (WHM's calls the same operation)
    report = run(clock)
    assert report.holds.released == ["demo1"]
    assert whmapi1_calls(server)[1:] == [("release_outgoing_email", {"user": "demo1"})]
    assert cpanel_standins.held_outgoing(server.path) == []
    assert [(a[0], a[1], a[3], a[4], a[5]) for a in audit(clock, "cpanel hold") + audit(clock, "cpanel release")] == [
        ("imunifyemail-notify", "root", "demo1", {"whmapi1": "hold_outgoing_email"}, "ok"),
        ("imunifyemail-notify", "root", "demo1", {"whmapi1": "release_outgoing_email"}, "ok")]
    record = paths.system_path(paths.CPANEL_HOLDS)
    st = record.stat()   # root's alone: the daemon's user cannot make root release a hold
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)
    assert json.loads(record.read_text()) == {"held": {}, "failing": {}}


def test_a_failing_whmapi1_is_audited_once_changes_nothing_else_and_is_tried_again(server, clock):
    contain(clock, "demo1")
    (server.path / cpanel_standins.WHMAPI1_FAIL.lstrip("/")).write_text("Sorry, the system is busy.")
    report = run(clock)
    assert report.holds.held == [] and report.holds.failed == [
        ("demo1", "hold_outgoing_email refused: Sorry, the system is busy.")]
    run(clock)
    assert len(whmapi1_calls(server)) == 2   # tried at each run
    assert audit(clock, "cpanel hold") == [("imunifyemail-notify", "root", "cli", "demo1",
                                            {"whmapi1": "hold_outgoing_email"},
                                            "hold_outgoing_email refused: Sorry, the system is busy.")]
    ctx = Context(clock=clock)
    try:
        assert accounts.contained_accounts(ctx.conn) == {"demo1"}   # containment stands all the same
    finally:
        ctx.close()
    (server.path / cpanel_standins.WHMAPI1_FAIL.lstrip("/")).unlink()
    assert run(clock).holds.held == ["demo1"]
    assert [a[5] for a in audit(clock, "cpanel hold")] == ["hold_outgoing_email refused: Sorry, the system is busy.",
                                                           "ok"]


def test_no_whmapi1_at_all_is_said_and_the_run_goes_on(server, clock):
    contain(clock, "demo1")
    (server.path / cpanel_standins.WHMAPI1.lstrip("/")).unlink()
    report = run(clock)
    [(name, why)] = report.holds.failed
    assert name == "demo1" and why.startswith("cannot run ") and why.endswith("whmapi1: No such file or directory")


def test_pseudo_accounts_an_administrators_block_and_removed_accounts_call_nothing(server, clock):
    contain(clock, "unverified:demo2")   # forged mail's pseudo-account: no cPanel account to hold
    # rows the daemon's user could write: never an argument of root's whmapi1 but a cPanel account's name
    contain(clock, "demo1 user=demo2", "--output=yaml", "root", "../demo1")
    ctx = Context(clock=clock)
    try:   # the administrator's own block is no containment
        with db.transaction(ctx.conn):
            accounts.ensure_account(ctx.conn, "demo2", 1 << 30, T0)
            ctx.conn.execute("UPDATE accounts SET state = 'block' WHERE name = 'demo2'")
    finally:
        ctx.close()
    run(clock)
    assert whmapi1_calls(server) == []

    contain(clock, "demo1")
    run(clock)
    os.unlink(server.path / "var/cpanel/users/demo1")   # cPanel removed the account (and its hold)
    userdomains = server.path / "etc/userdomains"
    userdomains.write_text("".join(line + "\n" for line in userdomains.read_text().splitlines()
                                   if not line.endswith(": demo1")))
    restore("demo1")
    report = run(clock)
    assert whmapi1_calls(server) == [("hold_outgoing_email", {"user": "demo1"})] and report.holds.failed == []
    assert json.loads(paths.system_path(paths.CPANEL_HOLDS).read_text())["held"] == {}


def test_ie_config_notify_says_what_it_held_and_released(server, capsys):
    contain(Clock(T0), "demo1")
    assert ie_cli.run(["notify"], group=ie_config.cli, prog="ie-config") == 0
    assert capsys.readouterr().out == \
        "cPanel: outgoing mail of contained account demo1 held (whmapi1 hold_outgoing_email)\n"
    restore("demo1")
    capsys.readouterr()
    assert ie_cli.run(["notify"], group=ie_config.cli, prog="ie-config") == 0
    assert capsys.readouterr().out == \
        "cPanel: outgoing mail of restored account demo1 released (whmapi1 release_outgoing_email)\n"


def test_an_unreadable_record_holds_and_releases_nothing_and_says_so(server, clock):
    contain(clock, "demo1")
    record = paths.system_path(paths.CPANEL_HOLDS)
    record.write_text("{not json")
    report = run(clock)
    assert report.holds.held == [] and report.holds.failed[0][0] == "*"
    assert report.holds.failed[0][1].startswith(f"cannot read {record}: ")
    assert whmapi1_calls(server) == [] and record.read_text() == "{not json"   # never guessed, never rewritten
