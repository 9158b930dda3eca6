"""ie-cli emails list|show|release|remove against a real quarantine."""
import base64
import time
import uuid

import pytest

from imunifyemail.context import Context
from imunifyemail.errors import Forbidden
from imunifyemail.ops import accounts as account_ops
from imunifyemail.ops import caller as callers
from imunifyemail.ops import emails as email_ops
from imunifyemail.ops.release import OneShotReleaser
from imunifyemail.cli import output
from imunifyemail.cli.output import DASHES
from imunifyemail.core.limits import ServerLimits
from imunifyemail.store.activity import Activity
from imunifyemail.store.settings import save_server_limits
from imunifyemail.store.settings import save_features
from imunifyemail.core.message import ScriptHeader
from tests.cli_helpers import T0, assert_error, make_raw

SEED_LIST_KEYS = ["email_id", "size_bytes", "account_name", "recipients", "subject", "script_header"]
EXTRA_LIST_KEYS = ["received_date", "sender", "reasons", "filter_score", "filter_action", "expected_release",
                   "sender_verified", "claimed_account"]


def _pad(key, value, width=18):
    return f"{key:<{width}}{value}"


# -- list -------------------------------------------------------------------

def test_list_text_has_the_seed_layout(ie):
    old = ie.add("demo1", recipients=("a@remote.example", "b@remote.example"), subject="Old one", at=T0)
    new = ie.add("demo2", sender="x@demo2.test", subject="New one", at=T0 + 60)
    result = ie.invoke("emails", "list", "-a", "root")
    assert result.exit_code == 0, result
    expected = [
        DASHES,
        _pad("Email_ID", new.email_id),
        _pad("Size_Bytes", new.size_bytes),
        _pad("Account_Name", "demo2"),
        _pad("Recipients", "friend@remote.example"),
        _pad("Subject", "New one"),
        "",
        DASHES,
        _pad("Email_ID", old.email_id),
        _pad("Size_Bytes", old.size_bytes),
        _pad("Account_Name", "demo1"),
        _pad("Recipients", "a@remote.example, b@remote.example"),
        _pad("Subject", "Old one"),
        "",
        DASHES,
        _pad("Max Count", 2),
    ]
    assert result.stdout.splitlines() == expected
    assert "\t" not in result.stdout


def test_list_defaults_to_root_and_empty_quarantine(ie):
    result = ie.invoke("emails", "list")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [DASHES, _pad("Max Count", 0)]
    assert ie.invoke("emails", "list", "--json").json() == {"items": [], "max_count": 0}


def test_list_json_keys_in_seed_order_then_extras(ie):
    script = ScriptHeader("demo1.test/wp/mail.php for 1.2.3.4", "demo1.test", "/wp/mail.php")
    msg = ie.add("demo1", sender="wp@demo1.test", recipients=("me@somehost.com",), subject="Buy now",
                 reasons=("spam", "winexec"), score=12.5, action="reject", script=script)
    data = ie.invoke("emails", "list", "-a", "root", "--json").json()
    assert list(data) == ["items", "max_count"]
    assert data["max_count"] == 1
    item = data["items"][0]
    assert list(item) == SEED_LIST_KEYS + EXTRA_LIST_KEYS
    assert list(item["script_header"]) == ["raw", "domain", "path"]
    assert item == {
        "email_id": msg.email_id, "size_bytes": msg.size_bytes, "account_name": "demo1",
        "recipients": ["me@somehost.com"], "subject": "Buy now",
        "script_header": {"raw": "demo1.test/wp/mail.php for 1.2.3.4", "domain": "demo1.test",
                          "path": "/wp/mail.php"},
        "received_date": T0, "sender": "wp@demo1.test", "reasons": ["spam", "winexec"],
        "filter_score": 12.5, "filter_action": "reject", "expected_release": None,
        "sender_verified": True, "claimed_account": None,
    }


