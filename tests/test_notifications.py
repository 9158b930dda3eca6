"""The notification rules and the digest, without I/O (core/notifications.py, core/digest.py)."""
import json
from email import message_from_bytes
from email.policy import default
from pathlib import Path

from imunifyemail.core import digest
from imunifyemail.core import notifications as rules
from imunifyemail.core.notifications import Channel, Cursor
from imunifyemail.store.events import Event

REPO = Path(__file__).resolve().parent.parent
HOUR = 3600


def ev(id, account="demo1", kind="held", reasons=("spam",), sender="a@demo1.test", script="", at=None):
    return Event(id, at if at is not None else 1_700_000_000 + id, kind, account, reasons, sender, script, f"e{id}")


ADMIN = Channel(rules.ADMIN, None)
OWNER1 = Channel(rules.owner_channel("demo1"), "demo1")
OWNER2 = Channel(rules.owner_channel("demo2"), "demo2")


def make_plan(chans, events, addresses, cursors=None, start=0, now=10 * HOUR, period=HOUR):
    cursors = cursors or {}
    waiting = rules.pending(chans, cursors, events, start)
    last = max([e.id for e in events] + [start])
    return rules.plan(chans, waiting, addresses, cursors, last, start, now, period)


# -- who gets what, when -----------------------------------------------------------------------

def test_the_administrator_gets_every_account_and_an_owner_only_theirs():
    events = [ev(1), ev(2, "demo2"), ev(3, "root", sender="")]
    p = make_plan([ADMIN, OWNER1, OWNER2], events,
                  {ADMIN.name: ("admin@ops.example",), OWNER1.name: ("o1@cust.example",), OWNER2.name: ("o2@cust.example",)})
    by_to = {d.addresses: d for d in p.digests}
    assert [e.id for e in by_to[("admin@ops.example",)].events] == [1, 2, 3]
    assert by_to[("admin@ops.example",)].accounts is None
    assert [e.id for e in by_to[("o1@cust.example",)].events] == [1]
    assert by_to[("o1@cust.example",)].accounts == ("demo1",)
    assert [e.id for e in by_to[("o2@cust.example",)].events] == [2]


def test_one_address_gets_one_digest_per_period_whatever_its_roles():
    events = [ev(1), ev(2, "demo2")]
    same = ("boss@ops.example",)
    p = make_plan([ADMIN, OWNER1, OWNER2], events, {ADMIN.name: same, OWNER1.name: same, OWNER2.name: same})
    [d] = p.digests
    assert d.accounts is None and set(d.channels) == {ADMIN.name, OWNER1.name, OWNER2.name}
    assert [e.id for e in d.events] == [1, 2]   # each event once
    # two accounts of one owner: one digest naming both
    p = make_plan([OWNER1, OWNER2], events, {OWNER1.name: same, OWNER2.name: same})
    [d] = p.digests
    assert d.accounts == ("demo1", "demo2")


def test_an_address_is_not_due_within_the_period_and_its_events_wait():
    events = [ev(5), ev(6)]
    cursors = {rules.ADMIN: Cursor(4, 10 * HOUR - 600), rules.sent_to_channel(["admin@ops.example"]): Cursor(4, 10 * HOUR - 600)}
    p = make_plan([ADMIN], events, {ADMIN.name: ("admin@ops.example",)}, cursors)
    assert p.digests == [] and p.moved == {}   # kept: nothing moves past them
    p = make_plan([ADMIN], events, {ADMIN.name: ("admin@ops.example",)}, cursors, now=10 * HOUR - 600 + HOUR)
    [d] = p.digests
    assert [e.id for e in d.events] == [5, 6]
    assert rules.delivered(d, 6, 11 * HOUR) == {rules.ADMIN: Cursor(6, 11 * HOUR),
                                                "mail-to:admin@ops.example": Cursor(6, 11 * HOUR)}


def test_nothing_waiting_sends_nothing_and_moves_a_cursor_on_once_it_falls_behind_the_window():
    cursors = {rules.ADMIN: Cursor(3, 0), OWNER1.name: Cursor(1, 0), OWNER2.name: Cursor(2, 0)}
    p = make_plan([ADMIN, OWNER1, OWNER2], [ev(2, "demo3"), ev(3, "demo3")], {}, cursors, start=2)
    assert p.digests == [] and p.unmailed == {}
    assert p.moved == {OWNER1.name: Cursor(3, 0)}   # no reason to read from 1 again; 2 and 3 are in the window


