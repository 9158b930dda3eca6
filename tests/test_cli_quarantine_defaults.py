"""ie-cli quarantine-defaults list|set, and accounts that follow the defaults until given their own value
(accounts edit ... -1 makes them follow again)."""
import sqlite3

from imunifyemail.store import db
from tests.cli_helpers import assert_error

MB = 1024 * 1024
DEFAULT_LIMIT = 104857600


def defaults(ie):
    return ie.invoke("quarantine-defaults", "list", "--json").json()


def accounts(ie):
    return {a["name"]: a for a in ie.invoke("accounts", "list", "--json").json()["items"]}


def test_list_text_and_json_of_a_new_server(ie):
    result = ie.invoke("quarantine-defaults", "list")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines() == ["LimitBytes    ReleasesLimit", "104857600     5"]
    assert defaults(ie) == {"limit_bytes": DEFAULT_LIMIT, "releases_limit": 5}


def test_set_changes_the_accounts_that_follow_and_new_ones(ie):
    ie.add("demo1")
    assert ie.invoke("accounts", "edit", "-a", "demo2", "-s", "300", "-r", "9").exit_code == 0
    result = ie.invoke("quarantine-defaults", "set", "-s", "200", "--releases-limit", "7")
    assert result.exit_code == 0, result
    assert result.stdout.splitlines() == ["LimitBytes    ReleasesLimit", f"{200 * MB:<14}7"]
    assert defaults(ie) == {"limit_bytes": 200 * MB, "releases_limit": 7}
    found = accounts(ie)
    assert (found["demo1"]["limit_bytes"], found["demo1"]["releases_limit"]) == (200 * MB, 7)
    assert (found["demo1"]["limit_bytes_default"], found["demo1"]["releases_limit_default"]) == (True, True)
    assert (found["demo2"]["limit_bytes"], found["demo2"]["releases_limit"]) == (300 * MB, 9)   # its own
    assert (found["demo2"]["limit_bytes_default"], found["demo2"]["releases_limit_default"]) == (False, False)
    ie.add("demo3")   # a subspace created now takes today's defaults
    assert (accounts(ie)["demo3"]["limit_bytes"], accounts(ie)["demo3"]["releases_limit"]) == (200 * MB, 7)
    # one default at a time; the other stays
    assert ie.invoke("quarantine-defaults", "set", "--storage-capacity", "50", "--json").json() == {
        "limit_bytes": 50 * MB, "releases_limit": 7}
    assert accounts(ie)["demo1"]["limit_bytes"] == 50 * MB
    entries = ie.invoke("audit", "list", "--json").json()["items"]
    assert [e["detail"] for e in entries if e["action"] == "quarantine defaults"] == [
        {"limit_bytes": 50 * MB}, {"limit_bytes": 200 * MB, "releases_limit": 7}]


def test_minus_one_makes_an_account_follow_the_defaults_again(ie):
    ie.add("demo1")
    edited = ie.invoke("accounts", "edit", "-a", "demo1", "--storage-capacity", "10", "--releases-limit", "2",
                       "--json").json()
    assert (edited["limit_bytes"], edited["releases_limit"]) == (10 * MB, 2)
    assert ie.invoke("quarantine-defaults", "set", "-s", "20", "-r", "3").exit_code == 0
    assert (accounts(ie)["demo1"]["limit_bytes"], accounts(ie)["demo1"]["releases_limit"]) == (10 * MB, 2)

    reverted = ie.invoke("accounts", "edit", "-a", "demo1", "--releases-limit", "-1", "--json").json()
    assert (reverted["releases_limit"], reverted["releases_limit_default"]) == (3, True)
    assert (reverted["limit_bytes"], reverted["limit_bytes_default"]) == (10 * MB, False)   # untouched
    reverted = ie.invoke("accounts", "edit", "-a", "demo1", "--storage-capacity", "-1", "--json").json()
    assert (reverted["limit_bytes"], reverted["limit_bytes_default"]) == (20 * MB, True)

    assert ie.invoke("quarantine-defaults", "set", "-s", "30", "-r", "4").exit_code == 0
    assert (accounts(ie)["demo1"]["limit_bytes"], accounts(ie)["demo1"]["releases_limit"]) == (30 * MB, 4)
    # --limit (bytes, the seed's flag) takes -1 as well
    assert ie.invoke("accounts", "edit", "-a", "demo1", "--limit", "4096").exit_code == 0
    assert ie.invoke("accounts", "edit", "-a", "demo1", "--limit", "-1", "--json").json()["limit_bytes"] == 30 * MB
    details = [e["detail"] for e in ie.invoke("audit", "list", "--json").json()["items"]
               if e["action"] == "account edit"]
    assert details[:2] == [{"limit_bytes": "default"}, {"limit_bytes": 4096}]


