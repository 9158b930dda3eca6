"""The core (no I/O): headers, attribution, verdict, addresses."""
import base64

import pytest

from imunifyemail.core import headers
from imunifyemail.core.addresses import classify, envelope_key, normalize_domain, normalize_email
from imunifyemail.core.attribution import Meta, attribute
from imunifyemail.core.message import ScriptHeader, decode_words, parse_script_header, summarize
from imunifyemail.core.verdict import FilterSettings, Scan, Whitelist, before_scan, decide, filter_fields


class Dir:
    domains = {"demo1.test": "demo1", "demo2.test": "demo2"}
    uids = {1001: "demo1"}

    def account_for_domain(self, d):
        return self.domains.get(d)

    def account_for_uid(self, uid):
        return self.uids.get(uid)

    def is_account(self, name):
        return name in self.domains.values()


RAW = b"Subject: hi\r\nX-Meta: 1\r\nX-Long: a\r\n b\r\nFrom: x@y\r\n\r\nbody\r\nX-Meta: not a header\r\n"


def test_headers_remove_keeps_every_other_byte():
    out = headers.remove(RAW, names=["x-meta"])
    assert out == b"Subject: hi\r\nX-Long: a\r\n b\r\nFrom: x@y\r\n\r\nbody\r\nX-Meta: not a header\r\n"
    assert headers.remove(RAW, prefixes=["X-"]) == b"Subject: hi\r\nFrom: x@y\r\n\r\nbody\r\nX-Meta: not a header\r\n"
    assert headers.remove(RAW, names=["absent"]) is RAW


def test_headers_values_unfold():
    assert headers.values(RAW, "x-long") == ["a b"]


def test_without_ours_drops_every_x_imunifyemail_field_and_nothing_else():
    forged = (b"Received: by x\r\nX-ImunifyEmail-Filter-Action: no action\r\nSubject: hi\r\n"
              b"x-imunifyemail-filter-info: a\r\n\tb\r\nX-ImunifyEmailer: kept\r\nX-Imunify-Email-Filter: kept\r\n"
              b"\r\nX-ImunifyEmail-Filter-Score: -5 (a body line)\r\n")
    assert headers.without_ours(forged) == (b"Received: by x\r\nSubject: hi\r\nX-ImunifyEmailer: kept\r\n"
                                            b"X-Imunify-Email-Filter: kept\r\n\r\n"
                                            b"X-ImunifyEmail-Filter-Score: -5 (a body line)\r\n")
    assert headers.without_ours(RAW) is RAW


@pytest.mark.parametrize("raw, expected", [
    (RAW, b"Subject: hi\r\nX-Meta: 1\r\nX-Long: a\r\n b\r\nFrom: x@y\r\nX: y\r\n\r\nbody\r\nX-Meta: not a header\r\n"),
    (b"A: 1\nB: 2\n\nbody", b"A: 1\nB: 2\nX: y\n\nbody"),
    (b"A: 1\r\n", b"A: 1\r\nX: y\r\n\r\n"),                 # no body: a blank line ends the fields
    (b"A: 1", b"A: 1\nX: y\n\n"),                              # cut short
    (b"", b"X: y\n\n"),
    (b"not a header\r\nbody\r\n", b"X: y\r\nnot a header\r\nbody\r\n"),
])
def test_append_adds_fields_at_the_end_of_the_header_block(raw, expected):
    assert headers.append(raw, [("X", "y")]) == expected
    assert headers.split(expected)[1].endswith(headers.split(raw)[1])   # the body as it was


def test_headerless_and_garbage_input():
    assert headers.split(b"just a body line\r\n") == ([], b"just a body line\r\n")
    assert headers.split(b"") == ([], b"")
    assert summarize(b"\xff\xfe\x00garbage").subject == ""


def test_decode_words():
    assert decode_words("=?utf-8?B?0J/RgNC40LLQtdGC?=") == "Привет"
    assert decode_words("=?utf-8?B?broken***?=") == "=?utf-8?B?broken***?="
    assert decode_words("plain") == "plain"


@pytest.mark.parametrize("header,expected", [
    (b"X-PHP-Script: demo1.test/wp/x.php for 1.2.3.4, 5.6.7.8", ScriptHeader(
        "demo1.test/wp/x.php for 1.2.3.4, 5.6.7.8", "demo1.test", "/wp/x.php")),
    (b"X-PHP-Originating-Script: 1001:mailer.php", ScriptHeader("1001:mailer.php", "", "mailer.php")),
    (b"X-Source-Dir: demo1.test:/public_html/shop", ScriptHeader(
        "demo1.test:/public_html/shop", "demo1.test", "/public_html/shop")),
])
def test_script_headers(header, expected):
    assert parse_script_header(header + b"\r\nSubject: x\r\n\r\nbody") == expected


