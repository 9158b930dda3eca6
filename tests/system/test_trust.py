"""Issue 19, trust in one step for a while, on the real mail path (Exim, imunifyemaild, Rspamd, the
sink), with the daemon whose clock the test moves (devtools/clocked_daemon.py): a release that
whitelists its sender, or raises the limit it reached, until a time — and that time passing, with
no change to anything in the database, ends it for the very next message."""
import json
import time

from .conftest import held, settle, sunk, wait_held, wait_sunk
from .test_automatic import send

H = 3600


def iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def daemon_now(stack) -> float:
    return time.time() + stack.offset


def test_release_and_whitelist_the_sender_until_a_time_then_its_spam_is_held_again(clocked, token):
    stack = clocked
    sender = f"{token}@demo1.test"
    stack.ie_cli("settings", "--auto-release", "off")
    send(stack, sender, f"{token} first", spam=True)
    [item] = wait_held(stack, f"{token} first")
    assert item["reasons"] == ["spam"]
    end = daemon_now(stack) + 2 * H
    out = stack.ie_cli("emails", "release", "--ids", item["email_id"], "--whitelist-sender", "--until", iso(end))
    assert out.stdout.decode().splitlines() == [f"Whitelisted sender {sender} until {iso(end)}", "OK"]
    wait_sunk(stack, f"{token} first")
    listed = json.loads(stack.ie_cli("whitelist", "sender", "list", "--json").stdout)
    assert listed["expires_at"][sender] == int(end)

    send(stack, sender, f"{token} trusted", spam=True)      # whitelisted: not scanned, not held
    wait_sunk(stack, f"{token} trusted")
    stack.move_clock(int(end) - 5)
    send(stack, sender, f"{token} still", spam=True)        # seconds before its end
    wait_sunk(stack, f"{token} still")
    stack.move_clock(int(end) + 1)                          # the entry has ended: nothing was written
    send(stack, sender, f"{token} after", spam=True)
    [after] = wait_held(stack, f"{token} after")
    assert after["reasons"] == ["spam"]
    settle(stack)
    assert sorted(m.header("Subject") for m in sunk(stack, token)) == [
        f"{token} first", f"{token} still", f"{token} trusted"]
    audit = json.loads(stack.ie_cli("audit", "list", "--json").stdout)["items"]
    assert [(e["action"], e["detail"]) for e in audit if sender in e["detail"].get("values", [])] == [
        ("whitelist add", {"list": "sender", "values": [sender], "until": iso(end)})]


def test_release_and_raise_the_limit_lets_mail_through_until_it_ends(clocked, token):
    stack = clocked
    sender = f"{token}@demo2.test"
    stack.ie_cli("settings", "--auto-release", "off")
    stack.ie_cli("am", "server-settings", "set", "--sender-email=1")
    try:
        send(stack, sender, f"{token} a0")
        wait_sunk(stack, f"{token} a0")
        send(stack, sender, f"{token} a1")                  # over 1 an hour: held
        [item] = wait_held(stack, f"{token} a1")
        assert item["reasons"] == ["ratelimit"]
        start = daemon_now(stack)
        end = start + 30 * 60
        out = stack.ie_cli("emails", "release", "--ids", item["email_id"], "--raise-limit", "3",
                           "--until", iso(end))
        assert out.stdout.decode().splitlines() == [
            f"Raised the limit of sender_email {sender} to 3 an hour until {iso(end)}", "OK"]
        wait_sunk(stack, f"{token} a1")
        for n in (2, 3):                                    # 3 an hour now (the release is not counted)
            send(stack, sender, f"{token} a{n}")
            wait_sunk(stack, f"{token} a{n}")
        send(stack, sender, f"{token} a4")                  # the 4th in the hour: over the raised limit
        wait_held(stack, f"{token} a4")

        stack.move_clock(int(end) + 1)                      # the raise has ended; the hour still counts
        send(stack, sender, f"{token} b0")                  # 3 sent within the hour: over 1 again
        [b0] = wait_held(stack, f"{token} b0")
        assert b0["reasons"] == ["ratelimit"]
        stack.move_clock(start + H + 900)                   # that hour has passed: 1 an hour again
        send(stack, sender, f"{token} c0")
        wait_sunk(stack, f"{token} c0")
        send(stack, sender, f"{token} c1")
        wait_held(stack, f"{token} c1")
    finally:
        stack.ie_cli("am", "server-settings", "set", "--sender-email=0")
    settle(stack)
    assert sorted(m.header("Subject").split()[-1] for m in sunk(stack, token)) == ["a0", "a1", "a2", "a3", "c0"]
    assert sorted(i["subject"].split()[-1] for i in held(stack, token)) == ["a4", "b0", "c1"]
    # ie-cli's clock is the real one: for it the raise still lasts, and am stats says until when
    stats = json.loads(stack.ie_cli("am", "stats", "--sender-email", sender).stdout)
    [obj] = stats["accounts"][0]["domains"][0]["sender_emails"]
    assert (obj["limit"], obj["raised_limit"], obj["raised_until"]) == (3, 3, int(end))