def _rate_limited(ie, now: int, auto_release: bool = True):
    """alice sent 2 (limit 2) a while ago; 3 of hers wait (held for ratelimit), one spam of hers too."""
    save_server_limits(ie.conn, {"sender_email": 2})
    save_features(ie.conn, {"auto_release": auto_release})
    for ago in (1000, 900):
        assert Activity(ie.conn, clock=lambda: now - ago).reserve(
            ("demo1", "demo1.test", "alice@demo1.test", ""), 1, ServerLimits(sender_email=2)).allowed
    held = [ie.add("demo1", sender="alice@demo1.test", subject=f"wait {n}", reasons=("ratelimit",),
                   at=now - 500 + n) for n in range(3)]
    spam = ie.add("demo1", sender="alice@demo1.test", subject="spam", reasons=("spam",), at=now - 400)
    return held, spam


def test_list_says_when_rate_limited_mail_is_expected_to_leave(ie):
    now = int(time.time())
    held, spam = _rate_limited(ie, now)
    items = {i["subject"]: i for i in ie.invoke("emails", "list", "--json").json()["items"]}
    # the two sent free their slots an hour after they left; the third waits for the first one released
    assert {s: i["expected_release"] for s, i in items.items()} == {
        "wait 0": now - 1000 + 3600, "wait 1": now - 900 + 3600, "wait 2": now - 1000 + 2 * 3600, "spam": None}
    text = ie.invoke("emails", "list").stdout.splitlines()
    lines = [line for line in text if line.startswith("Expected_Release")]
    assert lines == [_pad("Expected_Release", output.local_time(t))
                     for t in (now - 1000 + 2 * 3600, now - 900 + 3600, now - 1000 + 3600)]
    at = text.index(_pad("Email_ID", held[2].email_id))   # the extra line comes after the seed's five
    assert text[at + 4: at + 7] == [_pad("Subject", "wait 2"), lines[0], ""]
    assert _pad("Email_ID", spam.email_id) in text


def test_list_expects_nothing_while_automatic_release_is_off_or_the_account_blocked(ie):
    _rate_limited(ie, int(time.time()), auto_release=False)
    assert [i["expected_release"] for i in ie.invoke("emails", "list", "--json").json()["items"]] == [None] * 4
    assert "Expected_Release" not in ie.invoke("emails", "list").stdout
    save_features(ie.conn, {"auto_release": True})
    assert ie.invoke("accounts", "edit", "-a", "demo1", "--state", "block").exit_code == 0
    assert [i["expected_release"] for i in ie.invoke("emails", "list", "--json").json()["items"]] == [None] * 4


def test_list_filter_score_is_null_when_unscanned(ie):
    ie.add(score=None, action="", reasons=("blocked",))
    item = ie.invoke("emails", "list", "--json").json()["items"][0]
    assert item["filter_score"] is None and item["reasons"] == ["blocked"]


def test_max_count_is_the_total_not_the_page(ie):
    added = [ie.add(subject=f"n{i}", at=T0 + i) for i in range(5)]
    page = ie.invoke("emails", "list", "--json", "--limit", "2", "--offset", "1").json()
    assert page["max_count"] == 5
    assert [i["email_id"] for i in page["items"]] == [added[3].email_id, added[2].email_id]
    text = ie.invoke("emails", "list", "--limit", "2").stdout
    assert text.count("Email_ID") == 2 and text.splitlines()[-1] == _pad("Max Count", 5)
    filtered = ie.invoke("emails", "list", "--json", "--limit", "1", "--subject", "n").json()
    assert filtered["max_count"] == 5 and len(filtered["items"]) == 1


def test_list_filters(ie):
    a = ie.add("demo1", sender="alice@demo1.test", recipients=("x@remote.example",), subject="Invoice 1",
               reasons=("spam",), at=T0)
    b = ie.add("demo1", sender="bob@demo1.test", recipients=("y@other.example",), subject="Photos",
               reasons=("winexec",), at=T0 + 100)
    c = ie.add("demo2", sender="carol@demo2.test", recipients=("x@remote.example", "z@z.example"),
               subject="Invoice 2", reasons=("ratelimit", "spam"), at=T0 + 200)

    def ids(*flags):
        data = ie.invoke("emails", "list", "--json", *flags).json()
        assert data["max_count"] == len(data["items"])
        return {i["email_id"] for i in data["items"]}

    assert ids("--sender", "bob") == {b.email_id}
    assert ids("--recipient", "x@remote") == {a.email_id, c.email_id}
    assert ids("--subject", "invoice") == {a.email_id, c.email_id}
    assert ids("--reason", "spam") == {a.email_id, c.email_id}
    assert ids("--reason", "ratelimit") == {c.email_id}
    assert ids("--reason", "blocked") == set()
    assert ids("--since", str(T0 + 100)) == {b.email_id, c.email_id}
    assert ids("--until", str(T0 + 100)) == {a.email_id}
    assert ids("--since", str(T0 + 50), "--until", str(T0 + 150)) == {b.email_id}
    assert ids("-a", "demo2", "--subject", "Invoice") == {c.email_id}


