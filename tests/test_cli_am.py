"""ie-cli am: stats, limit set, server-settings and whitelisting of sender objects.

Activity is recorded through the real store API on the real SQLite database;
the CLI reads it at the real time, so the store's clock is real time shifted
into the past where a test places activity there.
"""
import json
import time

import pytest

from imunifyemail.core.limits import ServerLimits
from imunifyemail.store.activity import Activity
from imunifyemail.store.settings import load_server_limits
from tests.cli_helpers import assert_error

WHO = ("demo1", "demo1.test", "a@demo1.test", "demo1.test/x.php")
NO_ID = "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"

AM_HELP = """\
This subcommand interacts with the Activity Monitor to return statistics, get/set settings for
the sender objects.
Activity Monitor operates by the sender objects. Sender object is an object on behalf of which
client sends email. It could be one of: "account", "domain", "script" or "sender_email"

Usage:
  ie-cli am [command]

Available Commands:
  limit           The limit value of sender object can be applied on particular domain, sender email and account
  observed        messages observe mode passed that a sender limit would have held
  server-settings Operates by the server sender limit settings and allows to set default limit that is applied for all sender objects
  stats           stats (statistics) returns the aggregated view of senders objects with various filters
  whitelist       whitelist domain and sender_email objects (the sender whitelist)

Flags:
  -h, --help   help for am

Use "ie-cli am [command] --help" for more information about a command.
"""

STATS_HELP = """\
stats (statistics) returns the aggregated view of senders objects with various filters

Usage:
  ie-cli am stats [flags]

Flags:
      --account-name string   Account name to filter
      --domain string         Domain to filter
  -h, --help                  help for stats
  -l, --limit int             How many results to return (pagination). The limit applied only for number of accounts in response (default 25)
      --offset int            From which offset results to return (pagination)
      --script-name string    Script name to filter
      --sender-email string   Sender email to filter
      --since duration        The time which passed from the flag value until now: seconds, or 100s, 5m, 1h, 5d (default 1h)
"""

LIMIT_SET_HELP = """\
set limit for the sender object(s)

Usage:
  ie-cli am limit set [flags]

Flags:
      --daily-limit int   The sender object's own limit over the last 24 hours, 0 means unlimited, -1 removes it (the server default applies again); unchanged when not given
  -h, --help              help for set
      --id string         The id of sender object
      --limit int         The limit value, 0 means unlimited, -1 removes the sender object's own limit (the server default applies again) (default -1)
      --observe int       1: observe mode (its limits count and report who would be held, holding nothing), 0: enforce its limits, -1: follow the server's setting; unchanged without the flag
      --so-type string    supported values: [account domain sender_email script]
"""

LIMIT_HELP = """\
The limit value of sender object can be applied on particular domain, sender email and account

Usage:
  ie-cli am limit [command]

Available Commands:
  apply-suggested make the sender object's suggested limit its own
  set             set limit for the sender object(s)

Flags:
  -h, --help   help for limit

Use "ie-cli am limit [command] --help" for more information about a command.
"""

# The seed's, with the keys added beyond it (daily limits, the recipient cap) in their sorted places
SEED_SERVER_SETTINGS_1 = """\
New server settings is:
{
    "account": 0,
    "daily_account": 0,
    "daily_domain": 0,
    "daily_script": 0,
    "daily_sender_email": 0,
    "domain": 100,
    "limit_mode": 2,
    "max_recipients": 0,
    "observe": 0,
    "script": 0,
    "sender_email": 0
}
"""

SEED_SERVER_SETTINGS_2 = SEED_SERVER_SETTINGS_1.replace('"limit_mode": 2', '"limit_mode": 1')


def activity(env, ago: float = 0.0) -> Activity:
    """The store's counters, ``ago`` seconds in the past of real time."""
    return Activity(env.conn, clock=lambda: time.time() - ago)


def send(env, who=WHO, n: int = 1, recipients: int = 1, ago: float = 0.0, server=ServerLimits()) -> None:
    act = activity(env, ago)
    for _ in range(n):
        assert act.reserve(who, recipients, server).allowed


def quarantine(env, who=WHO, n: int = 1, ago: float = 0.0) -> None:
    act = activity(env, ago)
    for _ in range(n):
        act.record_quarantined(who)


