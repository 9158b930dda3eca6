"""Trust for a while (issue 19): whitelist entries and raised limits that end by themselves — the rule
(core/trust.py), the daemon's settings snapshot and limit check at the time of the decision, and the
housekeeping that tidies ended ones away (real SQLite, an injected clock)."""
import json
from datetime import datetime, timezone

import pytest

from devtools.clock import Clock
from imunifyemail.core import trust
from imunifyemail.core.limits import ServerLimits
from imunifyemail.core.verdict import Whitelist
from imunifyemail.ops.audit import insert_daemon
from imunifyemail.store import db, settings
from imunifyemail.store.activity import Activity
from imunifyemail.store.settings import SettingsCache

T0 = 1_800_000_000.0
WHO = ("demo1", "demo1.test", "a@demo1.test", "")


# -- the rule ----------------------------------------------------------------------

def test_an_end_applies_until_not_at_it():
    assert trust.applies(None, T0)
    assert trust.applies(T0 + 1, T0) and not trust.applies(T0, T0) and not trust.applies(T0 - 1, T0)


def test_a_raise_overrides_the_own_limit_while_it_lasts_then_the_own_one_is_back():
    assert trust.override_at(5, 100, T0 + 60, T0) == 100
    assert trust.override_at(5, 100, T0 + 60, T0 + 60) == 5
    assert trust.override_at(None, 100, T0 + 60, T0 + 61) is None   # the server default again
    assert trust.override_at(7, None, None, T0) == 7


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800),
                                           ("2w", 1209600), (" 1D ", 86400)])
def test_durations(text, seconds):
    assert trust.parse_duration(text) == seconds


@pytest.mark.parametrize("text, says", [("0d", "more than 0"), ("-1d", "whole number and a unit"),
                                        ("7", "whole number and a unit"), ("1.5h", "whole number"),
                                        ("7 days", "whole number"), ("", "whole number"),
                                        ("4000d", "at most 10 years")])
def test_bad_durations_say_why(text, says):
    with pytest.raises(ValueError, match=says):
        trust.parse_duration(text)


def test_end_times_for_a_duration_or_until_a_future_time():
    assert trust.until_from("1h", None, T0) == T0 + 3600
    assert trust.until_from(None, None, T0) is None
    at = datetime.fromtimestamp(T0 + 7200, timezone.utc)
    assert trust.until_from(None, at.strftime("%Y-%m-%dT%H:%M:%SZ"), T0) == T0 + 7200
    assert trust.until_from(None, at.strftime("%Y-%m-%dT%H:%M:%S+00:00"), T0) == T0 + 7200
    assert trust.until_from(None, at.astimezone().strftime("%Y-%m-%dT%H:%M:%S"), T0) == T0 + 7200   # local time
    with pytest.raises(ValueError, match="has passed"):
        trust.until_from(None, datetime.fromtimestamp(T0, timezone.utc).isoformat(), T0)
    with pytest.raises(ValueError, match="ISO 8601"):
        trust.until_from(None, "next tuesday", T0)
    with pytest.raises(ValueError, match="not both"):
        trust.until_from("1h", at.isoformat(), T0)


def test_a_raise_must_raise():
    assert trust.raise_error(11, 10, "domain x") is None
    assert "no raise" in trust.raise_error(10, 10, "domain x")
    assert "no limit now" in trust.raise_error(50, 0, "domain x")
    assert "1 to" in trust.raise_error(0, 10, "domain x")


def test_the_whitelist_at_a_time_leaves_out_what_ended():
    wl = Whitelist(sender_emails=frozenset({"a@x.test", "b@x.test"}), sender_domains=frozenset({"x.test"}),
                   authusers=frozenset({"a@x.test"}),
                   expiring=(("sender", "a@x.test", T0 + 10), ("sender", "x.test", T0 + 20)))
    assert wl.at(T0) is wl
    later = wl.at(T0 + 10)
    assert later.sender_emails == {"b@x.test"} and later.sender_domains == {"x.test"}
    assert later.authusers == {"a@x.test"}   # another list's entry of the same address stays
    assert later.ends("domain", "x.test") == T0 + 20 and later.ends("sender_email", "b@x.test") is None
    assert wl.at(T0 + 20).sender_domains == frozenset() and wl.at(T0 + 20).expiring == ()


# -- the store and the daemon's view ------------------------------------------------------

@pytest.fixture
def conn(tmp_path):
    c = db.connect(tmp_path / "q.db")
    yield c
    c.close()


