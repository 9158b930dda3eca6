"""ie-cli accounts list|edit|remove."""
import json

from imunifyemail.store.accounts import contain
from imunifyemail.store.db import transaction
from tests.cli_helpers import T0, assert_error

DEFAULT_LIMIT = 104857600


def test_list_text_and_json(ie):
    a = ie.add("mysite")
    ie.add("mysite")
    assert ie.invoke("accounts", "edit", "-a", "demo2", "--limit", "125829120").exit_code == 0
    text = ie.invoke("accounts", "list")
    assert text.exit_code == 0, text
    used = 2 * a.size_bytes
    assert text.stdout.splitlines() == [   # the seed's columns, then ours
        "Name             LimitBytes    UsedBytes     State    ReleasesLimit",
        "demo2            125829120     0             active   5",
        f"mysite           {DEFAULT_LIMIT:<14}{used:<14}active   5",
        "",
        "Max Count 2",
    ]
    data = ie.invoke("accounts", "list", "--json").json()
    assert list(data) == ["items", "max_count"] and data["max_count"] == 2
    assert [list(i) for i in data["items"]] == [["name", "limit_bytes", "used_bytes", "state",
                                                  "deleted_last_hour", "releases_limit", "contained_at",
                                                  "limit_bytes_default", "releases_limit_default"]] * 2
    assert data["items"][1] == {"name": "mysite", "limit_bytes": DEFAULT_LIMIT, "used_bytes": used,
                                "state": "active", "deleted_last_hour": 0, "releases_limit": 5,
                                "contained_at": None, "limit_bytes_default": True,
                                "releases_limit_default": True}


def test_list_empty(ie):
    assert ie.invoke("accounts", "list").stdout.splitlines() == [
        "Name             LimitBytes    UsedBytes     State    ReleasesLimit", "", "Max Count 0"]
    assert ie.invoke("accounts", "list", "--json").json() == {"items": [], "max_count": 0}


def test_list_aligns_long_names(ie):
    ie.add("a-very-long-account-name")
    lines = ie.invoke("accounts", "list").stdout.splitlines()
    assert lines[0].index("LimitBytes") == lines[1].index(str(DEFAULT_LIMIT))
    assert lines[0].index("State") == lines[1].index("active")


def test_edit_prints_the_row_and_changes_it(ie):
    msg = ie.add("demo1")
    result = ie.invoke("accounts", "edit", "-a", "demo1", "--state=block", "--limit=8096")
    assert result.exit_code == 0, result
    assert result.stdout.splitlines() == [
        "Name             LimitBytes    UsedBytes     State    ReleasesLimit",
        f"demo1            8096          {msg.size_bytes:<14}block    5",
    ]
    data = ie.invoke("accounts", "edit", "-a", "demo1", "--state", "active", "--json").json()
    assert data == {"name": "demo1", "limit_bytes": 8096, "used_bytes": msg.size_bytes, "state": "active",
                    "deleted_last_hour": 0, "releases_limit": 5, "contained_at": None,
                    "limit_bytes_default": False, "releases_limit_default": True}
    assert list(data)[:4] == ["name", "limit_bytes", "used_bytes", "state"]
    assert ie.invoke("accounts", "edit", "-a", "demo1", "--limit", "0").exit_code == 0


def test_edit_sets_the_hosted_users_releases_limit(ie):
    data = ie.invoke("accounts", "edit", "-a", "demo1", "--releases-limit", "2", "--json").json()
    assert data["releases_limit"] == 2 and data["state"] == "active"
    assert ie.invoke("accounts", "list", "--json").json()["items"][0]["releases_limit"] == 2
    assert_error(ie.invoke("accounts", "edit", "-a", "demo1", "--releases-limit", "-2"), "--releases-limit")
    assert_error(ie.invoke("accounts", "edit", "-a", "demo1", "--releases-limit", "100001"),
                 "invalid releases limit 100001")
    assert ie.conn.execute("SELECT releases_limit FROM accounts WHERE name = 'demo1'").fetchone()[0] == 2


