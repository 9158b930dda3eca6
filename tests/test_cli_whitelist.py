"""ie-cli whitelist authuser|sender|recipient add|list|remove."""
import time

from imunifyemail.store import settings
from tests.cli_helpers import assert_error


def entries(env, list_name):
    """The list's emails and domains in force now (their ends: the expiry tests)."""
    found = settings.whitelist_entries(env.conn, list_name, time.time())
    return {"emails": found["emails"], "domains": found["domains"]}


def test_sender_add_prints_the_seed_text(ie):
    result = ie.invoke("whitelist", "sender", "add", "domain.com", "some_email@domain.com")
    assert result.exit_code == 0, result
    assert result.stdout == ("Adding sender(s) to the whitelist:\n"
                             "1. domain    domain.com\n"
                             "2. email     some_email@domain.com\n"
                             "OK\n")
    assert entries(ie, "sender") == {"emails": ["some_email@domain.com"], "domains": ["domain.com"]}


def test_sender_remove_prints_the_seed_text(ie):
    ie.invoke("whitelist", "sender", "add", "domain.com", "some_email@domain.com")
    result = ie.invoke("whitelist", "sender", "remove", "domain.com")
    assert result.stdout == "Removing sender(s) from the whitelist:\n1. domain    domain.com\nOK\n"
    assert entries(ie, "sender") == {"emails": ["some_email@domain.com"], "domains": []}


def test_values_are_normalized_and_deduplicated(ie):
    result = ie.invoke("whitelist", "sender", "add", "Shop.Example.COM", "shop.example.com.", "Bob@Example.com")
    assert result.stdout.splitlines()[1:3] == ["1. domain    shop.example.com", "2. email     bob@example.com"]
    assert ie.invoke("whitelist", "sender", "add", "shop.example.com").exit_code == 0   # already there: fine
    assert entries(ie, "sender") == {"emails": ["bob@example.com"], "domains": ["shop.example.com"]}
    assert ie.invoke("whitelist", "sender", "remove", "BOB@example.com").exit_code == 0


def test_authuser_add_list_remove(ie):
    result = ie.invoke("whitelist", "authuser", "add", "pp@ppp.com", "me@mydomain.com")
    assert result.stdout == ("Adding authenticated user(s) to the whitelist:\n"
                             "1. email     pp@ppp.com\n"
                             "2. email     me@mydomain.com\n"
                             "OK\n")
    listed = ie.invoke("whitelist", "authuser", "list")
    assert listed.stdout == "EMAILS\npp@ppp.com\nme@mydomain.com\n\nDOMAINS\nNo available data\n"
    data = ie.invoke("whitelist", "authuser", "list", "--json").json()
    assert data == {"success": True, "emails": ["pp@ppp.com", "me@mydomain.com"], "domains": [],
                    "expires_at": {"pp@ppp.com": None, "me@mydomain.com": None}}
    assert list(data) == ["success", "emails", "domains", "expires_at"]   # the seed's keys, then ours
    removed = ie.invoke("whitelist", "authuser", "remove", "pp@ppp.com")
    assert removed.stdout == "Removing authenticated user(s) from the whitelist:\n1. email     pp@ppp.com\nOK\n"
    assert entries(ie, "authuser")["emails"] == ["me@mydomain.com"]


def test_lists_are_separate_and_empty_lists_say_so(ie):
    ie.invoke("whitelist", "sender", "add", "a@b.example")
    assert ie.invoke("whitelist", "authuser", "list").stdout == "EMAILS\nNo available data\n\nDOMAINS\nNo available data\n"
    assert ie.invoke("whitelist", "sender", "list").stdout == "EMAILS\na@b.example\n\nDOMAINS\nNo available data\n"
    assert ie.invoke("whitelist", "sender", "list", "--json").json() == {
        "success": True, "emails": ["a@b.example"], "domains": [], "expires_at": {"a@b.example": None}}


def test_authuser_rejects_domains(ie):
    assert_error(ie.invoke("whitelist", "authuser", "add", "me@mydomain.com", "mydomain.com"),
                 "mydomain.com", "email address")
    assert entries(ie, "authuser") == {"emails": [], "domains": []}


def test_one_bad_value_changes_nothing(ie):
    assert_error(ie.invoke("whitelist", "sender", "add", "good.example", "bad..example", "x@y.example"),
                 "bad..example")
    assert_error(ie.invoke("whitelist", "sender", "add", "good.example", "@nolocal.example"), "@nolocal.example")
    assert entries(ie, "sender") == {"emails": [], "domains": []}


def test_remove_of_an_unlisted_value_removes_nothing(ie):
    ie.invoke("whitelist", "sender", "add", "a.example", "b.example")
    assert_error(ie.invoke("whitelist", "sender", "remove", "a.example", "c.example"),
                 "not in the sender whitelist: c.example")
    assert_error(ie.invoke("whitelist", "sender", "remove", "a.example", "not a domain"), "not a domain")
    assert entries(ie, "sender")["domains"] == ["a.example", "b.example"]
    assert_error(ie.invoke("whitelist", "authuser", "remove", "x@a.example"),
                 "not in the authenticated user whitelist: x@a.example")


def test_add_and_remove_need_values(ie):
    assert_error(ie.invoke("whitelist", "sender", "add"), "no value given")
    assert_error(ie.invoke("whitelist", "authuser", "remove"), "no value given")
    assert_error(ie.invoke("whitelist", "recipient", "add"), "no value given", "or domains")
    assert_error(ie.invoke("whitelist", "nobody", "add", "a.example"), 'unknown command "nobody"')


def test_recipient_add_list_remove(ie):
    result = ie.invoke("whitelist", "recipient", "add", "Abuse@Partner.Example", "reports.example")
    assert result.exit_code == 0, result
    assert result.stdout == ("Adding recipient(s) to the whitelist:\n"
                             "1. email     abuse@partner.example\n"
                             "2. domain    reports.example\n"
                             "OK\n")
    assert ie.invoke("whitelist", "recipient", "list").stdout == \
        "EMAILS\nabuse@partner.example\n\nDOMAINS\nreports.example\n"
    assert ie.invoke("whitelist", "recipient", "list", "--json").json() == {
        "success": True, "emails": ["abuse@partner.example"], "domains": ["reports.example"],
        "expires_at": {"abuse@partner.example": None, "reports.example": None}}
    assert entries(ie, "sender") == {"emails": [], "domains": []}   # a list of its own
    removed = ie.invoke("whitelist", "recipient", "remove", "reports.example")
    assert removed.stdout == "Removing recipient(s) from the whitelist:\n1. domain    reports.example\nOK\n"
    assert_error(ie.invoke("whitelist", "recipient", "remove", "reports.example"),
                 "not in the recipient whitelist: reports.example")
    assert_error(ie.invoke("whitelist", "recipient", "add", "ok.example", "bad..example"), "bad..example")
    assert entries(ie, "recipient") == {"emails": ["abuse@partner.example"], "domains": []}
    actions = [(r["action"], r["detail"]) for r in ie.conn.execute(
        "SELECT action, detail FROM audit WHERE action LIKE 'whitelist%' ORDER BY id")]
    assert actions == [("whitelist add", '{"list": "recipient", "values": ["abuse@partner.example", '
                                         '"reports.example"]}'),
                       ("whitelist remove", '{"list": "recipient", "values": ["reports.example"]}')]
    assert "operation with the whitelist of recipients (email addresses and domains)" in \
        ie.invoke("whitelist", "recipient", "--help").stdout
