"""The cPanel account hooks (hooks/accounts-remove, hooks/accounts-modify) run as cPanel runs them:
a child process with the hook's JSON on stdin (CPANEL.md shapes), against a temporary root with a
real quarantine (files + SQLite) and Activity Monitor objects."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imunifyemail.store.activity import Activity

REPO = Path(__file__).resolve().parent.parent
REMOVE = REPO / "hooks/accounts-remove"
MODIFY = REPO / "hooks/accounts-modify"
HOOK_INFO = {"hook": "/opt/imunifyemail/hooks/x", "exectype": "script", "stage": "post", "weight": 100,
             "id": "Wl9b4fXKQjx2Z5oJ2wZ6Ydqv", "escalateprivs": 0}


def payload(event: str, **data) -> str:
    return json.dumps({"context": {"category": "Whostmgr", "event": event, "stage": "post", "point": "main"},
                       "data": data, "hook": HOOK_INFO})


def removal(user: str) -> str:
    return payload("Accounts::Remove", user=user, killdns=1, keep_remote_databases=0)


def modification(user: str, newuser: str) -> str:
    return payload("Accounts::Modify", user=user, newuser=newuser, domain=f"{user}.test",
                   contactemail="", cpuser_data={"PLAN": "default"})


def run_hook(ie, script: Path, stdin: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, IMUNIFYEMAIL_ROOT=str(ie.root))
    return subprocess.run([sys.executable, str(script), *args], input=stdin, env=env, capture_output=True,
                          text=True, timeout=60)


def fill(ie) -> dict:
    """Held mail and Activity Monitor objects for demo1 and demo2."""
    held = {"demo1": [ie.add("demo1", subject=f"d1 {i}").email_id for i in range(3)],
            "demo2": [ie.add("demo2", sender="x@demo2.test").email_id]}
    activity = Activity(ie.conn)   # now: am stats shows them
    activity.record_sent(("demo1", "demo1.test", "user@demo1.test", "demo1.test/mail.php"), 2)
    activity.record_quarantined(("demo1", "demo1.test", "other@demo1.test", ""))
    activity.record_sent(("demo2", "demo2.test", "x@demo2.test", ""), 1)
    return held


def snapshot(ie) -> tuple:
    """Everything the hooks could change: every table's rows and every file of the quarantine."""
    tables = [r[0] for r in ie.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                            "AND name NOT LIKE '%search%' ORDER BY name")]
    rows = {t: sorted(tuple(r) for r in ie.conn.execute(f"SELECT * FROM {t}")) for t in tables}
    files = sorted((str(p.relative_to(ie.storage)), p.read_bytes()) for p in ie.storage.rglob("*")
                   if p.is_file() and p.name.endswith(".eml"))
    return rows, files


def objects_of(ie, account: str) -> list:
    root = ie.conn.execute("SELECT id FROM sender_objects WHERE type = 'account' AND name = ?",
                           (account,)).fetchone()
    if root is None:
        return []
    return sorted(tuple(r) for r in ie.conn.execute(
        "SELECT id, type, name, parent_id FROM sender_objects WHERE account_id = ?", (root[0],)))


def drop_from_cpanel(ie, user: str, rename_to: str = "") -> None:
    """What cPanel has done by the post stage: its map and user file say so."""
    userdomains = ie.root / "etc/userdomains"
    lines = []
    for line in userdomains.read_text().splitlines():
        domain, _, owner = line.partition(": ")
        if owner == user:
            if not rename_to:
                continue
            line = f"{domain}: {rename_to}"
        lines.append(line)
    userdomains.write_text("\n".join(lines) + "\n")
    users = ie.root / "var/cpanel/users"
    if rename_to:
        (users / user).rename(users / rename_to)
    else:
        (users / user).unlink()