def test_the_daemons_snapshot_drops_an_entry_at_its_end_with_no_change_to_the_stamp(conn):
    clock = Clock(T0)
    cache = SettingsCache(conn, ("reject",), clock)
    settings.whitelist_add(conn, "sender", [("email", "a@demo1.test"), ("domain", "demo1.test")], int(T0) + 60)
    settings.whitelist_add(conn, "sender", [("email", "boss@demo1.test")])
    assert cache.get().whitelist.sender_emails == {"a@demo1.test", "boss@demo1.test"}
    stamp = conn.execute("SELECT n FROM settings_stamp").fetchone()[0]
    clock.t = T0 + 59.9
    assert "a@demo1.test" in cache.get().whitelist.sender_emails
    clock.t = T0 + 60
    snap = cache.get()
    assert snap.whitelist.sender_emails == {"boss@demo1.test"} and snap.whitelist.sender_domains == frozenset()
    assert conn.execute("SELECT n FROM settings_stamp").fetchone()[0] == stamp   # nothing was written
    assert cache.get() is snap


def test_adding_again_sets_the_new_end_and_permanent_wins(conn):
    settings.whitelist_add(conn, "sender", [("email", "a@demo1.test")], int(T0) + 60)
    settings.whitelist_add(conn, "sender", [("email", "a@demo1.test")], int(T0) + 30)
    assert settings.whitelist_entries(conn, "sender", T0)["expires_at"] == {"a@demo1.test": T0 + 30}
    settings.whitelist_add(conn, "sender", [("email", "a@demo1.test")])
    settings.whitelist_add(conn, "sender", [("email", "a@demo1.test")], int(T0) + 90)
    assert settings.whitelist_entries(conn, "sender", T0 + 100) == {
        "emails": ["a@demo1.test"], "domains": [], "expires_at": {"a@demo1.test": None}}


def test_a_raised_limit_lets_mail_through_until_its_end_then_the_own_limit_holds(conn, tmp_path):
    clock = Clock(T0)
    am = Activity(conn, clock)
    server = ServerLimits(sender_email=2)
    assert am.reserve(WHO, 1, server).allowed and am.reserve(WHO, 1, server).allowed
    assert not am.reserve(WHO, 1, server).allowed
    sid = conn.execute("SELECT id FROM sender_objects WHERE type = 'sender_email'").fetchone()[0]
    admin = Activity(db.connect(tmp_path / "q.db"), clock)   # ie-cli's or the web app's connection
    admin.set_override(sid, 3)
    admin.set_raise(sid, 5, int(T0) + 600)
    admin.conn.close()
    for _ in range(3):
        assert am.reserve(WHO, 1, server).allowed   # 5 in the hour now
    refused = am.reserve(WHO, 1, server)
    assert not refused.allowed and refused.offenders[0].limit == 5
    clock.t = T0 + 600   # the raise ended: the object's own 3 an hour again (5 sent)
    again = am.reserve(WHO, 1, server)
    assert not again.allowed and again.offenders[0].limit == 3
    assert conn.execute("SELECT raised_limit FROM sender_objects WHERE id = ?", (sid,)).fetchone()[0] == 5


def test_the_housekeeping_tidies_ended_trust_away_and_notes_it(conn):
    clock = Clock(T0)
    am = Activity(conn, clock)
    am.reserve(WHO, 1, ServerLimits())
    sid = conn.execute("SELECT id FROM sender_objects WHERE type = 'sender_email'").fetchone()[0]
    am.set_raise(sid, 50, int(T0) + 60)
    settings.whitelist_add(conn, "sender", [("email", "a@demo1.test")], int(T0) + 60)
    settings.whitelist_add(conn, "sender", [("email", "keep@demo1.test")], int(T0) + 61)
    settings.whitelist_add(conn, "authuser", [("email", "boss@demo1.test")])
    am.prune(86400, insert_daemon)
    assert conn.execute("SELECT COUNT(*) FROM whitelist").fetchone()[0] == 3   # nothing ended yet
    clock.t = T0 + 60
    am.prune(86400, insert_daemon)
    assert sorted(r[0] for r in conn.execute("SELECT value FROM whitelist")) == ["boss@demo1.test",
                                                                                  "keep@demo1.test"]
    assert tuple(conn.execute("SELECT raised_limit, raised_until FROM sender_objects WHERE id = ?",
                              (sid,)).fetchone()) == (None, None)
    rows = conn.execute("SELECT actor, role, account, action, ids, detail FROM audit ORDER BY id").fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("imunifyemaild", "daemon", None, "whitelist expired"),
        ("imunifyemaild", "daemon", "demo1", "sender limit raise expired")]
    assert json.loads(rows[0][5]) == {"list": "sender", "values": ["a@demo1.test"], "until": trust.iso(T0 + 60)}
    assert json.loads(rows[1][4]) == [sid]
    assert json.loads(rows[1][5]) == {"type": "sender_email", "name": "a@demo1.test", "limit": 50,
                                      "until": trust.iso(T0 + 60)}