def test_list_is_scoped_to_the_account(ie):
    mine = ie.add("demo1")
    ie.add("demo2")
    data = ie.invoke("emails", "list", "-a", "demo1", "--json").json()
    assert [i["email_id"] for i in data["items"]] == [mine.email_id] and data["max_count"] == 1
    # a cPanel account without a quarantine subspace simply has nothing held
    assert ie.invoke("emails", "list", "-a", "demo3", "--json").json() == {"items": [], "max_count": 0}


def test_list_bad_input(ie):
    assert_error(ie.invoke("emails", "list", "-a", "ghost"), 'account "ghost" not found')
    assert_error(ie.invoke("emails", "list", "--reason", "virus"), "--reason", "virus")
    assert_error(ie.invoke("emails", "list", "--limit", "0"), "--limit")
    assert_error(ie.invoke("emails", "list", "--limit", "many"), "--limit", "'many' is not a valid integer")
    assert_error(ie.invoke("emails", "list", "--offset", "-1"), "--offset")
    assert_error(ie.invoke("emails", "list", "--since", "yesterday"), "--since")


def test_list_text_neutralises_control_characters(ie):
    ie.add(subject="Hi\x1b[2J\nFAKE: line")
    lines = ie.invoke("emails", "list").stdout.splitlines()
    assert _pad("Subject", "Hi [2J FAKE: line") in lines
    assert "\x1b" not in "".join(lines)


# -- show -------------------------------------------------------------------

RAW_SHOW = (
    b"Received: from [10.0.0.1] (port=56330 helo=pc)\r\n\tby host.example with esmtpsa\r\n"
    b"Received: from localhost by pc\r\n"
    b"From: =?utf-8?B?w4lsb2RpZQ==?= <elodie@demo1.test>\r\n"
    b"To: <abazis@remote.example>\r\n"
    b"Subject: =?iso-8859-1?Q?caf=E9?=\r\n"
    b"MIME-Version: 1.0\r\n"
    b"X-Priority: 3\r\n"
    b"X-ImunifyEmail-Filter-Action: reject\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Body line 1\r\nBody line 2\r\n"
)


def test_show_text_layout(ie):
    msg = ie.add("demo1", sender="elodie@demo1.test", recipients=("abazis@remote.example",
                                                                 "cc@remote.example"),
                 subject="café", reasons=("spam", "winexec"), raw=RAW_SHOW)
    result = ie.invoke("emails", "show", "--id", msg.email_id, "-a", "root")
    assert result.exit_code == 0, result
    body = base64.b64encode(b"Body line 1\r\nBody line 2\r\n").decode()
    assert result.stdout.splitlines() == [
        f"EmailID:                      {msg.email_id}",
        f"SizeBytes:                    {len(RAW_SHOW)}",
        "AccountName:                  demo1",
        "Sender:                       elodie@demo1.test",
        "Recipients:                   abazis@remote.example, cc@remote.example",
        f"ReceivedDate:                 {T0}",
        "Subject:                      café",
        "Reasons:                      spam, winexec",
        "",
        "Content-Type:                 text/plain; charset=utf-8",
        "From:                         Élodie <elodie@demo1.test>",
        "MIME-Version:                 1.0",
        "Received:                     from [10.0.0.1] (port=56330 helo=pc) by host.example with esmtpsa",
        "Received:                     from localhost by pc",
        "Subject:                      café",
        "To:                           <abazis@remote.example>",
        "",
        "X-ImunifyEmail-Filter-Action: reject",
        "X-ImunifyEmail-Filter-Score:  9.50",
        "X-Priority:                   3",
        "",
        f"Body: {body}",
    ]


