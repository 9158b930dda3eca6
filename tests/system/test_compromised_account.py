"""A compromised account (its OS user, its PHP, its SMTP client on loopback) cannot turn the guard
against its neighbours: forged mail is charged, limited and contained on a pseudo-account of its own,
never on the account it names, and no whitelist lets it through unscanned (docs/security.md)."""
import base64
import json

from devtools import samples
from devtools.stack import PYTHON

from .conftest import held, settle, sunk, wait_held, wait_sunk

# Sends each message (base64 lines on stdin: sender, then message) over one unauthenticated SMTP
# session to Exim on loopback, as whatever OS user runs it.
LOOPBACK_CLIENT = """
import base64, smtplib, sys
port = int(sys.argv[1])
with smtplib.SMTP("127.0.0.1", port) as smtp:
    for line in sys.stdin:
        sender, rcpt, raw = (base64.b64decode(x) for x in line.split())
        smtp.sendmail(sender.decode(), [rcpt.decode()], raw)
"""


def forge_over_loopback(stack, user: str, messages) -> None:
    """``messages``: (envelope sender, recipient, raw) sent by OS user ``user`` over loopback SMTP."""
    b64 = lambda v: base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode()  # noqa: E731
    lines = "".join(f"{b64(s)} {b64(r)} {b64(raw)}\n" for s, r, raw in messages).encode()
    stack.run([PYTHON, "-c", LOOPBACK_CLIENT, str(stack.layout.smtp_port)], user=user, input=lines)
    if len(messages) > 10:   # past 10 in one connection Exim only queues them (smtp_accept_queue_per_connection)
        stack.queue_run()


def account_row(stack, name: str):
    found = [a for a in json.loads(stack.ie_cli("accounts", "list", "--json").stdout)["items"] if a["name"] == name]
    return found[0] if found else None


def account_sent(stack, name: str) -> int:
    """Messages the Activity Monitor counted as sent by the account object in the last hour."""
    stats = json.loads(stack.ie_cli("am", "stats", "--account-name", name, "--since", "3600").stdout)
    return sum(a["messages"] for a in stats.get("accounts") or [] if a["name"] == name)


def test_forged_spam_contains_a_pseudo_account_of_its_own_never_the_account_it_names(stack, token):
    threshold = 50   # the default containment threshold: the 51st spam within an hour contains
    forged = [(f"a{n}@demo2.test", f"{token}-{n}@remote.example",
               samples.gtube(sender=f"a{n}@demo2.test", subject=f"Forged {token} {n}")) for n in range(threshold + 1)]
    try:
        forge_over_loopback(stack, "demo1", forged)
        items = wait_held(stack, f"Forged {token}", threshold + 1)
        assert {i["account_name"] for i in items} == {"unverified:demo2"}
        assert {tuple(i["reasons"]) for i in items} == {("spam",)}
        assert account_row(stack, "unverified:demo2")["state"] == "block"      # contained: the forgery stops
        demo2 = account_row(stack, "demo2")
        assert demo2 is None or (demo2["state"], demo2["contained_at"]) == ("active", None)
        # demo2's own mail, from its own Unix user, still leaves
        stack.sendmail(samples.ham(sender="real@demo2.test", subject=f"Real {token}"), "-f", "real@demo2.test",
                       "friend@remote.example", user="demo2")
        [msg] = wait_sunk(stack, f"Real {token}")
        assert msg.mail_from == "real@demo2.test"
        # while the next forgery in its name is held as blocked, under the pseudo-account
        forge_over_loopback(stack, "demo1", [("b@demo2.test", "x@remote.example",
                                               samples.ham(sender="b@demo2.test", subject=f"Again {token}"))])
        [again] = wait_held(stack, f"Again {token}")
        assert (again["account_name"], again["reasons"]) == ("unverified:demo2", ["blocked"])
        assert again["sender_verified"] is False and again["claimed_account"] == "demo2"
    finally:
        stack.ie_cli("accounts", "edit", "-a", "unverified:demo2", "--state", "active")
    settle(stack)
    assert sunk(stack, f"Forged {token}") == [] and sunk(stack, f"Again {token}") == []


def test_forged_mail_cannot_use_up_another_accounts_hourly_limit(stack, token):
    before = json.loads(stack.ie_cli("am", "server-settings").stdout)
    used = account_sent(stack, "demo2")
    limit = used + 1   # demo2 may send exactly one more message this hour
    stack.ie_cli("am", "server-settings", "set", f"--account={limit}")
    try:
        n = used + 4   # more than the limit, all claiming demo2
        forge_over_loopback(stack, "demo1", [(f"f{i}@demo2.test", "far@remote.example",
                                              samples.ham(sender=f"f{i}@demo2.test", subject=f"Ham {token} {i}"))
                                             for i in range(n)])
        stack.wait_for(lambda: len(sunk(stack, f"Ham {token}")) + len(held(stack, f"Ham {token}")) == n,
                       "every forged message delivered or held")
        over = held(stack, f"Ham {token}")
        assert over and {(i["account_name"], tuple(i["reasons"])) for i in over} == \
            {("unverified:demo2", ("ratelimit",))}
        assert account_sent(stack, "demo2") == used   # nothing of it was charged to demo2
        stack.sendmail(samples.ham(sender="own@demo2.test", subject=f"Own {token}"), "-f", "own@demo2.test",
                       "boss@remote.example", user="demo2")
        wait_sunk(stack, f"Own {token}")
        assert held(stack, f"Own {token}") == [] and account_sent(stack, "demo2") == used + 1
    finally:
        stack.ie_cli("am", "server-settings", "set", f"--account={before['account']}")
    settle(stack)


def gtube_with_exe(sender: str, subject: str) -> bytes:
    msg = samples.build(sender=sender, subject=subject, body=f"Spam.\n\n{samples.GTUBE}\n")
    msg.add_attachment(samples.pe_blob(), maintype="application", subtype="octet-stream", filename="setup.exe")
    return bytes(msg)


def test_a_whitelisted_address_is_trusted_only_from_the_account_that_owns_it(stack, token):
    stack.ie_cli("whitelist", "sender", "add", "demo2.test")
    try:
        # demo1's own Unix user naming demo2's whitelisted domain: scanned, held, charged to demo1
        stack.sendmail(gtube_with_exe("x@demo2.test", f"Named {token}"), "-f", "x@demo2.test",
                       "v@remote.example", user="demo1")
        [named] = wait_held(stack, f"Named {token}")
        assert named["account_name"] == "demo1" and sorted(named["reasons"]) == ["spam", "winexec"]
        # the same over unauthenticated loopback SMTP: scanned, held under the pseudo-account
        forge_over_loopback(stack, "demo1", [("y@demo2.test", "v@remote.example",
                                               gtube_with_exe("y@demo2.test", f"Relayed {token}"))])
        [relayed] = wait_held(stack, f"Relayed {token}")
        assert relayed["account_name"] == "unverified:demo2" and sorted(relayed["reasons"]) == ["spam", "winexec"]
        # demo2's own mail from its whitelisted domain passes unscanned, as the administrator asked
        stack.sendmail(samples.gtube(sender="z@demo2.test", subject=f"Own {token}"), "-f", "z@demo2.test",
                       "v@remote.example", user="demo2")
        [own] = wait_sunk(stack, f"Own {token}")
        assert own.header("X-ImunifyEmail-Filter-Action") == "whitelisted"
    finally:
        stack.ie_cli("whitelist", "sender", "remove", "demo2.test")
    settle(stack)
    assert sunk(stack, f"Named {token}") == [] and sunk(stack, f"Relayed {token}") == []