def test_describe_tells_manage_hooks_what_to_register(ie):
    for script, event in ((REMOVE, "Accounts::Remove"), (MODIFY, "Accounts::Modify")):
        proc = run_hook(ie, script, "", "--describe")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == [{"category": "Whostmgr", "event": event, "stage": "post",
                                            "hook": str(script), "exectype": "script"}]


def test_remove_deletes_the_accounts_mail_files_and_objects_only(ie):
    held = fill(ie)
    demo2_before = (objects_of(ie, "demo2"), ie.invoke("emails", "list", "-a", "demo2", "--json").json())
    demo1_id = ie.conn.execute("SELECT id FROM accounts WHERE name = 'demo1'").fetchone()[0]
    assert len(objects_of(ie, "demo1")) == 5   # account, domain, 2 sender emails, script
    drop_from_cpanel(ie, "demo1")

    proc = run_hook(ie, REMOVE, removal("demo1"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("1 ") and "3 email(s)" in proc.stdout and "5 Activity Monitor" in proc.stdout

    assert ie.conn.execute("SELECT COUNT(*) FROM accounts WHERE name = 'demo1'").fetchone()[0] == 0
    assert not any(ie.conn.execute("SELECT 1 FROM messages WHERE email_id = ?", (e,)).fetchone()
                   for e in held["demo1"])
    assert not (ie.storage / str(demo1_id)).exists()
    assert objects_of(ie, "demo1") == []
    live = {r[0] for r in ie.conn.execute("SELECT id FROM sender_objects")} | {"server"}
    for table in ("am_buckets", "am_events"):
        orphans = [r[0] for r in ie.conn.execute(f"SELECT object_id FROM {table}") if r[0] not in live]
        assert orphans == [], table
    assert (objects_of(ie, "demo2"), ie.invoke("emails", "list", "-a", "demo2", "--json").json()) == demo2_before
    assert [m["email_id"] for m in ie.invoke("emails", "list", "-a", "root", "--json").json()["items"]] == \
        held["demo2"]
    [entry] = [e for e in ie.invoke("audit", "list", "--json").json()["items"] if e["action"] == "account remove"]
    assert (entry["account"], entry["actor"], entry["role"], entry["via"], entry["outcome"]) == \
        ("demo1", "root", "root", "hook", "ok")
    assert entry["detail"] == {"emails": 3, "bytes": entry["detail"]["bytes"], "objects": 5}


def test_remove_of_an_account_cpanel_still_has_changes_nothing(ie):
    fill(ie)
    before = snapshot(ie)
    proc = run_hook(ie, REMOVE, removal("demo1"))
    assert proc.returncode == 1
    assert "still exists in cPanel" in proc.stderr and proc.stdout.startswith("0 ")
    assert snapshot(ie) == before


def test_rename_keeps_every_message_and_object(ie):
    held = fill(ie)
    before_rows, before_files = snapshot(ie)
    objects = objects_of(ie, "demo1")
    drop_from_cpanel(ie, "demo1", rename_to="demo9")

    proc = run_hook(ie, MODIFY, modification("demo1", "demo9"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '1 quarantine and Activity Monitor objects of "demo1" now belong to "demo9"'

    listed = ie.invoke("emails", "list", "-a", "demo9", "--json").json()["items"]
    assert sorted(m["email_id"] for m in listed) == sorted(held["demo1"])
    assert ie.invoke("emails", "list", "-a", "demo1", "--json").exit_code == 1   # no such account any more
    renamed = [o if o[1] != "account" else (o[0], o[1], "demo9", o[3]) for o in objects]
    assert objects_of(ie, "demo9") == renamed and objects_of(ie, "demo1") == []
    after_rows, after_files = snapshot(ie)
    assert after_files == before_files   # nothing moved on disk
    for table in ("messages", "am_buckets", "am_events", "releases", "evictions"):
        assert after_rows[table] == before_rows[table], table
    stats = ie.invoke("am", "stats", "--since", "86400")
    assert stats.exit_code == 0, stats
    assert sorted(a["name"] for a in stats.json()["accounts"]) == ["demo2", "demo9"]
    [entry] = [e for e in ie.invoke("audit", "list", "--json").json()["items"] if e["action"] == "account rename"]
    assert (entry["account"], entry["via"], entry["detail"]["from"]) == ("demo9", "hook", "demo1")


def test_rename_is_refused_unless_userdomains_says_so(ie):
    fill(ie)
    before = snapshot(ie)
    proc = run_hook(ie, MODIFY, modification("demo1", "demo9"))   # the payload alone is not trusted
    assert proc.returncode == 1 and 'gives no domain to "demo9"' in proc.stderr
    assert snapshot(ie) == before


def test_rename_onto_a_name_with_data_changes_nothing(ie):
    fill(ie)
    ie.add("demo9")   # left by an earlier account of that name
    before = snapshot(ie)
    drop_from_cpanel(ie, "demo1", rename_to="demo9")
    proc = run_hook(ie, MODIFY, modification("demo1", "demo9"))
    assert proc.returncode == 1 and "nothing changed" in proc.stderr
    assert snapshot(ie) == before


def test_modify_without_rename_is_a_no_op(ie):
    fill(ie)
    before = snapshot(ie)
    proc = run_hook(ie, MODIFY, payload("Accounts::Modify", user="demo1", newuser="demo1", domain="demo1.test"))
    assert proc.returncode == 0 and proc.stdout.startswith("1 ") and "nothing to do" in proc.stdout
    proc = run_hook(ie, MODIFY, payload("Accounts::Modify", user="demo1", domain="demo1.test"))
    assert proc.returncode == 0 and "nothing to do" in proc.stdout
    assert snapshot(ie) == before


BAD_INPUT = [
    (REMOVE, "", "not JSON"),
    (REMOVE, "{\"context\": ", "not JSON"),
    (REMOVE, "[1, 2]", "the input must be a JSON object"),
    (REMOVE, json.dumps({"data": {"user": "demo1"}}), '"context" must be a JSON object'),
    (REMOVE, removal("demo1").replace("Accounts::Remove", "Accounts::Create"), "context.event"),
    (REMOVE, removal("demo1").replace('"post"', '"pre"', 1), "context.stage"),
    (REMOVE, payload("Accounts::Remove"), "data.user"),
    (REMOVE, payload("Accounts::Remove", user=7), "data.user"),
    (REMOVE, payload("Accounts::Remove", user="../etc"), "invalid account name"),
    (REMOVE, payload("Accounts::Remove", user="root"), "not a cPanel account"),
    (MODIFY, removal("demo1"), "context.event"),
    (MODIFY, payload("Accounts::Modify", user="demo1", newuser=["demo9"]), "data.newuser"),
    (MODIFY, payload("Accounts::Modify", user="demo1", newuser="Demo 9"), "invalid account name"),
    (MODIFY, json.dumps({"context": {"category": "Whostmgr", "event": "Accounts::Modify", "stage": "post"},
                         "data": "demo1"}), '"data" must be a JSON object'),
]


@pytest.mark.parametrize("script,stdin,fragment", BAD_INPUT)
def test_bad_or_unexpected_input_is_refused_and_changes_nothing(ie, script, stdin, fragment):
    fill(ie)
    drop_from_cpanel(ie, "demo1", rename_to="demo9")   # a valid event would change things
    before = snapshot(ie)
    proc = run_hook(ie, script, stdin)
    assert proc.returncode == 1, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("imunifyemail hook: error: ") and fragment in lines[0], lines
    assert proc.stdout.startswith("0 imunifyemail: ")
    assert snapshot(ie) == before


def test_unexpected_arguments_are_refused(ie):
    proc = run_hook(ie, REMOVE, removal("demo1"), "--now")
    assert proc.returncode == 1 and "unexpected arguments" in proc.stderr
