"""The incoming filter without Exim: its rule (core/incoming.py), the daemon answering the router's
INCOMING question (real daemon, real Rspamd, real SQLite), and ie-cli incoming."""
import json


from devtools import samples
from imunifyemail.core import incoming
from imunifyemail.core.verdict import Scan, Whitelist

SPAM = Scan("reject", 15.0)
HAM = Scan("no action", 0.4)


def test_the_rule_for_one_recipient():
    wl = Whitelist(recipient_emails=frozenset({"vip@demo1.test"}), recipient_domains=frozenset({"demo3.test"}))
    assert incoming.route("demo1", True, "info@demo1.test", wl, SPAM) == incoming.Routing("junk", "spam")
    assert incoming.route("demo1", True, "info@demo1.test", wl, HAM) == incoming.Routing("inbox", "ham")
    assert incoming.route("demo1", True, "info@demo1.test", wl, Scan("add header", 7.0)).folder == "junk"
    assert incoming.route("demo1", True, "info@demo1.test", wl, Scan("greylist", 5.0)).folder == "inbox"
    # whitelisted by address (any case) or by domain: the inbox, still counted as spam
    assert incoming.route("demo1", True, "VIP@Demo1.test", wl, SPAM) == \
        incoming.Routing("inbox", "spam", incoming.WHITELISTED)
    assert incoming.route("demo3", True, "x@demo3.test", wl, SPAM).folder == "inbox"
    # off, nobody's, unscanned: the inbox, uncounted
    assert incoming.route("demo1", False, "info@demo1.test", wl, SPAM) == \
        incoming.Routing("inbox", None, incoming.ACCOUNT_OFF)
    assert incoming.route(None, True, "x@nowhere.test", wl, SPAM).counted is None
    assert incoming.route("demo1", True, "info@demo1.test", wl, None) == \
        incoming.Routing("inbox", None, incoming.UNSCANNED)


def stats(root, *args):
    return json.loads(root.cli("incoming", "stats", "--json", *args).stdout)


def test_the_daemon_routes_each_recipient_and_counts_each_copy_once(daemon):
    spam = daemon.receive(samples.gtube(sender="x@outside.example", to=("info@demo1.test", "info@demo2.test")),
                          recipients=("info@demo1.test", "info@demo2.test", "info@nowhere.example"))
    assert [a["verdict"] for a in spam.answers] == ["junk", "junk", "inbox"]
    assert spam.answers[0]["action"] == "reject" and spam.answers[2]["reason"] == incoming.NOT_HOSTED
    assert "Rspamd gave no verdict" not in daemon.log.read_text()
    ham = daemon.receive(samples.ham(sender="x@outside.example", to=("info@demo1.test",)))
    assert ham.verdict == "inbox" and ham["action"] == "no action"
    # a retry (Exim asking again for the same copy) gets the same answer and is not counted again
    from devtools import spool
    assert spool.ask(str(daemon.socket), spam.exim_id, "info@demo1.test", verb="INCOMING")["verdict"] == "junk"
    found = stats(daemon)
    assert found["totals"] == {"spam": 2, "ham": 1}
    by_account = {i["account"]: (i["spam"], i["ham"]) for i in found["items"]}
    assert by_account == {"demo1": (1, 1), "demo2": (1, 0)}
    assert stats(daemon, "-a", "demo2", "--since", "3600")["totals"] == {"spam": 1, "ham": 0}
    assert daemon.held() == []   # inbound mail is never quarantined


def test_an_account_turned_off_and_a_whitelisted_recipient_get_the_inbox(daemon):
    daemon.cli("incoming", "edit", "-a", "demo2", "--state", "off")
    daemon.cli("whitelist", "recipient", "add", "boss@demo1.test")
    sent = daemon.receive(samples.gtube(sender="x@outside.example"),
                          recipients=("info@demo2.test", "boss@demo1.test", "info@demo1.test"))
    assert [a["verdict"] for a in sent.answers] == ["inbox", "inbox", "junk"]
    assert [a["reason"] for a in sent.answers[:2]] == [incoming.ACCOUNT_OFF, incoming.WHITELISTED]
    assert stats(daemon)["totals"] == {"spam": 2, "ham": 0}   # demo2's is not counted
    listed = json.loads(daemon.cli("incoming", "list", "--json").stdout)["items"]
    assert {"account": "demo2", "incoming": False} in listed and {"account": "demo1", "incoming": True} in listed
    daemon.cli("incoming", "edit", "-a", "demo2", "--state", "on")
    assert daemon.receive(samples.gtube(sender="x@outside.example"), recipients=("info@demo2.test",)).verdict == "junk"
    entries = json.loads(daemon.cli("audit", "list", "--json").stdout)["items"]
    assert [e["detail"] for e in entries if e["action"] == "incoming filter"] == [{"incoming": "on"},
                                                                                 {"incoming": "off"}]


def test_bad_input_is_named_and_changes_nothing(daemon):
    for args, why in ((("edit", "-a", "nosuch", "--state", "off"), 'account "nosuch" not found'),
                      (("edit", "-a", "demo1", "--state", "maybe"), "maybe"),
                      (("stats", "--since", "yesterday"), "invalid duration 'yesterday'"),
                      (("stats", "--since", "-1d"), "invalid since -86400"),
                      (("stats", "-a", "nosuch"), 'account "nosuch" not found')):
        proc = daemon.cli("incoming", *args, check=False)
        assert proc.returncode != 0 and why in proc.stderr, (args, proc.stderr)
    assert json.loads(daemon.cli("incoming", "list", "--json").stdout)["items"][0]["incoming"] is True


def test_the_text_views(daemon):
    daemon.receive(samples.ham(sender="x@outside.example"))
    text = daemon.cli("incoming", "stats").stdout
    assert text.splitlines()[0].split() == ["Day", "Account", "Spam", "Ham"]
    assert text.splitlines()[-1].split() == ["Total", "0", "1"]
    assert "incoming filter off for account demo1" in daemon.cli("incoming", "edit", "-a", "demo1", "--state",
                                                                 "OFF").stdout