def object_id(env, so_type: str, name: str) -> str:
    return env.conn.execute("SELECT id FROM sender_objects WHERE type = ? AND name = ?",
                            (so_type, name)).fetchone()[0]


def override(env, oid: str):
    return env.conn.execute("SELECT limit_override FROM sender_objects WHERE id = ?", (oid,)).fetchone()[0]


def stats(env, *args: str) -> dict:
    result = env.invoke("am", "stats", *args)
    assert result.exit_code == 0 and result.stderr == "", result
    return result.json()


def names(data: dict):
    return [a["name"] for a in data["accounts"]]


def the_account(data: dict) -> dict:
    assert len(data["accounts"]) == 1, data
    return data["accounts"][0]


def sender_email_item(data: dict) -> dict:
    return the_account(data)["domains"][0]["sender_emails"][0]


ADDED_KEYS = ("dailyExclusion", "dailyLimit", "dailyRateLimited", "dailyUsed")   # beyond the seed


def seed_keys(data):
    """``am stats`` JSON without the keys added beyond the seed (each object has all of them)."""
    if isinstance(data, list):
        return [seed_keys(x) for x in data]
    if isinstance(data, dict):
        if "id" in data:
            assert set(ADDED_KEYS) <= set(data), data
        return {k: seed_keys(v) for k, v in data.items() if k not in ADDED_KEYS}
    return data


# -- help ---------------------------------------------------------------------

def test_root_help_lists_am(ie):
    assert ("  am                  interaction with the Activity Monitor, same API as in ActivityMonitor UI\n"
            in ie.invoke("--help").stdout)


@pytest.mark.parametrize("args", [("am", "--help"), ("am", "-h"), ("am",)])
def test_am_help_is_the_seed_text(ie, args):
    """The seed's text; beyond it, more commands: observed, whitelist."""
    result = ie.invoke(*args)
    assert (result.exit_code, result.stdout, result.stderr) == (0, AM_HELP, "")


def test_stats_help_is_the_seed_text(ie):
    """The seed's text, with --since a duration and -l for --limit, as the product's newer documentation has."""
    assert ie.invoke("am", "stats", "--help").stdout == STATS_HELP


def test_limit_help_and_limit_set_help(ie):
    """The seed's text, with the documented -1 (remove the override) in --limit; beyond it --observe and
    apply-suggested."""
    assert ie.invoke("am", "limit", "--help").stdout == LIMIT_HELP
    assert ie.invoke("am", "limit", "set", "--help").stdout == LIMIT_SET_HELP


def test_server_settings_help_says_what_minus_one_and_zero_mean(ie):
    out = ie.invoke("am", "server-settings", "--help").stdout
    assert out.startswith("Operates by the server sender limit settings and allows to set default limit that is "
                          "applied for all sender objects")
    assert "  ie-cli am server-settings [flags]\n  ie-cli am server-settings [command]\n" in out
    assert "  set " in out
    out = ie.invoke("am", "server-settings", "set", "--help").stdout
    for flag in ("--account int", "--domain int", "--limit-mode int", "--script int", "--sender-email int"):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(flag))
        assert line.endswith("(default -1)") and "-1 leaves it unchanged" in line, line
    assert "0 means unlimited" in out
    for flag in ("--daily-account int", "--daily-domain int", "--daily-script int", "--daily-sender-email int",
                 "--max-recipients int"):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(flag))
        assert line.endswith("(default -1)") and "-1 leaves it unchanged" in line, line


# -- stats: the seed's shape --------------------------------------------------

# New keys beside the seed's: observe mode and suggested limits (one message sent just now), trust for
# a while (none here).
BEYOND_THE_SEED = {"observe": -1, "observing": False, "suggested_limit": 2, "suggested_daily_limit": 2,
                   "raised_limit": None, "raised_until": None, "whitelisted_until": None}