def test_the_config_file_gives_the_space_default_until_one_is_set(ie):
    ie.write_config(ie.config_file.read_text() + "quarantine:\n  default_limit_bytes: 5242880\n")
    assert defaults(ie) == {"limit_bytes": 5 * MB, "releases_limit": 5}
    assert ie.invoke("accounts", "edit", "-a", "demo1", "--state", "active", "--json").json()["limit_bytes"] == 5 * MB
    assert ie.invoke("quarantine-defaults", "set", "-r", "6").exit_code == 0
    assert defaults(ie) == {"limit_bytes": 5 * MB, "releases_limit": 6}   # stored as it was
    assert ie.invoke("quarantine-defaults", "set", "-s", "8").exit_code == 0
    ie.write_config(ie.config_file.read_text().replace("5242880", "1048576"))
    assert defaults(ie) == {"limit_bytes": 8 * MB, "releases_limit": 6}   # the stored one rules
    assert accounts(ie)["demo1"]["limit_bytes"] == 8 * MB


def test_bad_values_change_nothing(ie):
    ie.add("demo1")
    before = (defaults(ie), accounts(ie))
    assert_error(ie.invoke("quarantine-defaults", "set"), "nothing to change", "--releases-limit", "--storage-capacity")
    assert_error(ie.invoke("quarantine-defaults", "set", "-s", "-1"), "--storage-capacity")
    assert_error(ie.invoke("quarantine-defaults", "set", "-r", "-1"), "--releases-limit")
    assert_error(ie.invoke("quarantine-defaults", "set", "-r", "100001", "-s", "5"), "invalid releases limit 100001")
    assert_error(ie.invoke("quarantine-defaults", "set", "-s", "ten"), "--storage-capacity", "'ten'")
    assert_error(ie.invoke("accounts", "edit", "-a", "demo1", "-s", "-2"), "--storage-capacity")
    assert_error(ie.invoke("accounts", "edit", "-a", "demo1", "-r", "-2"), "--releases-limit")
    assert_error(ie.invoke("accounts", "edit", "-a", "demo1", "--limit", "1", "-s", "1"),
                 "--limit and --storage-capacity cannot be used together")
    assert (defaults(ie), accounts(ie)) == before


def test_help_says_how_to_follow_the_default(ie):
    out = ie.invoke("quarantine-defaults", "--help").stdout
    assert "  list        show the quarantine defaults\n  set         set the quarantine defaults\n" in out
    out = ie.invoke("quarantine-defaults", "set", "-h").stdout
    assert "  -r, --releases-limit int " in out and "  -s, --storage-capacity int " in out
    assert ie.invoke("accounts", "edit", "-h").stdout.count("Use -1 to set common default value") == 3


def test_migration_keeps_the_values_the_administrator_set(tmp_path, monkeypatch):
    """A database from before: accounts whose limits the audit trail says were set, or whose releases
    limit is not the old constant 5, keep them as their own; the others follow the defaults."""
    path = tmp_path / "q.db"
    before = next(n for n, step in enumerate(db.MIGRATIONS) if isinstance(step, str) and "limit_bytes_own" in step)
    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS[:before])
    conn = db.connect(path)
    for name, limit, releases in (("plain", DEFAULT_LIMIT, 5), ("edited", 8096, 5), ("quota", DEFAULT_LIMIT, 2)):
        conn.execute("INSERT INTO accounts (name, limit_bytes, state, releases_limit, created_at)"
                     " VALUES (?, ?, 'active', ?, 0)", (name, limit, releases))
    conn.execute("INSERT INTO audit (at, actor, role, via, account, action, detail, outcome)"
                 " VALUES (0, 'root', 'root', 'cli', 'edited', 'account edit', '{\"limit_bytes\": 8096}', 'ok')")
    conn.close()
    monkeypatch.undo()
    conn = db.connect(path)
    rows = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT name, limit_bytes_own, releases_limit_own FROM accounts")}
    assert rows == {"plain": (0, 0), "edited": (1, 0), "quota": (0, 1)}
    conn.close()
    raw = sqlite3.connect(str(path))
    assert raw.execute("PRAGMA user_version").fetchone()[0] == len(db.MIGRATIONS)
    raw.close()