def test_attribution_order():
    d = Dir()
    s = ScriptHeader()
    assert attribute("x@demo2.test", Meta(auth="box@demo1.test"), s, d).account == "demo1"
    assert attribute("x@demo2.test", Meta(auth="demo1"), s, d).account == "demo1"
    assert attribute("x@demo2.test", Meta(uid=1001), s, d).account == "demo1"
    assert attribute("x@Demo2.TEST", Meta(uid=0), s, d).account == "demo2"   # root may send for its accounts
    assert attribute("x@elsewhere.example", Meta(uid=0), s, d).account == "root"
    who = attribute("<Alice@Demo1.test>", Meta(auth="Alice@Demo1.test"), s, d)
    assert (who.sender_email, who.domain, who.auth_user) == ("alice@demo1.test", "demo1.test", "alice@demo1.test")
    assert who.verified and who.owns_sender


def test_a_claim_of_the_sender_domain_alone_is_not_verified():
    d, s = Dir(), ScriptHeader()
    # an unauthenticated loopback SMTP client: the Exim user submitted it, protocol esmtp
    forged = attribute("a@demo2.test", Meta(uid=101, proto="esmtp", by_exim=True), s, d)
    assert (forged.account, forged.verified, forged.basis, forged.domain_owner) == \
        ("unverified:demo2", False, "claim", "demo2")
    assert not forged.owns_sender
    assert attribute("x@elsewhere.example", Meta(), s, d).account == "unverified:root"
    assert attribute("x@demo2.test", Meta(uid=65534, auth="nobody", proto="local"), s, d).account == \
        "unverified:demo2"   # a shared PHP's nobody names no account
    assert attribute("x@demo2.test", Meta(auth="box@remote.example"), s, d).account == "unverified:demo2"
    assert attribute("", Meta(uid=101, proto="esmtp", by_exim=True), s, d).account == "unverified:root"


def test_exims_own_messages_are_the_servers():
    d, s = Dir(), ScriptHeader()
    bounce = attribute("", Meta(uid=101, auth="Debian-exim", proto="local", by_exim=True), s, d)
    assert (bounce.account, bounce.basis, bounce.verified) == ("root", "exim", True)
    # the null sender alone is no proof: the same from anyone else is a claim
    assert not attribute("", Meta(uid=65534, proto="local"), s, d).verified


def test_containment_applies_to_accounts_and_their_unverified_twins_never_to_roots():
    from imunifyemail.core.containment import applies
    assert applies("demo2", "active", 50) and applies("unverified:demo2", "active", 50)
    assert not applies("root", "active", 50) and not applies("unverified:root", "active", 50)
    assert not applies("unverified:demo2", "block", 50) and not applies("demo2", "active", 0)


def test_a_hosted_user_sending_as_another_accounts_address_stays_themselves():
    who = attribute("ceo@demo2.test", Meta(uid=1001, auth="demo1", proto="local"), ScriptHeader(), Dir())
    assert (who.account, who.verified, who.domain_owner, who.owns_sender) == ("demo1", True, "demo2", False)


def test_verdict():
    who = attribute("a@demo1.test", Meta(auth="a@demo1.test"), ScriptHeader(), Dir())
    assert before_scan(who, True, Whitelist(sender_emails=frozenset({"a@demo1.test"}))).reasons == ("blocked",)
    assert before_scan(who, False, Whitelist(sender_domains=frozenset({"demo1.test"}))).quarantine is False
    assert before_scan(who, False, Whitelist()) is None
    spam = Scan("reject", 15.0, ("GTUBE",), "3.4")
    assert decide(FilterSettings(), spam, []).reasons == ("spam",)
    assert decide(FilterSettings(spam_filter=False), spam, []).quarantine is False
    assert decide(FilterSettings(), None, ["x.exe"]).reasons == ("winexec",)
    assert decide(FilterSettings(allow_winexec=True), None, ["x.exe"]).quarantine is False
    v = decide(FilterSettings(spam_actions=("reject", "add header")), Scan("add header", 7.5), [])
    assert v.reasons == ("spam",)
    fields = filter_fields(decide(FilterSettings(), Scan("no action", 1.25, ("A", "B"), "3.4"), []),
                           Scan("no action", 1.25, ("A", "B"), "3.4"), "0.1.0")
    assert fields == {"action": "no action", "score": "1.25", "version": "3.4/0.1.0",
                      "info": base64.b64encode(b"A,B").decode()}
    assert filter_fields(decide(FilterSettings(), None, []), None, "0.1.0") == {"action": "unscanned"}