def test_show_json(ie):
    msg = ie.add("demo1", sender="elodie@demo1.test", subject="café", raw=RAW_SHOW, score=7.25)
    data = ie.invoke("emails", "show", "--id", msg.email_id, "--json").json()
    assert list(data) == ["email_id", "size_bytes", "account_name", "sender", "recipients", "received_date",
                          "subject", "reasons", "filter_score", "filter_action", "script_header", "headers",
                          "body", "sender_verified", "claimed_account"]
    assert data["email_id"] == msg.email_id and data["size_bytes"] == len(RAW_SHOW)
    assert data["received_date"] == T0 and data["filter_score"] == 7.25 and data["reasons"] == ["spam"]
    assert data["script_header"] == {"raw": "", "domain": "", "path": ""}
    assert data["headers"]["Received"] == ("from [10.0.0.1] (port=56330 helo=pc) by host.example with esmtpsa"
                                           "\nfrom localhost by pc")
    assert data["headers"]["From"] == "Élodie <elodie@demo1.test>"
    assert data["headers"]["X-ImunifyEmail-Filter-Action"] == "reject"
    assert data["headers"]["X-ImunifyEmail-Filter-Score"] == "7.25"
    assert base64.b64decode(data["body"]) == b"Body line 1\r\nBody line 2\r\n"


def test_show_gives_the_filters_own_verdict_and_keeps_the_stored_copy(ie):
    # The verdict is metadata: the held copy has no such fields, or the sender's forged ones.
    forged = RAW_SHOW.replace(b"X-ImunifyEmail-Filter-Action: reject\r\n",
                              b"X-ImunifyEmail-Filter-Action: no action\r\nX-ImunifyEmail-Filter-Score: -100\r\n"
                              b"X-ImunifyEmail-Filter-Info: c2VuZGVy\r\n")
    msg = ie.add("demo1", raw=forged, score=6.1, action="reject")
    result = ie.invoke("emails", "show", "--id", msg.email_id)
    extra = result.stdout.split("\n\n")[2].splitlines()
    assert extra == ["X-ImunifyEmail-Filter-Action: reject",      # no sender's -Info beside the verdict
                     "X-ImunifyEmail-Filter-Score:  6.10",
                     "X-Priority:                   3"]
    headers = ie.invoke("emails", "show", "--id", msg.email_id, "--json").json()["headers"]
    assert {k: v for k, v in headers.items() if k.startswith("X-ImunifyEmail-")} == {
        "X-ImunifyEmail-Filter-Action": "reject", "X-ImunifyEmail-Filter-Score": "6.10"}
    assert ie.quarantine().read(msg) == forged   # byte for byte as received


def test_show_of_unscanned_mail_has_no_score(ie):
    plain = RAW_SHOW.replace(b"X-ImunifyEmail-Filter-Action: reject\r\n", b"")
    msg = ie.add("demo1", raw=plain, score=None, action="blocked", reasons=("blocked",))
    headers = ie.invoke("emails", "show", "--id", msg.email_id, "--json").json()["headers"]
    assert headers["X-ImunifyEmail-Filter-Action"] == "blocked" and "X-ImunifyEmail-Filter-Score" not in headers
    old = ie.add("demo1", raw=plain, score=None, action="")   # a verdict without an action: nothing invented
    text = ie.invoke("emails", "show", "--id", old.email_id).stdout
    assert "X-ImunifyEmail-Filter" not in text


def test_show_malformed_mail_never_fails(ie):
    raw = b"Subject: =?utf-8?B?broken?=\nthis is not a header\n\xff\xfe binary\n"
    msg = ie.add(raw=raw, subject="x")
    result = ie.invoke("emails", "show", "--id", msg.email_id)
    assert result.exit_code == 0, result
    assert "Subject:                      =?utf-8?B?broken?=" in result.stdout
    body = result.stdout.splitlines()[-1]
    assert base64.b64decode(body[len("Body: "):]) == b"this is not a header\n\xff\xfe binary\n"
    assert ie.invoke("emails", "show", "--id", ie.add(raw=b"", subject="").email_id).exit_code == 0


def test_show_errors_and_scoping(ie):
    other = ie.add("demo2")
    assert_error(ie.invoke("emails", "show", "--id", "nope"), 'invalid email id "nope"')
    missing = str(uuid.uuid4())
    assert_error(ie.invoke("emails", "show", "--id", missing), f'email "{missing}" not found')
    assert_error(ie.invoke("emails", "show", "--id", other.email_id, "-a", "demo1"),
                 f'email "{other.email_id}" not found')
    assert ie.invoke("emails", "show", "--id", other.email_id, "-a", "demo2").exit_code == 0
    assert ie.invoke("emails", "show", "--id", other.email_id.upper()).exit_code == 0
    assert_error(ie.invoke("emails", "show"), "--id")


