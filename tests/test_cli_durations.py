"""``--since`` durations (100s, 5m, 1h, 5d) wherever ie-cli takes --since, bare integers as before,
``-l`` for ``--limit``, and ``whitelist ... delete`` beside ``remove``."""
import time

import click
import pytest

from imunifyemail.cli import durations
from tests.cli_helpers import assert_error
from tests.test_cli_am import names, send, stats


@pytest.mark.parametrize("text, seconds", [
    ("100s", 100), ("5m", 300), ("1h", 3600), ("5d", 432000), ("42", 42), ("0", 0), (" 2h ", 7200), ("-5", -5)])
def test_parse(text, seconds):
    assert durations.Duration().convert(text, None, None) == seconds


@pytest.mark.parametrize("text", ["5x", "1.5h", "", "h", "5 m", "1h30m", "5D", "+5"])
def test_parse_refuses_with_the_forms_it_takes(text):
    with pytest.raises(click.BadParameter) as caught:
        durations.Duration().convert(text, None, None)
    assert str(caught.value) == f"invalid duration {text!r}: use a number of seconds or 100s, 5m, 1h, 5d"


def test_text_of_a_default():
    assert [durations.text(s) for s in (3600, 30 * 86400, 300, 90, 0)] == ["1h", "30d", "5m", "90s", "0s"]


def test_am_stats_since_takes_durations_and_seconds(ie):
    send(ie, ("demo1", "demo1.test", "old@demo1.test", ""), ago=2 * 3600)
    send(ie, ("demo2", "demo2.test", "new@demo2.test", ""), ago=300)
    assert names(stats(ie)) == ["demo2"]                       # default 1h
    assert names(stats(ie, "--since", "3h")) == ["demo1", "demo2"]
    assert stats(ie, "--since", "3h") == stats(ie, "--since", "10800") == stats(ie, "--since", "180m")
    assert names(stats(ie, "--since", "1d")) == ["demo1", "demo2"]
    assert names(stats(ie, "--since", "60s")) == []
    assert names(stats(ie, "-l", "1", "--since", "1d")) == ["demo1"]
    assert_error(ie.invoke("am", "stats", "--since", "5x"),
                 "--since", "invalid duration '5x': use a number of seconds or 100s, 5m, 1h, 5d")


def test_am_observed_since_takes_durations(ie):
    assert ie.invoke("am", "observed", "--since", "2h", "-l", "5").json() == {"items": [], "max_count": 0}
    assert_error(ie.invoke("am", "observed", "--since", "31d"), "invalid since 2678400")


def test_emails_list_since_a_duration_or_a_unix_time(ie):
    now = int(time.time())
    ancient = ie.add(subject="ancient", at=now - 31 * 86400)
    old = ie.add(subject="old", at=now - 3 * 3600)
    new = ie.add(subject="new", at=now - 600)

    def ids(*flags):
        return [i["email_id"] for i in ie.invoke("emails", "list", "--json", *flags).json()["items"]]

    assert ids() == ids("--since", "30d") == [new.email_id, old.email_id]   # the default: the last 30 days
    assert ids("--since", "0") == [new.email_id, old.email_id, ancient.email_id]   # since the epoch: all
    assert ids("--since", "1h") == ids("--since", "60m") == [new.email_id]
    assert ids("--since", "4h") == ids("--since", "1d") == [new.email_id, old.email_id]
    assert ids("--since", "5m") == []
    assert ids("--since", str(now - 3600)) == [new.email_id]   # a bare number: a unix time, as before
    assert ids("-l", "1") == [new.email_id]
    assert_error(ie.invoke("emails", "list", "--since", "5x"), "--since", "invalid duration '5x'")
    assert_error(ie.invoke("emails", "list", "--since", "-1h"), "--since", "negative")


def test_audit_list_since_takes_durations(ie):
    assert ie.invoke("whitelist", "sender", "add", "a.example").exit_code == 0
    assert ie.invoke("audit", "list", "--since", "1h", "--json").json()["max_count"] == 1
    assert ie.invoke("audit", "list", "--since", "3600", "-l", "1", "--json").json()["max_count"] == 1
    assert_error(ie.invoke("audit", "list", "--since", "1w"), "--since", "invalid duration '1w'")


@pytest.mark.parametrize("list_name, value", [("sender", "a.example"), ("recipient", "b@c.example"),
                                               ("authuser", "u@d.example")])
def test_whitelist_delete_is_remove(ie, list_name, value):
    added = ie.invoke("whitelist", list_name, "add", value, "other.example" if list_name != "authuser" else "o@e.x")
    assert added.exit_code == 0, added
    deleted = ie.invoke("whitelist", list_name, "delete", value)
    assert deleted.exit_code == 0, deleted
    kind = "email" if "@" in value else "domain"
    assert deleted.stdout.splitlines()[1:] == [f"1. {kind:<10}{value}", "OK"]
    listed = ie.invoke("whitelist", list_name, "list", "--json").json()
    assert value not in listed["emails"] + listed["domains"]
    assert_error(ie.invoke("whitelist", list_name, "delete", value), value)   # gone: as remove says
    help_text = ie.invoke("whitelist", list_name, "--help").stdout
    assert "  delete      delete " in help_text and "(the same as remove)" in help_text
    assert "  remove      remove " in help_text and "(the same as delete)" in help_text