def test_stats_matches_the_seed_example_key_for_key(ie):
    who = ("domain", "domain.com", "test@domain.com", "")
    send(ie, who)
    quarantine(ie, who)
    result = ie.invoke("am", "stats", "--since", "5000")
    assert result.exit_code == 0, result
    acct, dom, sender = (object_id(ie, "account", "domain"), object_id(ie, "domain", "domain.com"),
                         object_id(ie, "sender_email", "test@domain.com"))
    assert seed_keys(result.json()) == {"accounts": [{
        "domains": [{
            "account_id": acct, "exclusion": False, "id": dom, "limit": 0, "messages": 1, "name": "domain.com",
            "quarantined": 1, "rateLimited": False, **BEYOND_THE_SEED,
            "sender_emails": [{
                "account_id": acct, "domain_id": dom, "exclusion": False, "id": sender, "limit": 0,
                "messages": 1, "name": "test@domain.com", "quarantined": 1, "rateLimited": False,
                "whitelisted": False, **BEYOND_THE_SEED}],
            "whitelisted": False}],
        "exclusion": False, "id": acct, "limit": 0, "messages": 1, "name": "domain", "quarantined": 1,
        "rateLimited": False, "scripts": None, "whitelisted": False, **BEYOND_THE_SEED}]}
    # printed as the seed prints it: keys sorted, four-space indent
    lines = result.stdout.splitlines()
    assert lines[:3] == ["{", '    "accounts": [', "        {"] and '            "domains": [' in lines
    assert '            "scripts": null,' in lines


def test_stats_scripts_and_null_domains(ie):
    send(ie, WHO, n=2)
    send(ie, ("demo2", "", "", "demo2.test/mail.php"))   # a null sender from a script
    data = stats(ie)
    assert names(data) == ["demo1", "demo2"]
    demo1, demo2 = data["accounts"]
    assert [s["name"] for s in demo1["scripts"]] == ["demo1.test/x.php"]
    script = demo1["scripts"][0]
    assert sorted(seed_keys(script)) == sorted(["account_id", "exclusion", "id", "limit", "messages", "name",
                                                "quarantined", "rateLimited", "whitelisted", *BEYOND_THE_SEED])
    assert {k: script[k] for k in ADDED_KEYS} == {"dailyExclusion": False, "dailyLimit": 0,
                                                  "dailyRateLimited": False, "dailyUsed": 2}
    assert (script["account_id"], script["messages"], script["quarantined"]) == (demo1["id"], 2, 0)
    assert demo1["messages"] == 2 and demo1["domains"][0]["sender_emails"][0]["messages"] == 2
    assert demo2["domains"] is None
    assert [s["name"] for s in demo2["scripts"]] == ["demo2.test/mail.php"]


def test_no_activity_prints_empty_accounts(ie):
    result = ie.invoke("am", "stats")
    assert (result.exit_code, result.stdout) == (0, '{\n    "accounts": []\n}\n')


# -- stats: filters -------------------------------------------------------------

@pytest.fixture
def busy(ie):
    send(ie, ("demo1", "demo1.test", "a@demo1.test", "demo1.test/x.php"))
    send(ie, ("demo1", "demo1.test", "b@demo1.test", ""))
    send(ie, ("demo1", "other.test", "c@other.test", "demo1.test/y.php"))
    send(ie, ("demo2", "demo2.test", "a@demo2.test", "demo2.test/x.php"))
    return ie


def test_filter_by_account_name(busy):
    acct = the_account(stats(busy, "--account-name", "demo2"))
    assert acct["name"] == "demo2" and [d["name"] for d in acct["domains"]] == ["demo2.test"]
    assert stats(busy, "--account-name", "demo") == {"accounts": []}     # exact, not a part of the name
    assert names(stats(busy, "--account-name", "")) == ["demo1", "demo2"]   # empty = no filter


def test_filter_by_domain(busy):
    for value in ("other.test", "OTHER.test."):
        acct = the_account(stats(busy, "--domain", value))
        assert acct["name"] == "demo1"
        assert [d["name"] for d in acct["domains"]] == ["other.test"]
        assert acct["scripts"] is None
    assert stats(busy, "--domain", "nowhere.test") == {"accounts": []}
    assert_error(busy.invoke("am", "stats", "--domain", "not a domain"), "invalid domain name", "not a domain")


def test_filter_by_sender_email(busy):
    acct = the_account(stats(busy, "--sender-email", "B@Demo1.test"))
    assert [d["name"] for d in acct["domains"]] == ["demo1.test"]
    assert [s["name"] for s in acct["domains"][0]["sender_emails"]] == ["b@demo1.test"]
    assert acct["scripts"] is None
    assert names(stats(busy, "--sender-email", "a@demo2.test")) == ["demo2"]
    assert stats(busy, "--sender-email", "z@demo1.test") == {"accounts": []}
    assert_error(busy.invoke("am", "stats", "--sender-email", "nobody"), "invalid email address", "nobody")


