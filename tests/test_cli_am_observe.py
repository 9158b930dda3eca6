"""ie-cli am: observe mode (server-wide and per object), the would-be holds it lists, and suggested limits.

Activity is recorded through the real store API on the real SQLite database, at real time shifted into
the past (the CLI reads at the real time), as in test_cli_am.py.
"""
import json
import time

import pytest

from imunifyemail.core.limits import ServerLimits
from imunifyemail.store.settings import load_server_limits
from tests.cli_helpers import assert_error
from tests.test_cli_am import NO_ID, WHO, activity, object_id, send, sender_email_item, stats

HOUR = 3600


def own(ie, oid):
    return ie.conn.execute("SELECT limit_override, observe FROM sender_objects WHERE id = ?", (oid,)).fetchone()


def audit(ie, action):
    return [json.loads(r[0]) for r in ie.conn.execute("SELECT detail FROM audit WHERE action = ? ORDER BY id",
                                                      (action,))]


# -- the settings -------------------------------------------------------------------

def test_server_observe_is_set_shown_and_left_by_minus_one(ie):
    result = ie.invoke("am", "server-settings", "set", "--observe", "1", "--domain", "5")
    assert result.exit_code == 0
    assert '"observe": 1,' in result.stdout
    assert ie.invoke("am", "server-settings", "set", "--domain", "6").exit_code == 0
    assert load_server_limits(ie.conn) == ServerLimits(domain=6, observe=1)
    assert json.loads(ie.invoke("am", "server-settings").stdout)["observe"] == 1
    ie.invoke("am", "server-settings", "set", "--observe", "0")
    assert load_server_limits(ie.conn) == ServerLimits(domain=6)
    assert audit(ie, "server sender limits")[0] == {"domain": 5, "observe": 1}


@pytest.mark.parametrize("value", ["2", "-2"])
def test_server_observe_bad_values_change_nothing(ie, value):
    ie.invoke("am", "server-settings", "set", "--observe", "1")
    assert_error(ie.invoke("am", "server-settings", "set", "--observe", value, "--domain", "3"),
                 f"invalid observe {value}", "1 (observe", "0 (enforce)")
    assert load_server_limits(ie.conn) == ServerLimits(observe=1)


def test_limit_set_observe_alone_keeps_the_objects_limit_and_minus_one_follows_the_server(ie):
    send(ie)
    sid = object_id(ie, "sender_email", "a@demo1.test")
    ie.invoke("am", "limit", "set", "--id", sid, "--limit", "7", "--so-type", "sender_email")
    result = ie.invoke("am", "limit", "set", "--id", sid, "--observe", "1", "--so-type", "sender_email")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "OK\n", "")
    assert tuple(own(ie, sid)) == (7, 1)
    item = sender_email_item(stats(ie))
    assert (item["limit"], item["observe"], item["observing"]) == (7, 1, True)

    ie.invoke("am", "limit", "set", "--id", sid, "--observe", "0", "--limit", "9", "--so-type", "sender_email")
    assert tuple(own(ie, sid)) == (9, 0)
    ie.invoke("am", "server-settings", "set", "--observe", "1")
    assert sender_email_item(stats(ie))["observing"] is False          # its own "enforce" wins
    ie.invoke("am", "limit", "set", "--id", sid, "--observe", "-1", "--so-type", "sender_email")
    item = sender_email_item(stats(ie))
    assert (item["observe"], item["observing"], item["limit"]) == (-1, True, 9)
    assert [d["observe"] for d in audit(ie, "sender observe")] == [1, 0, "server default"]

    ie.invoke("am", "limit", "set", "--id", sid, "--so-type", "sender_email")   # the seed's: the own limit goes
    assert tuple(own(ie, sid)) == (None, None)


def test_limit_set_bad_observe_changes_nothing(ie):
    send(ie)
    dom = object_id(ie, "domain", "demo1.test")
    ie.invoke("am", "limit", "set", "--id", dom, "--limit", "4", "--observe", "1", "--so-type", "domain")
    for args, fragments in [
        (("--observe", "2", "--limit", "5"), ("invalid observe 2", "-1 to follow the server's setting")),
        (("--observe", "0", "--limit", "-5"), ("invalid limit -5",)),
        (("--observe", "x"), ("--observe", "not a valid integer")),
    ]:
        assert_error(ie.invoke("am", "limit", "set", "--id", dom, "--so-type", "domain", *args), *fragments)
    assert_error(ie.invoke("am", "limit", "set", "--id", dom, "--so-type", "account", "--observe", "0"),
                 "is a domain, not an account")
    assert tuple(own(ie, dom)) == (4, 1)


# -- would-be holds --------------------------------------------------------------------

