"""Sender limits (Activity Monitor, issue 3) on the real mail path, and releasing what they held."""
import json
import time

from devtools import samples

from .conftest import held, query, sender_counts, settle, sunk, wait_held, wait_sunk


def test_a_message_over_the_limit_is_held_and_its_release_delivers_it_once_uncounted(stack, token):
    sender = f"{token}@demo1.test"
    before = json.loads(stack.ie_cli("am", "server-settings").stdout)
    stack.ie_cli("am", "server-settings", "set", "--sender-email=2")
    try:
        for n in range(3):
            with stack.smtp_connection(login=sender) as smtp:
                smtp.sendmail(sender, ["limit@remote.example"],
                              samples.ham(sender=sender, subject=f"Burst {n} {token}"))
            if n < 2:
                wait_sunk(stack, token, n + 1)
        [item] = wait_held(stack, token)
    finally:
        stack.ie_cli("am", "server-settings", "set", f"--sender-email={before['sender_email']}")
    settle(stack)
    assert item["reasons"] == ["ratelimit"] and item["subject"] == f"Burst 2 {token}"
    assert len(sunk(stack, token)) == 2
    counts = sender_counts(stack, sender)
    assert (counts["messages"], counts["quarantined"]) == (2, 1)
    scans = len([line for line in stack.daemon_log().splitlines() if f"sender=<{sender}>" in line])

    assert stack.ie_cli("emails", "release", "--ids", item["email_id"]).stdout.decode().strip() == "OK"
    wait_sunk(stack, token, 3)
    settle(stack)
    released = [m for m in sunk(stack, token) if "Burst 2" in m.header("Subject")]
    assert len(released) == 1 and released[0].rcpt_to == ["limit@remote.example"]
    assert held(stack, token) == []
    assert len([line for line in stack.daemon_log().splitlines() if f"sender=<{sender}>" in line]) == scans
    [second] = [line for line in stack.exim_log().splitlines()
                if f"<= {sender} " in line and "P=imunifyemail-released" in line]
    assert " U=Debian-exim " in second   # released as the Exim user, past the router
    counts = sender_counts(stack, sender)
    assert (counts["messages"], counts["quarantined"]) == (2, 1)   # not counted again


# -- issue 19: the recipient cap and daily limits ------------------------------------------

H, D = 3600, 86400


def held_limits(stack, email_id: str) -> list:
    """The limits the daemon recorded for a hold (its ``held`` event: the digest's and the webhook's)."""
    [(text,)] = query(stack, "SELECT limits FROM events WHERE kind = 'held' AND email_id = ?", email_id)
    return json.loads(text)


def send(stack, sender: str, subject: str, recipients) -> None:
    with stack.smtp_connection(login=sender) as smtp:
        smtp.sendmail(sender, list(recipients), samples.ham(sender=sender, subject=subject))


def test_a_51_recipient_message_is_held_under_a_cap_of_50_and_one_of_50_passes(stack, token):
    sender = f"{token}@demo1.test"
    stack.ie_cli("am", "server-settings", "set", "--max-recipients=50")
    try:
        send(stack, sender, f"Cap 51 {token}", [f"r{i}-{token}@remote.example" for i in range(51)])
        [item] = wait_held(stack, f"Cap 51 {token}")
        send(stack, sender, f"Cap 50 {token}", [f"r{i}-{token}@remote.example" for i in range(50)])
        wait_sunk(stack, f"Cap 50 {token}")
    finally:
        stack.ie_cli("am", "server-settings", "set", "--max-recipients=0")
    settle(stack)
    assert item["reasons"] == ["ratelimit"] and len(item["recipients"]) == 51
    assert held_limits(stack, item["email_id"]) == [
        {"type": "", "name": "", "limit": 50, "limit_mode": 2, "window": "message"}]
    assert sum(len(m.rcpt_to) for m in sunk(stack, token)) == 50
    assert sunk(stack, f"Cap 51 {token}") == []
    counts = sender_counts(stack, sender)
    assert (counts["messages"], counts["quarantined"]) == (1, 1)   # the held one was not counted as sent
    assert "(limit reached: 51 recipients in one message/50)" in stack.daemon_log()


def test_a_daily_limit_holds_the_first_message_over_it_while_the_hourly_limit_has_room(clocked, token):
    stack = clocked
    sender = f"{token}@demo1.test"
    start = time.time() + stack.offset   # the daemon's time now
    stack.ie_cli("am", "server-settings", "set", "--sender-email=2", "--daily-sender-email=3")
    try:
        for n in range(2):   # the hourly limit's worth
            send(stack, sender, f"{token} first hour {n}", ["far@remote.example"])
            wait_sunk(stack, f"{token} first hour", n + 1)
        stack.move_clock(start + 2 * H)   # a new hour: the hourly window is empty, the day is not
        send(stack, sender, f"{token} later 0", ["far@remote.example"])
        wait_sunk(stack, f"{token} later 0")
        send(stack, sender, f"{token} later 1", ["far@remote.example"])   # 2nd of the hour, 4th of the day
        [item] = wait_held(stack, f"{token} later 1")
        assert item["reasons"] == ["ratelimit"]
        assert held_limits(stack, item["email_id"]) == [
            {"type": "sender_email", "name": sender, "limit": 3, "limit_mode": 1, "window": "day"}]
        assert f"{item['email_id']} (limit reached: sender_email " in stack.daemon_log()
        assert "4/3 a day)" in stack.daemon_log()

        # automatic release waits for the day: until the minute of the first two is 24 hours old
        stack.ie_cli("settings", "--auto-release", "on")
        [(first_minute,)] = query(stack, "SELECT MIN(b.bucket) FROM am_buckets b JOIN sender_objects o"
                                         " ON o.id = b.object_id WHERE o.type = 'sender_email' AND o.name = ?"
                                         " AND b.messages > 0", sender)
        [item] = held(stack, f"{token} later 1")
        assert item["expected_release"] == first_minute + D
        stack.move_clock(first_minute + D + 1)
        wait_sunk(stack, f"{token} later 1")
        stack.wait_for(lambda: held(stack, token) == [], "an empty quarantine")
        [(released_at,)] = query(stack, "SELECT at FROM audit WHERE action = 'auto release' AND outcome = 'ok'"
                                        " AND ids LIKE ?", f'%{item["email_id"]}%')
        assert released_at >= first_minute + D   # not a moment before the day had room
    finally:
        stack.ie_cli("settings", "--auto-release", "off")
        stack.ie_cli("am", "server-settings", "set", "--sender-email=0", "--daily-sender-email=0")
    settle(stack)
    assert sorted(m.header("Subject") for m in sunk(stack, token)) == sorted(
        [f"{token} first hour 0", f"{token} first hour 1", f"{token} later 0", f"{token} later 1"])