def test_filter_by_script_name(busy):
    acct = the_account(stats(busy, "--script-name", "demo1.test/y.php"))
    assert acct["name"] == "demo1" and acct["domains"] is None
    assert [s["name"] for s in acct["scripts"]] == ["demo1.test/y.php"]
    assert stats(busy, "--script-name", "demo1.test/y") == {"accounts": []}


def test_filters_combine(busy):
    acct = the_account(stats(busy, "--account-name", "demo1", "--domain", "demo1.test"))
    assert [s["name"] for s in acct["domains"][0]["sender_emails"]] == ["a@demo1.test", "b@demo1.test"]
    assert stats(busy, "--account-name", "demo2", "--domain", "demo1.test") == {"accounts": []}


# -- stats: pagination and since --------------------------------------------------

def test_limit_and_offset_count_accounts(ie):
    for n in range(5):
        for sender in ("a", "b", "c"):   # many objects per account: the page still counts accounts
            send(ie, (f"user{n}", f"user{n}.test", f"{sender}@user{n}.test", f"user{n}.test/{sender}.php"))
    assert names(stats(ie)) == [f"user{n}" for n in range(5)]
    page = stats(ie, "--limit", "2", "--offset", "1")
    assert names(page) == ["user1", "user2"]
    assert all(len(a["domains"][0]["sender_emails"]) == 3 and len(a["scripts"]) == 3 for a in page["accounts"])
    assert names(stats(ie, "--limit", "2", "--offset", "4")) == ["user4"]
    assert stats(ie, "--offset", "5") == {"accounts": []}


def test_since_leaves_out_older_activity(ie):
    send(ie, ("demo1", "demo1.test", "old@demo1.test", ""), ago=2 * 3600)
    send(ie, ("demo2", "demo2.test", "new@demo2.test", ""), ago=300)
    quarantine(ie, ("demo2", "demo2.test", "new@demo2.test", ""), ago=3 * 3600)
    default = stats(ie)
    assert names(default) == ["demo2"]
    assert (the_account(default)["messages"], the_account(default)["quarantined"]) == (1, 0)
    assert names(stats(ie, "--since", "10000")) == ["demo1", "demo2"]
    wide = stats(ie, "--since", str(4 * 3600))
    assert wide["accounts"][1]["quarantined"] == 1
    assert names(stats(ie, "--since", "60")) == []   # minute buckets: 5 minutes ago is out


@pytest.mark.parametrize("args, fragments", [
    (("--since", "0"), ("invalid since 0", "2592000")),
    (("--since", "-5"), ("invalid since -5",)),
    (("--since", str(30 * 86400 + 1)), ("invalid since 2592001", "2592000", "30 days")),
    (("--limit", "0"), ("invalid limit 0",)),
    (("--limit", "1001"), ("invalid limit 1001", "1000")),
    (("--offset", "-1"), ("invalid offset -1",)),
    (("--offset", str(2**70)), ("invalid offset",)),
    (("--since", "x"), ("--since", "invalid duration 'x': use a number of seconds or 100s, 5m, 1h, 5d")),
    (("--since", "5x"), ("invalid duration '5x'",)),
    (("--since", "31d"), ("invalid since 2678400", "2592000")),
    (("--limit",), ("--limit",)),
])
def test_stats_rejects_bad_values(ie, args, fragments):
    assert_error(ie.invoke("am", "stats", *args), *fragments)


def test_since_maximum_follows_the_configured_retention(ie):
    ie.write_config(ie.config_file.read_text() + "activity_monitor:\n  retention_days: 1\n")
    assert stats(ie, "--since", "86400") == {"accounts": []}
    assert_error(ie.invoke("am", "stats", "--since", "86401"), "invalid since 86401", "86400", "1 days")


# -- limit set ----------------------------------------------------------------------