# -- release ----------------------------------------------------------------

def test_release_reinjects_to_the_original_envelope_then_removes(ie):
    raw = make_raw("Quarterly report", "boss@demo1.test", "a@remote.example")
    msg = ie.add("demo1", sender="boss@demo1.test", recipients=("a@remote.example", "bcc@hidden.example"),
                 raw=raw)
    keep = ie.add("demo1")
    result = ie.invoke("emails", "release", "--ids", msg.email_id, "-a", "root")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "OK\n", "")
    [(argv, stdin)] = ie.sent()
    assert argv == ["-oi", "-oMr", "imunifyemail-released", "-f", "boss@demo1.test", "--",
                    "a@remote.example", "bcc@hidden.example"]
    # as it was received, with the filter's verdict where Exim's router puts it on passed mail
    assert stdin == raw.replace(b"\r\n\r\n", b"\r\nX-ImunifyEmail-Filter-Action: reject\r\n"
                                                b"X-ImunifyEmail-Filter-Score: 9.50\r\n\r\n", 1)
    assert ie.ids() == [keep.email_id]
    assert not (ie.storage / msg.file).exists()
    used = ie.conn.execute("SELECT used_bytes, message_count FROM accounts WHERE name='demo1'").fetchone()
    assert tuple(used) == (keep.size_bytes, 1)


FORGED = (b"X-ImunifyEmail-Filter-Action: no action\r\n"
          b"x-imunifyemail-filter-score:-5.00\r\n"
          b"X-ImunifyEmail-Filter-Info: c2VuZGVy\r\n\t continued\r\n"
          b"X-ImunifyEmail-Anything: else\r\n")


def test_release_sends_the_filters_verdict_never_the_senders(ie):
    """A held message keeps a sender's forged X-ImunifyEmail-* fields (the evidence); what a release
    sends has none of them, only the filter's own verdict, and every other byte as received."""
    body = "X-ImunifyEmail-Filter-Action: in the body stays\r\n"
    raw = make_raw("forged", extra=FORGED.decode(), body=body)
    msg = ie.add("demo1", raw=raw, score=12.25, action="reject")
    unscanned = ie.add("demo1", raw=make_raw("blocked", extra=FORGED.decode()), score=None, action="blocked",
                       reasons=("blocked",))
    assert ie.invoke("emails", "release", "--ids", f"{msg.email_id},{unscanned.email_id}").exit_code == 0
    [(_, first), (_, second)] = ie.sent()
    assert first == make_raw("forged", body=body).replace(
        b"\r\n\r\n", b"\r\nX-ImunifyEmail-Filter-Action: reject\r\nX-ImunifyEmail-Filter-Score: 12.25\r\n\r\n", 1)
    assert second == make_raw("blocked").replace(b"\r\n\r\n", b"\r\nX-ImunifyEmail-Filter-Action: blocked\r\n\r\n", 1)


def test_show_and_the_quarantine_file_after_forged_verdict_fields(ie):
    raw = make_raw("forged", extra=FORGED.decode())
    msg = ie.add("demo1", raw=raw, score=7.0, action="add header")
    text = ie.invoke("emails", "show", "--id", msg.email_id).stdout
    assert [line for line in text.splitlines() if line.lower().startswith("x-imunifyemail")] == [
        "X-ImunifyEmail-Filter-Action: add header", "X-ImunifyEmail-Filter-Score:  7.00"]
    headers = ie.invoke("emails", "show", "--id", msg.email_id, "--json").json()["headers"]
    assert [k for k in headers if k.lower().startswith("x-imunifyemail")] == [
        "X-ImunifyEmail-Filter-Action", "X-ImunifyEmail-Filter-Score"]
    assert ie.quarantine().read(msg) == raw