def test_edit_creates_the_subspace_of_a_cpanel_account(ie):
    assert ie.invoke("accounts", "edit", "-a", "demo3", "--state", "block").exit_code == 0
    row = ie.conn.execute("SELECT limit_bytes, state FROM accounts WHERE name = 'demo3'").fetchone()
    assert tuple(row) == (DEFAULT_LIMIT, "block")
    assert ie.invoke("accounts", "edit", "-a", "root", "--limit", "5").exit_code == 0
    assert ie.conn.execute("SELECT limit_bytes FROM accounts WHERE name = 'root'").fetchone()[0] == 5


def test_edit_uses_the_configured_default_limit(ie):
    ie.write_config("quarantine:\n  default_limit_bytes: 2048\n")
    data = ie.invoke("accounts", "edit", "-a", "demo2", "--state", "active", "--json").json()
    assert data["limit_bytes"] == 2048


def test_edit_validation_changes_nothing(ie):
    ie.add("demo1")
    assert_error(ie.invoke("accounts", "edit", "-a", "ghost", "--state", "block"), 'account "ghost" not found')
    assert_error(ie.invoke("accounts", "edit", "-a", "demo1"), "nothing to change: use --state or --limit")
    assert_error(ie.invoke("accounts", "edit", "-a", "demo1", "--state", "frozen"), "--state", "frozen")
    assert_error(ie.invoke("accounts", "edit", "-a", "demo1", "--limit", "-2"), "--limit")
    assert_error(ie.invoke("accounts", "edit", "-a", "demo1", "--limit", "1k"), "--limit")
    assert_error(ie.invoke("accounts", "edit", "--state", "block"), "--account")
    rows = ie.conn.execute("SELECT name, limit_bytes, state FROM accounts").fetchall()
    assert [tuple(r) for r in rows] == [("demo1", DEFAULT_LIMIT, "active")]


def test_remove_purges_one_account(ie):
    ie.add("demo1")
    keep = ie.add("demo2")
    result = ie.invoke("accounts", "remove", "-a", "demo1")
    assert (result.exit_code, result.stdout) == (0, "OK\n")
    assert ie.ids() == [keep.email_id]
    data = {i["name"]: i for i in ie.invoke("accounts", "list", "--json").json()["items"]}
    assert data["demo1"]["used_bytes"] == 0 and data["demo2"]["used_bytes"] == keep.size_bytes


def test_remove_root_purges_all(ie):
    msgs = [ie.add("demo1"), ie.add("demo2"), ie.add("root")]
    assert ie.invoke("accounts", "remove", "-a", "root").stdout == "OK\n"
    assert ie.ids() == []
    assert not any((ie.storage / m.file).exists() for m in msgs)


def test_remove_errors(ie):
    ie.add("demo1")
    assert_error(ie.invoke("accounts", "remove", "-a", "ghost"), 'account "ghost" not found')
    assert_error(ie.invoke("accounts", "remove"), "--account")
    assert len(ie.ids()) == 1
    assert ie.invoke("accounts", "remove", "-a", "demo3").exit_code == 0   # cPanel account, nothing held


def test_a_contained_account_shows_when_and_state_active_restores_it(ie):
    ie.add("demo1")
    with transaction(ie.conn):
        assert contain(ie.conn, "demo1", T0)   # what the daemon does (tests/test_auto_release.py)
    data = ie.invoke("accounts", "list", "--json").json()["items"][0]
    assert (data["state"], data["contained_at"]) == ("block", T0)
    result = ie.invoke("accounts", "edit", "-a", "demo1", "--state=active", "--json")
    assert result.exit_code == 0, result
    assert (result.json()["state"], result.json()["contained_at"]) == ("active", None)
    [(detail,)] = ie.conn.execute("SELECT detail FROM audit WHERE action = 'account edit'").fetchall()
    assert json.loads(detail) == {"state": "active", "contained_at": T0}
    with transaction(ie.conn):
        assert contain(ie.conn, "demo1", T0 + 1)
    # a block by the administrator is no containment: its mail is held, whitelisted senders' too
    data = ie.invoke("accounts", "edit", "-a", "demo1", "--state=block", "--json").json()
    assert (data["state"], data["contained_at"]) == ("block", None)
    with transaction(ie.conn):
        assert not contain(ie.conn, "demo1", T0 + 2)   # only an active account is contained