def test_limit_set_shows_in_stats_and_minus_one_removes_it(ie):
    send(ie)
    ie.invoke("am", "server-settings", "set", "--sender-email", "50")
    sid = object_id(ie, "sender_email", "a@demo1.test")
    item = sender_email_item(stats(ie))
    assert (item["limit"], item["exclusion"]) == (50, False)

    result = ie.invoke("am", "limit", "set", f"--id={sid}", "--limit=7", "--so-type=sender_email")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "OK\n", "")
    item = sender_email_item(stats(ie))
    assert (item["limit"], item["exclusion"]) == (7, True)

    assert ie.invoke("am", "limit", "set", "--id", sid, "--limit", "0", "--so-type", "sender_email").stdout == "OK\n"
    item = sender_email_item(stats(ie))
    assert (item["limit"], item["exclusion"]) == (0, True)   # its own limit: unlimited

    assert ie.invoke("am", "limit", "set", "--id", sid, "--limit", "-1", "--so-type", "sender_email").stdout == "OK\n"
    item = sender_email_item(stats(ie))
    assert (item["limit"], item["exclusion"]) == (50, False)   # back to the server default
    assert override(ie, sid) is None


def test_limit_set_for_each_type_and_upper_case_id(ie):
    send(ie)
    for so_type, name, limit in (("account", "demo1", 3), ("domain", "demo1.test", 5),
                                 ("script", "demo1.test/x.php", 9)):
        oid = object_id(ie, so_type, name)
        result = ie.invoke("am", "limit", "set", "--id", oid.upper(), "--limit", str(limit), "--so-type", so_type)
        assert result.stdout == "OK\n", result
        assert override(ie, oid) == limit
    acct = the_account(stats(ie))
    assert (acct["limit"], acct["exclusion"]) == (3, True)
    assert (acct["domains"][0]["limit"], acct["scripts"][0]["limit"]) == (5, 9)
    assert acct["domains"][0]["sender_emails"][0]["exclusion"] is False


def test_daily_limit_set_and_removed_leaves_the_hourly_one(ie):
    send(ie, n=3)
    sid = object_id(ie, "sender_email", "a@demo1.test")
    ie.invoke("am", "limit", "set", "--id", sid, "--limit", "7", "--so-type", "sender_email")
    result = ie.invoke("am", "limit", "set", "--id", sid, "--daily-limit", "3", "--so-type", "sender_email")
    assert (result.exit_code, result.stdout) == (0, "OK\n"), result
    row = ie.conn.execute("SELECT limit_override, daily_override FROM sender_objects WHERE id = ?", (sid,)).fetchone()
    assert tuple(row) == (7, 3)
    item = sender_email_item(stats(ie))
    assert (item["limit"], item["dailyLimit"], item["dailyExclusion"], item["dailyUsed"], item["dailyRateLimited"]) \
        == (7, 3, True, 3, True)
    ie.invoke("am", "server-settings", "set", "--daily-sender-email", "50")
    ie.invoke("am", "limit", "set", "--id", sid, "--daily-limit", "-1", "--so-type", "sender_email")
    item = sender_email_item(stats(ie))
    assert (item["limit"], item["dailyLimit"], item["dailyExclusion"], item["dailyRateLimited"]) == (7, 50, False, False)
    both = ie.invoke("am", "limit", "set", "--id", sid, "--limit", "2", "--daily-limit", "0", "--so-type", "sender_email")
    assert both.stdout == "OK\n"
    assert tuple(ie.conn.execute("SELECT limit_override, daily_override FROM sender_objects WHERE id = ?",
                                 (sid,)).fetchone()) == (2, 0)
    assert ie.conn.execute("SELECT detail FROM audit WHERE action = 'sender limit' ORDER BY id DESC").fetchone()[0] \
        == '{"daily_limit": 0, "limit": 2, "name": "a@demo1.test", "type": "sender_email"}'


def test_daily_limit_errors_change_nothing(ie):
    send(ie)
    dom = object_id(ie, "domain", "demo1.test")
    ie.invoke("am", "limit", "set", "--id", dom, "--limit", "4", "--daily-limit", "40", "--so-type", "domain")
    for args, fragments in (
            (("--daily-limit", "-2"), ("invalid daily limit -2", "-1 to remove")),
            (("--daily-limit", str(2**40)), ("invalid daily limit",)),
            (("--limit", "5", "--daily-limit", "-3"), ("invalid daily limit -3",)),
            (("--limit", "-9", "--daily-limit", "5"), ("invalid limit -9",)),
            (("--daily-limit", "x"), ("--daily-limit", "not a valid integer"))):
        assert_error(ie.invoke("am", "limit", "set", "--id", dom, "--so-type", "domain", *args), *fragments)
    assert tuple(ie.conn.execute("SELECT limit_override, daily_override FROM sender_objects WHERE id = ?",
                                 (dom,)).fetchone()) == (4, 40)