def test_observed_lists_the_would_be_holds_newest_first(ie):
    server = ServerLimits(sender_email=2, observe=1)
    for ago in (2 * HOUR + 30, 2 * HOUR + 20, 2 * HOUR + 10):   # the 3rd over the limit, two hours ago
        assert activity(ie, ago).reserve(WHO, 3, server, exim_id="1abcde-000001-AB").allowed
    for _ in range(3):
        assert activity(ie).reserve(WHO, 1, server, exim_id="1abcde-000002-AB").allowed
    result = ie.invoke("am", "observed")
    assert (result.exit_code, result.stderr) == (0, "")
    data = result.json()
    assert data["max_count"] == 1
    [item] = data["items"]
    sid = object_id(ie, "sender_email", "a@demo1.test")
    assert {k: item[k] for k in ("exim_id", "account", "sender", "recipients", "object_id", "type", "name",
                                 "limit", "limit_mode", "used")} == {
        "exim_id": "1abcde-000002-AB", "account": "demo1", "sender": "a@demo1.test", "recipients": 1,
        "object_id": sid, "type": "sender_email", "name": "a@demo1.test", "limit": 2, "limit_mode": 1, "used": 3}
    assert abs(item["time"] - time.time()) < 600 and item["text"] == "sender_email a@demo1.test: 2 messages an hour"
    wide = ie.invoke("am", "observed", "--since", str(3 * HOUR)).json()
    assert wide["max_count"] == 2 and [i["exim_id"] for i in wide["items"]] == ["1abcde-000002-AB",
                                                                                   "1abcde-000001-AB"]
    assert ie.invoke("am", "observed", "--since", str(3 * HOUR), "--offset", "1").json()["items"][0]["recipients"] == 3
    assert sender_email_item(stats(ie))["messages"] == 3      # observed mail is counted as sent


@pytest.mark.parametrize("args, fragments", [
    (("--since", "0"), ("invalid since 0", "2592000")),
    (("--since", str(30 * 86400 + 1)), ("invalid since 2592001",)),
    (("--limit", "0"), ("invalid limit 0",)),
    (("--offset", "-1"), ("invalid offset -1",)),
])
def test_observed_rejects_bad_values(ie, args, fragments):
    assert_error(ie.invoke("am", "observed", *args), *fragments)


def test_observed_with_nothing_observed(ie):
    send(ie, server=ServerLimits(sender_email=5))
    assert ie.invoke("am", "observed").json() == {"items": [], "max_count": 0}


# -- suggested limits -------------------------------------------------------------------

def test_suggested_limits_in_stats_and_apply_suggested_sets_them(ie):
    hours = {2: 3, 5: 5, 30: 1, 24 * 40: 50}     # hours ago: messages (40 days ago: out of the 30)
    stamps = []
    for hours_ago, n in hours.items():
        send(ie, n=n, ago=hours_ago * HOUR)
        stamps += [time.time() - hours_ago * HOUR] * n
    in_30_days = [t for t in stamps if t > time.time() - 30 * 86400]
    per_day = {}
    for t in in_30_days:
        per_day[int(t) // 86400] = per_day.get(int(t) // 86400, 0) + 1
    p95_days = sorted(per_day.values())[-1]      # <= 3 days: the nearest-rank p95 is the largest
    item = sender_email_item(stats(ie, "--since", str(30 * 86400)))
    assert (item["suggested_limit"], item["suggested_daily_limit"]) == (10, 2 * p95_days)   # p95 of [1, 3, 5] = 5

    sid = object_id(ie, "sender_email", "a@demo1.test")
    result = ie.invoke("am", "limit", "apply-suggested", "--id", sid)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.json() == {"id": sid, "limit": 10, "suggested_limit": 10, "suggested_daily_limit": 2 * p95_days}
    assert tuple(ie.conn.execute("SELECT limit_override, daily_override FROM sender_objects WHERE id = ?",
                                 (sid,)).fetchone()) == (10, 2 * p95_days)
    assert audit(ie, "sender limit")[-1] == {"type": "sender_email", "name": "a@demo1.test", "limit": 10,
                                             "daily_limit": 2 * p95_days}

    ie.invoke("am", "server-settings", "set", "--limit-mode", "2")     # recipients: each message had 1
    send(ie, recipients=40, ago=HOUR * 3)
    assert sender_email_item(stats(ie, "--since", str(30 * 86400)))["suggested_limit"] == 80


def test_apply_suggested_without_history_or_object_changes_nothing(ie):
    send(ie, ago=40 * 86400)       # only older than 30 days
    sid = object_id(ie, "sender_email", "a@demo1.test")
    assert_error(ie.invoke("am", "limit", "apply-suggested", "--id", sid),
                 'sender email "a@demo1.test" sent nothing in the last 30 days')
    assert_error(ie.invoke("am", "limit", "apply-suggested", "--id", NO_ID), f'sender object "{NO_ID}" not found')
    assert_error(ie.invoke("am", "limit", "apply-suggested"), "--id")
    assert own(ie, sid)["limit_override"] is None
