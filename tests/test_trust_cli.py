"""ie-cli emails release --whitelist-sender|--raise-limit --for|--until, and whitelist add --for|--until
(issue 19: trust in one step, for a while), against a real quarantine and store."""
import json
import time

import pytest

from imunifyemail.core import trust
from imunifyemail.core.limits import Reached
from imunifyemail.store.activity import Activity
from imunifyemail.store.quarantine import NewMessage
from imunifyemail.store.settings import save_server_limits, whitelist_entries
from tests.cli_helpers import assert_error, make_raw

SENDER = "user@demo1.test"
WHO = ("demo1", "demo1.test", SENDER, "")


def held_for_limit(ie, so_type="sender_email", name=SENDER, limit=2, sender=SENDER):
    """A message held for ratelimit, its sender objects in the Activity Monitor, the limit recorded."""
    save_server_limits(ie.conn, {so_type: limit})
    Activity(ie.conn).record_sent(WHO, 1)
    msg = NewMessage(account="demo1", sender=sender, recipients=("friend@remote.example",), subject="limited",
                     reasons=("ratelimit",), header_from=sender, filter_score=0.5, filter_action="no action",
                     limits=(Reached(so_type, name, limit),))
    return ie.quarantine(int(time.time())).add(msg, make_raw("limited", sender))


def object_row(ie, so_type, name=None):
    return ie.conn.execute("SELECT id, limit_override, raised_limit, raised_until FROM sender_objects"
                           " WHERE type = ? AND (? IS NULL OR name = ?)", (so_type, name, name)).fetchone()


def audit_rows(ie):
    return [(r[0], json.loads(r[1])) for r in ie.conn.execute("SELECT action, detail FROM audit ORDER BY id")]


def test_release_and_whitelist_the_sender_for_a_week(ie):
    msg = ie.add("demo1", sender="Boss@demo1.test")
    before = int(time.time())
    result = ie.invoke("emails", "release", "--ids", msg.email_id, "--whitelist-sender", "--for", "7d")
    assert result.exit_code == 0, result
    [(argv, _)] = ie.sent()
    assert ie.ids() == []
    until = whitelist_entries(ie.conn, "sender", time.time())["expires_at"]["boss@demo1.test"]
    assert before + 7 * 86400 <= until <= int(time.time()) + 7 * 86400
    lines = result.stdout.splitlines()
    assert lines[-1] == "OK" and lines[0].startswith("Whitelisted sender boss@demo1.test until 20")
    assert [a for a, _ in audit_rows(ie)] == ["release", "whitelist add"]
    assert audit_rows(ie)[1][1] == {"list": "sender", "values": ["boss@demo1.test"], "until": trust.iso(until)}
    listed = ie.invoke("whitelist", "sender", "list", "--json").json()
    assert listed["emails"] == ["boss@demo1.test"] and listed["expires_at"] == {"boss@demo1.test": until}
    assert "boss@demo1.test  (until 20" in ie.invoke("whitelist", "sender", "list").stdout


def test_release_and_raise_the_limit_it_reached_until_a_time(ie):
    msg = held_for_limit(ie)
    sid = object_row(ie, "sender_email")[0]
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3 * 3600))
    result = ie.invoke("emails", "release", "--ids", msg.email_id, "--raise-limit", "50", "--until", until)
    assert result.exit_code == 0, result
    assert result.stdout == f"Raised the limit of sender_email {SENDER} to 50 an hour until {until}\nOK\n"
    row = object_row(ie, "sender_email")
    assert (row[1], row[2], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row[3]))) == (None, 50, until)
    assert len(ie.sent()) == 1 and ie.ids() == []
    action, detail = audit_rows(ie)[-1]
    assert action == "sender limit raise" and detail == {"type": "sender_email", "name": SENDER, "limit": 50,
                                                         "until": trust.iso(row[3])}
    assert sid == row[0]


def test_am_stats_shows_the_raise_and_the_whitelisting_with_their_ends(ie):
    msg = held_for_limit(ie, "domain", "demo1.test", limit=3)
    assert ie.invoke("emails", "release", "--ids", msg.email_id, "--raise-limit", "9", "--for", "2h").exit_code == 0
    assert ie.invoke("whitelist", "sender", "add", SENDER, "--for", "1d").exit_code == 0
    acct = ie.invoke("am", "stats").json()["accounts"][0]
    domain = acct["domains"][0]
    sender = domain["sender_emails"][0]
    assert (domain["limit"], domain["raised_limit"], domain["exclusion"]) == (9, 9, False)
    assert 0 < domain["raised_until"] - time.time() <= 7200
    assert sender["whitelisted"] is True and 0 < sender["whitelisted_until"] - time.time() <= 86400
    assert (acct["raised_limit"], acct["raised_until"], acct["whitelisted_until"]) == (None, None, None)