def test_rate_limited_when_at_the_limit(ie):
    send(ie, n=2)
    sid = object_id(ie, "sender_email", "a@demo1.test")
    assert sender_email_item(stats(ie))["rateLimited"] is False
    ie.invoke("am", "limit", "set", "--id", sid, "--limit", "2", "--so-type", "sender_email")
    data = stats(ie)
    assert sender_email_item(data)["rateLimited"] is True
    assert the_account(data)["rateLimited"] is False


def test_limit_set_errors_change_nothing(ie):
    send(ie)
    dom = object_id(ie, "domain", "demo1.test")
    ie.invoke("am", "limit", "set", "--id", dom, "--limit", "4", "--so-type", "domain")
    cases = [
        (("--id", dom, "--limit", "5", "--so-type", "account"),
         (f'sender object "{dom}" is a domain, not an account',)),
        (("--id", dom, "--limit", "5", "--so-type", "sender_email"), ("is a domain, not a sender email",)),
        (("--id", NO_ID, "--limit", "5", "--so-type", "domain"), (f'sender object "{NO_ID}" not found',)),
        (("--id", "not-a-uuid", "--limit", "5", "--so-type", "domain"),
         ('invalid sender object id "not-a-uuid"',)),
        (("--id", "11111111-1111-1111-1111-11111111111", "--limit", "5", "--so-type", "domain"),
         ("invalid sender object id",)),
        (("--id", dom, "--limit", "-2", "--so-type", "domain"), ("invalid limit -2", "-1 to remove")),
        (("--id", dom, "--limit", str(2**63), "--so-type", "domain"), ("invalid limit",)),
        (("--id", dom, "--limit", "5", "--so-type", "user"), ('invalid sender object type "user"', "sender_email")),
        (("--id", dom, "--limit", "5"), ("--so-type",)),
        (("--limit", "5", "--so-type", "domain"), ("--id",)),
        (("--id", dom, "--limit", "five", "--so-type", "domain"), ("--limit", "not a valid integer")),
    ]
    for args, fragments in cases:
        assert_error(ie.invoke("am", "limit", "set", *args), *fragments)
    assert override(ie, dom) == 4
    assert [r[0] for r in ie.conn.execute("SELECT limit_override FROM sender_objects WHERE id != ?", (dom,))] \
        == [None, None, None]


# -- server settings ------------------------------------------------------------------

def test_server_settings_defaults(ie):
    result = ie.invoke("am", "server-settings")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == ('{\n    "account": 0,\n    "daily_account": 0,\n    "daily_domain": 0,\n'
                             '    "daily_script": 0,\n    "daily_sender_email": 0,\n    "domain": 0,\n'
                             '    "limit_mode": 1,\n    "max_recipients": 0,\n    "observe": 0,\n    "script": 0,\n'
                             '    "sender_email": 0\n}\n')


def test_server_settings_set_the_seed_examples(ie):
    result = ie.invoke("am", "server-settings", "set", "--limit-mode=2", "--domain=100")
    assert (result.exit_code, result.stdout, result.stderr) == (0, SEED_SERVER_SETTINGS_1, "")
    result = ie.invoke("am", "server-settings", "set", "--limit-mode=1", "--account=0")
    assert (result.exit_code, result.stdout, result.stderr) == (0, SEED_SERVER_SETTINGS_2, "")
    assert ie.invoke("am", "server-settings").stdout == SEED_SERVER_SETTINGS_2.split("\n", 1)[1]
    assert load_server_limits(ie.conn) == ServerLimits(domain=100)


def test_server_settings_minus_one_leaves_values_unchanged(ie):
    ie.invoke("am", "server-settings", "set", "--account", "10", "--domain", "20", "--script", "30",
              "--sender-email", "40", "--limit-mode", "2")
    result = ie.invoke("am", "server-settings", "set", "--domain", "-1", "--script", "5")
    assert result.exit_code == 0
    assert load_server_limits(ie.conn) == ServerLimits(account=10, domain=20, script=5, sender_email=40,
                                                       limit_mode=2)
    unchanged = ie.invoke("am", "server-settings", "set")
    assert unchanged.stdout.startswith("New server settings is:\n{\n")
    assert load_server_limits(ie.conn) == ServerLimits(account=10, domain=20, script=5, sender_email=40,
                                                       limit_mode=2)


