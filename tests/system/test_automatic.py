"""Issue 10 on the real mail path (Exim, imunifyemaild, Rspamd, the sink): containment of a compromised
account, and automatic release of rate-limited mail as the window frees — with a daemon whose clock
the test moves (devtools/clocked_daemon.py: the real daemon, root, spawner and all, whose time is the
system's plus an offset read from a file), so an hour passes without waiting for it."""
import collections
import json
import math
import time

from devtools import cpanel_standins, samples

from .conftest import held, query, settle, sunk, wait_held, wait_sunk

H = 3600


def send(stack, sender: str, subject: str, spam: bool = False) -> None:
    build = samples.gtube if spam else samples.ham
    with stack.smtp_connection(login=sender) as smtp:   # the account's own mailbox, authenticated
        smtp.sendmail(sender, ["far@remote.example"], build(sender=sender, subject=subject))


def account(stack, name: str) -> dict:
    [found] = [a for a in json.loads(stack.ie_cli("accounts", "list", "--json").stdout)["items"] if a["name"] == name]
    return found


def test_containment_blocks_the_account_at_n_plus_1_and_state_active_restores_it(clocked, token):
    stack = clocked
    spammer, friend = f"{token}-s@demo1.test", f"{token}-f@demo1.test"
    stack.ie_cli("settings", "--containment-threshold", "3")
    stack.ie_cli("whitelist", "sender", "add", friend)
    try:
        for n in range(3):
            send(stack, spammer, f"{token} spam {n}", spam=True)
            wait_held(stack, f"{token} spam", n + 1)
        assert account(stack, "demo1")["state"] == "active"
        send(stack, spammer, f"{token} spam 3", spam=True)   # the 4th held as spam: more than 3
        wait_held(stack, f"{token} spam", 4)
        contained = account(stack, "demo1")
        assert contained["state"] == "block" and contained["contained_at"] is not None
        assert {tuple(i["reasons"]) for i in held(stack, f"{token} spam")} == {("spam",)}

        send(stack, spammer, f"{token} ham held")          # everything it sends is held now...
        [item] = wait_held(stack, f"{token} ham held")
        assert item["reasons"] == ["blocked"]
        send(stack, friend, f"{token} friend")             # ...but for its whitelisted senders
        [msg] = wait_sunk(stack, f"{token} friend")
        assert msg.mail_from == friend
        # the root notification job (its timer: every minute) holds it the cPanel way too
        whmapi1_before = len(cpanel_standins.calls(stack.root, "whmapi1"))
        stack.ie_config("notify")
        assert [c["argv"] for c in cpanel_standins.calls(stack.root, "whmapi1")[whmapi1_before:]] == \
            [["--output=json", "hold_outgoing_email", "user=demo1"]]
        assert cpanel_standins.held_outgoing(stack.root) == ["demo1"]

        stack.ie_cli("accounts", "edit", "-a", "demo1", "--state", "active")   # the one restore action
        restored = account(stack, "demo1")
        assert (restored["state"], restored["contained_at"]) == ("active", None)
        stack.ie_config("notify")   # ... and releases its hold
        assert [c["argv"] for c in cpanel_standins.calls(stack.root, "whmapi1")[whmapi1_before + 1:]] == \
            [["--output=json", "release_outgoing_email", "user=demo1"]]
        assert cpanel_standins.held_outgoing(stack.root) == []
        send(stack, spammer, f"{token} ham after")
        wait_sunk(stack, f"{token} ham after")
    finally:
        stack.ie_cli("accounts", "edit", "-a", "demo1", "--state", "active")
        stack.ie_cli("whitelist", "sender", "remove", friend)
        stack.ie_cli("settings", "--containment-threshold", "50")
    settle(stack)
    audit = json.loads(stack.ie_cli("audit", "list", "--json").stdout)["items"]
    assert [(e["actor"], e["role"], e["via"], e["detail"]["threshold"], e["detail"]["held_last_hour"])
            for e in audit if e["action"] == "contain" and e["account"] == "demo1"] == \
        [("imunifyemaild", "daemon", "daemon", 3, 4)]
    assert query(stack, "SELECT account, sender FROM events WHERE kind = 'contained'") == [("demo1", spammer)]
    assert [e["outcome"] for e in audit if e["action"] == "account edit" and "contained_at" in e["detail"]] == ["ok"]
    assert len(sunk(stack, token)) == 2 and held(stack, f"{token} ham after") == []