def test_release_several_ids_and_null_sender(ie):
    a = ie.add("demo1", sender="", recipients=("x@remote.example",))
    b = ie.add("demo2", sender="y@demo2.test", recipients=("y@remote.example",))
    result = ie.invoke("emails", "release", "--ids", f"{a.email_id},{b.email_id}")
    assert result.exit_code == 0, result
    sent = ie.sent()
    assert [argv[argv.index("-f") + 1] for argv, _ in sent] == ["<>", "y@demo2.test"]
    assert ie.ids() == []


def test_release_with_an_unknown_id_sends_nothing(ie):
    good = ie.add("demo1")
    missing = str(uuid.uuid4())
    assert_error(ie.invoke("emails", "release", "--ids", f"{good.email_id},{missing}"),
                 f'email "{missing}" not found')
    assert_error(ie.invoke("emails", "release", "--ids", f"{good.email_id},bad-id"), 'invalid email id "bad-id"')
    assert ie.sent() == [] and ie.ids() == [good.email_id]


def test_release_is_scoped_to_the_account(ie):
    theirs = ie.add("demo2")
    assert_error(ie.invoke("emails", "release", "--ids", theirs.email_id, "-a", "demo1"),
                 f'email "{theirs.email_id}" not found')
    assert ie.sent() == [] and ie.ids() == [theirs.email_id]
    assert ie.invoke("emails", "release", "--ids", theirs.email_id, "-a", "demo2").exit_code == 0
    assert len(ie.sent()) == 1 and ie.ids() == []


def test_release_failure_keeps_the_message_and_says_why(ie):
    msg = ie.add("demo1")
    ie.fail_sendmail()
    result = ie.invoke("emails", "release", "--ids", msg.email_id)
    assert_error(result, msg.email_id, "not released", "exit status 1", "queue directory not writable")
    assert ie.ids() == [msg.email_id]
    assert (ie.storage / msg.file).exists()


def test_release_stops_at_the_first_failure(ie):
    first = ie.add("demo1", at=T0)
    second = ie.add("demo1", at=T0 + 1)
    ie.fail_sendmail(after=1)
    result = ie.invoke("emails", "release", "--ids", f"{first.email_id},{second.email_id}")
    assert_error(result, f'email "{second.email_id}" not released', f"released before it: {first.email_id}")
    assert len(ie.sent()) == 1 and ie.ids() == [second.email_id]


def test_release_of_a_blocked_account_by_root_is_allowed(ie):
    msg = ie.add("demo1")
    assert ie.invoke("accounts", "edit", "-a", "demo1", "--state", "block").exit_code == 0
    assert ie.invoke("emails", "release", "--ids", msg.email_id, "-a", "demo1").exit_code == 0
    assert len(ie.sent()) == 1


def test_a_blocked_accounts_own_user_may_not_release(ie):
    msg = ie.add("demo1")
    ctx, user = Context(releaser=OneShotReleaser.from_config), callers.hosted_user("demo1")
    account_ops.edit(ctx, callers.admin(), "demo1", state="block")
    with pytest.raises(Forbidden, match="account is blocked"):
        email_ops.release(ctx, user, [msg.email_id])
    assert ie.sent() == [] and ie.ids() == [msg.email_id]
    account_ops.edit(ctx, callers.admin(), "demo1", state="active")
    assert email_ops.release(ctx, user, [msg.email_id]) == [msg.email_id]
    assert len(ie.sent()) == 1 and ie.ids() == []
    ctx.close()