def test_server_settings_set_daily_limits_and_the_cap(ie):
    result = ie.invoke("am", "server-settings", "set", "--daily-account", "1000", "--daily-domain", "500",
                       "--daily-script", "100", "--daily-sender-email", "200", "--max-recipients", "50")
    assert result.exit_code == 0, result
    printed = json.loads(result.stdout.split("\n", 1)[1])
    assert {k: printed[k] for k in ("daily_account", "daily_domain", "daily_script", "daily_sender_email",
                                    "max_recipients")} == {"daily_account": 1000, "daily_domain": 500,
                                                           "daily_script": 100, "daily_sender_email": 200,
                                                           "max_recipients": 50}
    ie.invoke("am", "server-settings", "set", "--daily-domain", "-1", "--max-recipients", "0", "--account", "9")
    assert load_server_limits(ie.conn) == ServerLimits(account=9, daily_account=1000, daily_domain=500,
                                                       daily_script=100, daily_sender_email=200)
    send(ie)
    acct = the_account(stats(ie))
    assert (acct["dailyLimit"], acct["domains"][0]["dailyLimit"], acct["scripts"][0]["dailyLimit"],
            acct["domains"][0]["sender_emails"][0]["dailyLimit"], acct["dailyUsed"]) == (1000, 500, 100, 200, 1)


@pytest.mark.parametrize("args, fragments", [
    (("--daily-account", "-2"), ("invalid daily-account limit -2", "-1 to leave it unchanged")),
    (("--daily-sender-email", str(2**40)), ("invalid daily-sender-email limit",)),
    (("--max-recipients", "-5"), ("invalid max-recipients -5",)),
    (("--daily-domain", "5", "--max-recipients", "-5"), ("invalid max-recipients -5",)),
    (("--max-recipients", "lots"), ("--max-recipients", "not a valid integer")),
])
def test_server_settings_bad_daily_values_change_nothing(ie, args, fragments):
    ie.invoke("am", "server-settings", "set", "--daily-domain", "9", "--max-recipients", "3")
    assert_error(ie.invoke("am", "server-settings", "set", *args), *fragments)
    assert load_server_limits(ie.conn) == ServerLimits(daily_domain=9, max_recipients=3)


def test_server_default_shows_in_stats(ie):
    send(ie)
    ie.invoke("am", "server-settings", "set", "--account", "10", "--domain", "20", "--script", "30",
              "--sender-email", "40")
    acct = the_account(stats(ie))
    assert (acct["limit"], acct["domains"][0]["limit"], acct["scripts"][0]["limit"],
            acct["domains"][0]["sender_emails"][0]["limit"]) == (10, 20, 30, 40)


@pytest.mark.parametrize("args, fragments", [
    (("--limit-mode", "3"), ("invalid limit mode 3", "1", "2")),
    (("--limit-mode", "0"), ("invalid limit mode 0",)),
    (("--domain", "5", "--limit-mode", "3"), ("invalid limit mode 3",)),
    (("--account", "-2"), ("invalid account limit -2",)),
    (("--limit-mode", "2", "--sender-email", "-7"), ("invalid sender-email limit -7",)),
    (("--script", str(2**40)), ("invalid script limit",)),
    (("--domain", "many"), ("--domain", "not a valid integer")),
])
def test_server_settings_bad_values_change_nothing(ie, args, fragments):
    ie.invoke("am", "server-settings", "set", "--domain", "9")
    assert_error(ie.invoke("am", "server-settings", "set", *args), *fragments)
    assert load_server_limits(ie.conn) == ServerLimits(domain=9)


# -- whitelisting sender objects ------------------------------------------------------

