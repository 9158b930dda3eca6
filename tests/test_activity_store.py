"""The Activity Monitor's counters on real SQLite, with an injected clock."""
import pytest

from devtools.clock import Clock

from imunifyemail.core.limits import ServerLimits, limit_error, limit_mode_error
from imunifyemail.store import db
from imunifyemail.store.activity import Activity, ObjectNotFound
from imunifyemail.store.settings import load_server_limits, save_server_limits

T0 = 1_800_000_000.0
WHO = ("demo1", "demo1.test", "a@demo1.test", "demo1.test/x.php")


@pytest.fixture
def am(tmp_path):
    conn = db.connect(tmp_path / "q.db")
    clock = Clock(T0)
    a = Activity(conn, clock)
    a.clock_obj = clock
    yield a
    conn.close()


def counts(am, so_type="account"):
    return am.conn.execute(
        "SELECT COALESCE(SUM(b.messages), 0), COALESCE(SUM(b.recipients), 0), COALESCE(SUM(b.quarantined), 0)"
        " FROM am_buckets b JOIN sender_objects o ON o.id = b.object_id WHERE o.type = ?", (so_type,)).fetchone()


def test_objects_are_created_once_with_stable_ids(am):
    am.reserve(WHO, 1, ServerLimits())
    am.reserve(WHO, 1, ServerLimits())
    rows = am.conn.execute("SELECT type, name, account_id, parent_id FROM sender_objects ORDER BY type").fetchall()
    assert [(r["type"], r["name"]) for r in rows] == [
        ("account", "demo1"), ("domain", "demo1.test"), ("script", "demo1.test/x.php"),
        ("sender_email", "a@demo1.test")]
    acct = am.conn.execute("SELECT id FROM sender_objects WHERE type = 'account'").fetchone()[0]
    assert {r["account_id"] for r in rows} == {acct}


def test_null_sender_has_no_domain_or_email_object(am):
    am.record_quarantined(("root", "", "", ""))
    assert [r[0] for r in am.conn.execute("SELECT type FROM sender_objects")] == ["account"]


def test_prune_keeps_the_retention_and_the_last_hour(am):
    am.reserve(WHO, 1, ServerLimits())
    am.clock_obj.t = T0 + 86400 * 2
    am.reserve(WHO, 1, ServerLimits())
    am.prune(retention_seconds=86400)
    assert tuple(counts(am)) == (1, 1, 0)
    assert am.conn.execute("SELECT COUNT(*) FROM am_events").fetchone()[0] == 4   # the recent message's objects


def test_override_is_stored_and_removed(am):
    am.reserve(WHO, 1, ServerLimits())
    dom = am.conn.execute("SELECT id FROM sender_objects WHERE type = 'domain'").fetchone()[0]
    with pytest.raises(ObjectNotFound):
        am.set_override("00000000-0000-4000-8000-000000000000", 5)
    am.set_override(dom, 5)
    assert am.get(dom)["limit_override"] == 5
    am.set_override(dom, None)
    assert am.get(dom)["limit_override"] is None


def test_server_settings_are_merged_over_the_current_ones(am):
    assert load_server_limits(am.conn) == ServerLimits()
    assert save_server_limits(am.conn, {"domain": 7}).as_dict() == {
        "account": 0, "domain": 7, "limit_mode": 1, "observe": 0, "script": 0, "sender_email": 0}
    assert save_server_limits(am.conn, {"limit_mode": 2}) == ServerLimits(domain=7, limit_mode=2)


def test_limit_rules_name_what_is_wrong():
    assert limit_error(5, "limit", "to remove") is None and limit_error(-1, "limit", "to remove") is None
    assert "invalid limit -2" in limit_error(-2, "limit", "to remove the override")
    assert "invalid limit" in limit_error(2 ** 63, "limit", "x")
    assert "whole number" in limit_error(True, "domain limit", "x")
    assert "whole number" in limit_error("7", "domain limit", "x")
    assert limit_mode_error(1) is None and limit_mode_error(2) is None
    assert "invalid limit mode 3" in limit_mode_error(3)
