"""A hostile message costs itself, not everyone: a MIME bomb is held without being parsed or sent to
Rspamd, while other accounts' mail is scanned as usual; an executable hidden by header syntax a mail
client accepts is found (docs/security.md)."""
import base64
import threading

from devtools import samples

from .conftest import held, settle, sunk, wait_held, wait_sunk


def test_a_million_part_message_is_held_and_everyone_elses_mail_is_scanned_meanwhile(stack, token):
    bomb = samples.part_bomb(1_000_000, sender=f"bomb-{token}@demo1.test", subject=f"Bomb {token}")   # 7 MB
    sending = threading.Thread(target=stack.sendmail, args=(bomb, "-f", f"bomb-{token}@demo1.test",
                                                            "x@remote.example"), kwargs={"user": "demo1"})
    sending.start()
    try:
        # another account's mail, sent while the bomb is on its way
        stack.sendmail(samples.gtube(sender=f"s-{token}@demo2.test", subject=f"Spam {token}"), "-f",
                       f"s-{token}@demo2.test", "y@remote.example", user="demo2")
        stack.sendmail(samples.ham(sender=f"h-{token}@demo2.test", subject=f"Ham {token}"), "-f",
                       f"h-{token}@demo2.test", "z@remote.example", user="demo2")
    finally:
        sending.join()
    [bomb_item] = wait_held(stack, f"Bomb {token}")
    assert (bomb_item["account_name"], bomb_item["reasons"]) == ("demo1", ["unscannable"])
    [spam] = wait_held(stack, f"Spam {token}")
    assert spam["reasons"] == ["spam"] and spam["filter_action"] == "reject"   # scanned, not waved through
    [ham] = wait_sunk(stack, f"Ham {token}")
    assert ham.header("X-ImunifyEmail-Filter-Action") == "no action"
    settle(stack)
    assert sunk(stack, f"Bomb {token}") == [] and sunk(stack, f"Spam {token}") == []
    shown = stack.ie_cli("emails", "show", "--id", bomb_item["email_id"], "--json")
    assert shown.returncode == 0
    decisions = [line for line in stack.daemon_log().splitlines() if f"bomb-{token}@demo1.test" in line]
    assert len(decisions) == 1 and "MIME parts" in decisions[0]   # why, for the administrator


def test_an_executable_behind_obsolete_header_syntax_is_found(stack, token):
    sender = f"{token}@demo1.test"
    pe = base64.encodebytes(samples.pe_blob()).decode()
    raw = (f"From: {sender}\nTo: v@remote.example\nSubject: Invoice {token}\nMIME-Version: 1.0\n"
           f"Content-Type : multipart/mixed; boundary=\"XYZ\"\n\n"
           f"--XYZ\nContent-Type: text/plain\n\nPlease find the invoice attached.\n"
           f"--XYZ\nContent-Type: application/octet-stream; name=\"invoice.pdf\"\n"
           f"Content-Transfer-Encoding: base64\n\n{pe}--XYZ--\n").encode()
    stack.sendmail(raw, "-f", sender, "v@remote.example", user="demo1")
    [item] = wait_held(stack, f"Invoice {token}")
    assert item["reasons"] == ["winexec"]
    settle(stack)
    assert sunk(stack, token) == [] and held(stack, token) == [item]