def test_whitelist_add_and_remove_use_the_sender_whitelist(ie):
    send(ie)
    dom, sid = object_id(ie, "domain", "demo1.test"), object_id(ie, "sender_email", "a@demo1.test")
    for oid in (dom, sid):
        result = ie.invoke("am", "whitelist", "add", "--id", oid)
        assert (result.exit_code, result.stdout, result.stderr) == (0, "OK\n", "")
    assert ie.invoke("whitelist", "sender", "list", "--json").json() == {
        "success": True, "emails": ["a@demo1.test"], "domains": ["demo1.test"],
        "expires_at": {"demo1.test": None, "a@demo1.test": None}}
    acct = the_account(stats(ie))
    assert acct["whitelisted"] is False
    assert acct["domains"][0]["whitelisted"] is True
    assert acct["domains"][0]["sender_emails"][0]["whitelisted"] is True
    assert acct["scripts"][0]["whitelisted"] is False
    assert ie.invoke("am", "whitelist", "add", "--id", dom).stdout == "OK\n"   # already there: fine

    assert ie.invoke("am", "whitelist", "remove", "--id", dom).stdout == "OK\n"
    assert ie.invoke("whitelist", "sender", "list").stdout == "EMAILS\na@demo1.test\n\nDOMAINS\nNo available data\n"
    assert the_account(stats(ie))["domains"][0]["whitelisted"] is False
    assert_error(ie.invoke("am", "whitelist", "remove", "--id", dom),
                 'domain "demo1.test" is not in the sender whitelist')


def test_whitelisted_by_ie_cli_whitelist_shows_in_stats_and_am_removes_it(ie):
    send(ie)
    ie.invoke("whitelist", "sender", "add", "a@demo1.test")
    assert sender_email_item(stats(ie))["whitelisted"] is True
    sid = object_id(ie, "sender_email", "a@demo1.test")
    assert ie.invoke("am", "whitelist", "remove", "--id", sid).stdout == "OK\n"
    assert ie.invoke("whitelist", "sender", "list", "--json").json()["emails"] == []


def test_accounts_and_scripts_cannot_be_whitelisted(ie):
    send(ie)
    assert_error(ie.invoke("am", "whitelist", "add", "--id", object_id(ie, "account", "demo1")),
                 "an account cannot be whitelisted: only domain and sender_email objects can")
    assert_error(ie.invoke("am", "whitelist", "add", "--id", object_id(ie, "script", "demo1.test/x.php")),
                 "a script cannot be whitelisted")
    assert_error(ie.invoke("am", "whitelist", "remove", "--id", object_id(ie, "account", "demo1")),
                 "an account cannot be whitelisted")
    assert_error(ie.invoke("am", "whitelist", "add", "--id", NO_ID), f'sender object "{NO_ID}" not found')
    assert_error(ie.invoke("am", "whitelist", "add", "--id", "bogus"), 'invalid sender object id "bogus"')
    assert_error(ie.invoke("am", "whitelist", "add"), "--id")
    assert ie.invoke("whitelist", "sender", "list", "--json").json() == {
        "success": True, "emails": [], "domains": [], "expires_at": {}}


# -- the console script ------------------------------------------------------------------

def test_console_script_respects_the_root_and_reports_one_line(ie):
    send(ie)
    result = ie.run_script("am", "stats", "--account-name", "demo1")
    assert result.exit_code == 0, result
    assert names(result.json()) == ["demo1"]
    assert_error(ie.run_script("am", "limit", "set", "--id", NO_ID, "--limit", "3", "--so-type", "domain"),
                 "not found")
    assert_error(ie.run_script("am", "server-settings", "set", "--limit-mode", "5"), "invalid limit mode 5")


def test_no_whitelist_applies_to_the_objects_of_an_unverified_pseudo_account(ie):
    forged = ("unverified:demo2", "demo2.test", "a@demo2.test", "")
    send(ie, ("demo2", "demo2.test", "a@demo2.test", ""))
    send(ie, forged)
    ie.invoke("whitelist", "sender", "add", "demo2.test")
    by_account = {a["name"]: a for a in stats(ie)["accounts"]}
    assert by_account["demo2"]["domains"][0]["whitelisted"] is True
    assert by_account["unverified:demo2"]["domains"][0]["whitelisted"] is False   # it does not apply there
    [dom] = [r[0] for r in ie.conn.execute(
        "SELECT o.id FROM sender_objects o JOIN sender_objects a ON a.id = o.account_id"
        " WHERE o.type = 'domain' AND a.name = 'unverified:demo2'")]
    assert_error(ie.invoke("am", "whitelist", "add", "--id", dom),
                 '"demo2.test" under unverified:demo2: that mail\'s sender is not verified, and no whitelist applies')