@pytest.mark.parametrize("args, says", [
    (["--whitelist-sender"], "say how long: --for DURATION"),
    (["--for", "7d"], "use them with --whitelist-sender or --raise-limit"),
    (["--whitelist-sender", "--raise-limit", "10", "--for", "1d"], "either --whitelist-sender or --raise-limit"),
    (["--whitelist-sender", "--for", "0h"], 'invalid duration "0h": must be more than 0'),
    (["--whitelist-sender", "--for", "soon"], 'invalid duration "soon"'),
    (["--whitelist-sender", "--until", "2020-01-01T00:00Z"], 'invalid time "2020-01-01T00:00Z": it has passed'),
    (["--whitelist-sender", "--for", "1d", "--until", "2099-01-01T00:00Z"], "not both"),
    (["--raise-limit", "0", "--for", "1d"], "0"),
])
def test_bad_trust_flags_release_nothing_and_change_nothing(ie, args, says):
    msg = ie.add("demo1")
    assert_error(ie.invoke("emails", "release", "--ids", msg.email_id, *args), says)
    assert ie.sent() == [] and ie.ids() == [msg.email_id]
    assert ie.conn.execute("SELECT COUNT(*) FROM whitelist").fetchone()[0] == 0


def test_a_raise_needs_a_message_held_for_a_limit_and_a_real_raise(ie):
    spam = ie.add("demo1")
    assert_error(ie.invoke("emails", "release", "--ids", spam.email_id, "--raise-limit", "10", "--for", "1d"),
                 f'email "{spam.email_id}" was held for spam, not for a sender limit: there is no limit to raise')
    limited = held_for_limit(ie, limit=20)
    assert_error(ie.invoke("emails", "release", "--ids", limited.email_id, "--raise-limit", "20", "--for", "1d"),
                 f'20 is no raise: sender_email "{SENDER}"\'s limit is 20 an hour now')
    # one message that cannot be granted: none of the request is done
    assert_error(ie.invoke("emails", "release", "--ids", f"{limited.email_id},{spam.email_id}",
                           "--raise-limit", "40", "--for", "1d"), "not for a sender limit")
    assert ie.sent() == [] and sorted(ie.ids()) == sorted([spam.email_id, limited.email_id])
    assert object_row(ie, "sender_email")[2] is None
    assert [a for a, _ in audit_rows(ie)] == []


def test_a_bounce_or_an_unverified_sender_cannot_be_whitelisted(ie):
    bounce = ie.add("demo1", sender="")
    assert_error(ie.invoke("emails", "release", "--ids", bounce.email_id, "--whitelist-sender", "--for", "1d"),
                 "has no sender (a bounce)")
    forged = ie.add("unverified:demo2", sender="x@demo2.test")
    assert_error(ie.invoke("emails", "release", "--ids", forged.email_id, "--whitelist-sender", "--for", "1d"),
                 "its sender is not verified")
    assert ie.sent() == [] and len(ie.ids()) == 2


def test_a_failed_release_grants_nothing(ie):
    msg = ie.add("demo1")
    ie.fail_sendmail()
    assert_error(ie.invoke("emails", "release", "--ids", msg.email_id, "--whitelist-sender", "--for", "1d"),
                 "not released")
    assert ie.ids() == [msg.email_id]
    assert ie.conn.execute("SELECT COUNT(*) FROM whitelist").fetchone()[0] == 0


def test_whitelist_add_for_a_while(ie):
    result = ie.invoke("whitelist", "sender", "add", "partner.example", "--for", "12h")
    assert result.exit_code == 0, result
    assert result.stdout.startswith("Adding sender(s) to the whitelist until 20")
    assert result.stdout.endswith(":\n1. domain    partner.example\nOK\n")
    until = ie.invoke("whitelist", "sender", "list", "--json").json()["expires_at"]["partner.example"]
    assert 0 < until - time.time() <= 12 * 3600
    _, detail = audit_rows(ie)[-1]
    assert detail == {"list": "sender", "values": ["partner.example"], "until": trust.iso(until)}
    assert_error(ie.invoke("whitelist", "sender", "add", "other.example", "--for", "0m"), "more than 0")
    assert ie.invoke("whitelist", "sender", "list", "--json").json()["domains"] == ["partner.example"]


def test_an_ended_entry_is_not_listed_even_before_the_housekeeping(ie):
    ie.invoke("whitelist", "sender", "add", "gone.example", "--for", "1d")
    ie.conn.execute("UPDATE whitelist SET expires_at = ?", (int(time.time()) - 1,))
    assert ie.invoke("whitelist", "sender", "list", "--json").json() == {
        "success": True, "emails": [], "domains": [], "expires_at": {}}


def test_an_account_limit_is_raised_on_the_account_object(ie):
    msg = held_for_limit(ie, "account", "demo1", limit=4)
    assert ie.invoke("emails", "release", "--ids", msg.email_id, "--raise-limit", "8", "--for", "1h").exit_code == 0
    assert object_row(ie, "account", "demo1")[2] == 8 and object_row(ie, "sender_email")[2] is None
    assert ie.invoke("am", "server-settings").json()["account"] == 4   # the server's tier unchanged