def test_nobody_to_send_to_moves_past_the_events_and_says_how_many():
    p = make_plan([ADMIN, OWNER1], [ev(1), ev(2)], {ADMIN.name: ("admin@ops.example",), OWNER1.name: ()})
    assert [d.addresses for d in p.digests] == [("admin@ops.example",)]
    assert p.unmailed == {OWNER1.name: 2} and p.moved[OWNER1.name] == Cursor(2, 0)


def test_a_channel_without_a_cursor_starts_after_start():
    p = make_plan([ADMIN], [ev(1), ev(2), ev(3)], {ADMIN.name: ("a@ops.example",)}, start=2)
    [d] = p.digests
    assert [e.id for e in d.events] == [3]


def test_old_address_rows_expire_and_switched_off_channels_are_forgotten():
    cursors = {"mail-to:old@ops.example": Cursor(1, 0), "mail-to:new@ops.example": Cursor(1, 10 * HOUR - 5)}
    assert make_plan([ADMIN], [], {}, cursors).expired == ["mail-to:old@ops.example"]
    names = [rules.ADMIN, rules.owner_channel("x"), rules.WEBHOOK, "mail-to:a@b.example"]
    assert rules.forgotten(names, True, True, True) == []
    assert rules.forgotten(names, False, False, False) == [rules.ADMIN, rules.owner_channel("x"), rules.WEBHOOK]


def test_owner_channels_come_from_cursors_and_events_never_for_root():
    events = [ev(1, "demo2"), ev(2, "root")]
    chans = rules.channels(True, True, [rules.owner_channel("demo1"), "mail-to:x@y.example"], events)
    assert [c.name for c in chans] == [rules.ADMIN, rules.owner_channel("demo1"), rules.owner_channel("demo2")]
    assert rules.channels(False, False, [rules.owner_channel("demo1")], events) == []


def test_contact_addresses_are_checked():
    assert rules.parse_contacts(" Admin@Ops.Example ") == (("admin@ops.example",), [])
    assert rules.parse_contacts("a@x.example, b@y.example;a@x.example") == (("a@x.example", "b@y.example"), [])
    assert rules.parse_contacts("-oQ@x.example nope") == (("-oq@x.example",), ["nope"])
    assert rules.parse_contacts("") == ((), [])


# -- what the digest says -------------------------------------------------------------------------

def test_summary_counts_reasons_accounts_senders_scripts_and_the_rest():
    events = [ev(1, reasons=("spam",)), ev(2, reasons=("spam", "ratelimit"), script="demo1.test/m.php"),
              ev(3, reasons=("winexec",), sender="b@demo1.test"), ev(4, "demo2", reasons=("blocked",), sender=""),
              ev(5, "demo2", kind="contained", reasons=()), ev(6, "demo2", kind="contained", reasons=()),
              ev(7, kind="auto_released", reasons=())]
    s = digest.summarize(events)
    assert s.held == 4
    assert s.reasons == (("spam", 2), ("winexec", 1), ("ratelimit", 1), ("blocked", 1))
    assert s.accounts == (("demo1", 3), ("demo2", 1))
    assert s.senders == (("a@demo1.test", "demo1", 2), ("<>", "demo2", 1), ("b@demo1.test", "demo1", 1))
    assert s.scripts == (("demo1.test/m.php", "demo1", 1),)
    assert s.contained == ("demo2",) and s.auto_released == 1
    assert (s.first_at, s.last_at) == (events[0].at, events[-1].at)
    assert not s.empty and digest.summarize([]).empty


def compose(events, accounts=None, to=("admin@ops.example",)):
    msg = digest.compose(digest.summarize(events), "server.example.com", "root@server.example.com", to, accounts,
                         HOUR, 1_700_000_100, (events[0].id, events[-1].id))
    return message_from_bytes(msg.as_bytes(policy=digest.POLICY), policy=default)