def test_a_burst_over_the_limit_leaves_exactly_once_as_the_window_frees(clocked, token):
    stack = clocked
    sender = f"{token}@demo2.test"
    start = time.time() + stack.offset   # the daemon's time now
    stack.ie_cli("am", "server-settings", "set", "--sender-email=3")
    stack.ie_cli("settings", "--auto-release", "on")
    try:
        for n in range(3):   # three sent, ten minutes apart (daemon time)
            stack.move_clock(start + 600 * n)
            send(stack, sender, f"{token} sent {n}")
            wait_sunk(stack, f"{token} sent", n + 1)
        for n in range(5):
            send(stack, sender, f"{token} held {n}")
        wait_held(stack, f"{token} held", 5)
        sent_at = [at for (at,) in query(
            stack, "SELECT e.at FROM am_events e JOIN sender_objects o ON o.id = e.object_id"
                   " WHERE o.type = 'sender_email' AND o.name = ? ORDER BY e.at", sender)]
        assert len(sent_at) == 3
        expected = {i["subject"]: i["expected_release"] for i in held(stack, f"{token} held")}
        assert expected == {   # each takes the slot of one sent; the last two those of the first two released
            f"{token} held 0": math.ceil(sent_at[0] + H), f"{token} held 1": math.ceil(sent_at[1] + H),
            f"{token} held 2": math.ceil(sent_at[2] + H), f"{token} held 3": math.ceil(sent_at[0] + 2 * H),
            f"{token} held 4": math.ceil(sent_at[1] + 2 * H)}

        stack.move_clock(sent_at[0] + H + 60)   # the first sent has aged out: one slot
        wait_sunk(stack, f"{token} held", 1)
        stack.wait_for(lambda: len(held(stack, f"{token} held")) == 4, "the first one gone from the quarantine")
        assert query(stack, "SELECT COUNT(*) FROM messages WHERE subject LIKE ? AND claimed_at IS NOT NULL",
                     f"%{token}%") == [(0,)]   # none of the others was even picked
        stack.move_clock(sent_at[1] + H + 60)   # the second: one more
        wait_sunk(stack, f"{token} held", 2)
        stack.wait_for(lambda: len(held(stack, f"{token} held")) == 3, "the second one gone from the quarantine")
        released_at = [at for (at,) in query(stack, "SELECT at FROM audit WHERE action = 'auto release'"
                                                    " AND outcome = 'ok' ORDER BY id")]
        stack.move_clock(released_at[-1] + H + 60)   # all sent before have aged out: the last three fit
        wait_sunk(stack, f"{token} held", 5)
        stack.wait_for(lambda: held(stack, token) == [], "an empty quarantine")
    finally:
        stack.ie_cli("settings", "--auto-release", "off")
        stack.ie_cli("am", "server-settings", "set", "--sender-email=0")
    settle(stack)
    subjects = collections.Counter(m.header("Subject") for m in sunk(stack, token))
    assert subjects == collections.Counter([f"{token} sent {n}" for n in range(3)] +
                                           [f"{token} held {n}" for n in range(5)])   # each exactly once
    order = [m.header("Subject") for m in sorted(sunk(stack, f"{token} held"), key=lambda m: m.path.name)]
    assert order[:2] == [f"{token} held 0", f"{token} held 1"]   # oldest first
    released = [line for line in stack.exim_log().splitlines()
                if f"<= {sender} " in line and "P=imunifyemail-released" in line]
    assert len(released) == 5 and all(" U=Debian-exim " in line for line in released)
    entries = [e for e in json.loads(stack.ie_cli("audit", "list", "--json").stdout)["items"]
               if e["action"] == "auto release"]
    assert {(e["actor"], e["role"], e["outcome"]) for e in entries} == {("imunifyemaild", "daemon", "ok")}
    times = sent_at + sorted(e["time"] for e in entries)
    assert all(sum(1 for t in times if end - H < t <= end) <= 3 for end in times)   # never more than 3 an hour
    assert query(stack, "SELECT COUNT(*) FROM events WHERE kind = 'auto_released' AND sender = ?", sender) == [(5,)]