def test_recipient_whitelist_lifts_spam_only_when_every_recipient_is_listed():
    wl = Whitelist(recipient_emails=frozenset({"abuse@partner.example"}),
                   recipient_domains=frozenset({"reports.example", "xn--bcher-kva.example"}))
    assert wl.covers_recipients(["Abuse@Partner.Example"])
    assert wl.covers_recipients(["abuse@partner.example", "any@reports.example", "x@Bücher.example"])
    assert not wl.covers_recipients(["abuse@partner.example", "bob@remote.example"])   # one verdict for all
    assert not wl.covers_recipients(["other@partner.example"])
    assert not wl.covers_recipients(["x@sub.reports.example"])   # a domain matches exactly, as for senders
    assert not wl.covers_recipients([]) and not Whitelist().covers_recipients(["a@b.example"])
    spam = Scan("reject", 1000.0, ("GTUBE",), "3.4")
    lifted = decide(FilterSettings(), spam, [], recipients_whitelisted=True)
    assert (lifted.quarantine, lifted.reasons, lifted.waived, lifted.action) == (False, (), ("spam",), "reject")
    both = decide(FilterSettings(), spam, ["setup.exe"], recipients_whitelisted=True)
    assert both.reasons == ("winexec",) and both.quarantine   # executables are still held
    assert decide(FilterSettings(), Scan("no action", 1.0), [], recipients_whitelisted=True).waived == ()
    who = attribute("a@demo1.test", Meta(auth="a@demo1.test"), ScriptHeader(), Dir())
    assert before_scan(who, False, wl) is None   # not a sender whitelist: still scanned


def test_a_sender_whitelist_trusts_only_verified_mail_of_the_owning_account():
    d, s = Dir(), ScriptHeader()
    wl = Whitelist(sender_emails=frozenset({"x@demo2.test"}), sender_domains=frozenset({"demo2.test"}),
                   authusers=frozenset({"box@demo2.test"}))
    own = attribute("x@demo2.test", Meta(auth="x@demo2.test"), s, d)
    assert before_scan(own, False, wl).action == "whitelisted"
    # demo1 naming demo2's whitelisted address, by its own uid or over loopback SMTP: scanned
    for meta in (Meta(uid=1001, auth="demo1", proto="local"), Meta(uid=101, proto="esmtp", by_exim=True)):
        assert before_scan(attribute("x@demo2.test", meta, s, d), False, wl) is None
    # an authenticated whitelisted user is verified by its login, whatever sender it gives
    assert before_scan(attribute("any@demo1.test", Meta(auth="box@demo2.test"), s, d), False, wl).quarantine is False
    # a contained account lets its own whitelisted senders through, not a forger's
    assert before_scan(own, True, wl, contained=True).action == "whitelisted"
    forged = attribute("x@demo2.test", Meta(uid=1001, auth="demo1", proto="local"), s, d)
    assert before_scan(forged, True, wl, contained=True).reasons == ("blocked",)


def test_envelope_key():
    assert envelope_key(" Bob@Remote.Example. ") == ("bob@remote.example", "remote.example")
    assert envelope_key("x@Bücher.example") == ("x@xn--bcher-kva.example", "xn--bcher-kva.example")
    assert envelope_key("remote.example") == ("remote.example", "")
    assert not Whitelist(recipient_domains=frozenset({"remote.example"})).covers_recipients(["remote.example"])


@pytest.mark.parametrize("bad", ["", "a", "a..b", "-a.com", "a.123", "x" * 64 + ".com", "a b.com"])
def test_bad_domains(bad):
    with pytest.raises(ValueError):
        normalize_domain(bad)


@pytest.mark.parametrize("bad", ["@x.com", "a@", "a@b", "a b@x.com", ".a@x.com", "a..b@x.com", "a@@x.com"])
def test_bad_emails(bad):
    with pytest.raises(ValueError):
        normalize_email(bad)


def test_good_addresses():
    assert classify("Some.One+tag@Example.COM") == ("email", "some.one+tag@example.com")
    assert classify("Sub.Example.com.") == ("domain", "sub.example.com")
    assert classify("bücher.example") == ("domain", "xn--bcher-kva.example")