def test_the_administrators_digest_as_an_email():
    msg = compose([ev(1), ev(2, reasons=("ratelimit",)), ev(3, "demo2", kind="contained", reasons=())])
    assert msg["Subject"] == "Imunify Email on server.example.com: 2 messages held, 1 account blocked"
    assert msg["From"] == "Imunify Email <root@server.example.com>" and msg["To"] == "admin@ops.example"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["Message-ID"].endswith("@server.example.com>")
    assert msg.get_content_type() == "text/plain"
    text = msg.get_content()
    assert "spam" in text and "ratelimit" in text and "a@demo1.test (demo1)" in text
    assert "Blocked automatically" in text and "  demo2" in text
    assert "https://server.example.com:2087/cgi/imunifyemail/index.cgi\n" in text
    assert "https://server.example.com:2087/cgi/imunifyemail/index.cgi?route=/admin/activity" in text
    assert "2083" not in text and "one such message every hour" in text


def test_an_owners_digest_names_their_account_and_links_to_cpanel():
    msg = compose([ev(1), ev(2)], accounts=("demo1",), to=("o1@cust.example",))
    assert msg["Subject"] == "Imunify Email on server.example.com, account demo1: 2 messages held"
    text = msg.get_content()
    assert "your account demo1" in text
    assert "https://server.example.com:2083/frontend/jupiter/imunifyemail/index.live.cgi" in text
    assert "2087" not in text and "Accounts with the most" not in text


def test_what_a_sender_wrote_cannot_pose_as_part_of_the_digest():
    msg = compose([ev(1, sender="x@demo1.test\nReview: https://evil.example/" + "a" * 200, script="s\r\n.php")])
    text = msg.get_content()
    assert "\nReview: https://evil.example" not in text
    assert "x@demo1.test?Review: https://evil.example/" in text and "…" in text
    assert "s??.php" in text


def test_the_links_are_where_the_plugins_are_registered():
    appconfig = dict(line.split("=", 1) for line in (REPO / "whm/imunifyemail.conf").read_text().splitlines()
                     if "=" in line and not line.startswith("#"))
    assert digest.WHM_PATH == appconfig["url"]
    [entry] = json.loads((REPO / "cpanel/install.json").read_text())
    assert digest.CPANEL_PATH == "/frontend/jupiter/" + entry["uri"]


def test_durations_read_naturally():
    assert [digest.duration(s) for s in (300, 3600, 5400, 86400, 7 * 86400, 301)] == \
        ["5 minutes", "1 hour", "90 minutes", "1 day", "7 days", "301 seconds"]


def test_the_digest_names_the_sender_limits_that_were_reached():
    from imunifyemail.core.limits import Reached
    news = Reached("sender_email", "news@demo1.test", 100)
    acct = Reached("account", "demo2", 40, 2)
    events = [Event(1, 1_700_000_001, "held", "demo1", ("ratelimit",), "news@demo1.test", "", "e1", (news,)),
              Event(2, 1_700_000_002, "held", "demo1", ("ratelimit",), "news@demo1.test", "", "e2", (news,)),
              Event(3, 1_700_000_003, "held", "demo2", ("ratelimit",), "x@demo2.test", "", "e3", (acct,)),
              ev(4)]
    s = digest.summarize(events)
    assert s.limits == ((news, "demo1", 2), (acct, "demo2", 1))
    text = compose(events).get_content()
    assert "Sender limits reached (messages held by each):" in text
    assert "  sender_email news@demo1.test: 100 messages an hour (demo1)       2" in text
    assert "  account demo2: 40 recipients an hour (demo2)" in text
    assert "Sender limits reached" not in compose([ev(1)]).get_content()


def test_the_digest_says_which_window_a_limit_counts_and_names_the_recipient_cap():
    from imunifyemail.core.limits import BY_RECIPIENTS, DAILY, PER_MESSAGE, Reached
    daily = Reached("account", "demo1", 500, 1, DAILY)
    cap = Reached("", "", 50, BY_RECIPIENTS, PER_MESSAGE)
    events = [Event(1, 1_700_000_001, "held", "demo1", ("ratelimit",), "a@demo1.test", "", "e1", (daily,)),
              Event(2, 1_700_000_002, "held", "demo1", ("ratelimit",), "a@demo1.test", "", "e2", (cap,))]
    text = compose(events).get_content()
    assert "  account demo1: 500 messages a day (demo1)" in text
    assert "  more than 50 recipients in one message (demo1)" in text