def test_a_hosted_users_release_quota_counts_recipients(ie):
    """Five recipients an hour: a message to three, then one to three is over; one to six is never
    theirs to release (the administrator's is, with no quota)."""
    now = int(time.time())
    three = [ie.add("demo1", recipients=tuple(f"r{n}-{i}@remote.example" for i in range(3)), at=now - 10 + n)
             for n in range(2)]
    six = ie.add("demo1", recipients=tuple(f"s{i}@remote.example" for i in range(6)), at=now)
    ctx, user = Context(releaser=OneShotReleaser.from_config), callers.hosted_user("demo1")
    try:
        assert email_ops.release_quota(ctx, user).left == 5
        with pytest.raises(Forbidden) as refused:
            email_ops.release(ctx, user, [six.email_id])
        assert str(refused.value) == (f'email "{six.email_id}" has 6 recipients, more than your release limit of 5 '
                                      "recipient(s) per hour: only the administrator can release it")
        with pytest.raises(Forbidden, match=r"5 recipient\(s\) per hour, 5 left now \(asked for 6\)"):
            email_ops.release(ctx, user, [t.email_id for t in three])   # all of a request or none
        assert ie.sent() == []
        assert email_ops.release(ctx, user, [three[0].email_id]) == [three[0].email_id]
        assert email_ops.release_quota(ctx, user).left == 2
        with pytest.raises(Forbidden, match=r"release limit reached: 5 recipient\(s\) per hour, 2 left now"):
            email_ops.release(ctx, user, [three[1].email_id])
        account_ops.edit(ctx, callers.admin(), "demo1", releases_limit=0)
        with pytest.raises(Forbidden, match="release limit is 0 recipients per hour: only the administrator"):
            email_ops.release(ctx, user, [three[1].email_id])
    finally:
        ctx.close()
    assert len(ie.sent()) == 1
    used = ie.conn.execute("SELECT actor, recipients FROM releases").fetchall()
    assert [tuple(r) for r in used] == [("demo1", 3)]
    assert ie.invoke("emails", "release", "--ids", six.email_id).exit_code == 0   # the administrator: unlimited
    assert len(ie.sent()[-1][0]) == 6 + 6   # -oi -oMr P -f S -- and six recipients
    assert sorted(ie.ids()) == [three[1].email_id]


def test_accounts_edit_help_says_the_quota_counts_recipients(ie):
    text = " ".join(ie.invoke("accounts", "edit", "--help").stdout.split())
    assert "How many recipients the account's own user may release held mail to per hour (0: none)" in text
    assert "one with more recipients than this can be released by the administrator only" in text


def test_release_needs_ids(ie):
    assert_error(ie.invoke("emails", "release"), "--ids")
    assert_error(ie.invoke("emails", "release", "--ids", ","), "no email id given")


# -- remove -----------------------------------------------------------------

def test_remove(ie):
    a, b, c = ie.add("demo1"), ie.add("demo1"), ie.add("demo2")
    result = ie.invoke("emails", "remove", "--ids", f"{a.email_id},{b.email_id}", "-a", "demo1")
    assert (result.exit_code, result.stdout) == (0, "OK\n")
    assert ie.ids() == [c.email_id] and ie.sent() == []
    assert not (ie.storage / a.file).exists()


def test_remove_is_all_or_nothing_and_scoped(ie):
    mine, theirs = ie.add("demo1"), ie.add("demo2")
    assert_error(ie.invoke("emails", "remove", "--ids", f"{mine.email_id},{theirs.email_id}", "-a", "demo1"),
                 f'email "{theirs.email_id}" not found')
    assert_error(ie.invoke("emails", "remove", "--ids", "x"), 'invalid email id "x"')
    assert_error(ie.invoke("emails", "remove", "--ids", mine.email_id, "-a", "ghost"),
                 'account "ghost" not found')
    assert sorted(ie.ids()) == sorted([mine.email_id, theirs.email_id])
    assert ie.invoke("emails", "remove", "--ids", theirs.email_id, "--ids", mine.email_id).exit_code == 0
    assert ie.ids() == []


def test_release_refuses_a_message_another_release_holds(ie):
    import time
    msg = ie.add(subject="held")
    ie.quarantine(at=int(time.time())).claim([msg.email_id], ttl=600)
    assert_error(ie.invoke("emails", "release", "--ids", msg.email_id, "-a", "root"),
                 "is being released by another request")
    assert ie.sent() == [] and ie.ids() == [msg.email_id]


def test_unattributed_lists_only_the_mail_held_under_root_itself(ie):
    mine = ie.add("root", subject="nobody's")
    ie.add("demo1", subject="demo1's")
    everything = ie.invoke("emails", "list", "-a", "root", "--json").json()
    assert everything["max_count"] == 2   # root: every account (the seed's meaning)
    own = ie.invoke("emails", "list", "-a", "root", "--unattributed", "--json").json()
    assert [i["email_id"] for i in own["items"]] == [mine.email_id] and own["max_count"] == 1
    assert [i["subject"] for i in ie.invoke("emails", "list", "--unattributed", "--json").json()["items"]] \
        == ["nobody's"]
    assert_error(ie.invoke("emails", "list", "-a", "demo1", "--unattributed"), "root account only")
