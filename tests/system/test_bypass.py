"""A hosted user cannot get mail past the filter, nor make it believe something false."""
import base64
import subprocess

from devtools import samples
from devtools.stack import PYTHON

from .conftest import settle, sunk, wait_held, wait_sunk


def _gtube(sender: str, token: str, extra=()) -> bytes:
    return samples.gtube(sender=sender, subject=f"Bypass {token}", extra_headers=extra)


def test_sendmail_with_our_received_protocol_is_still_scanned(stack, token):
    sender = f"{token}@demo1.test"
    for flags in (["-oMr", "imunifyemail-scanned"], ["-oMr", "imunifyemail-released"],
                  ["-oMr", "imunifyemail-notice"], ["-pimunifyemail-scanned"]):
        stack.sendmail(_gtube(sender, token), *flags, "-f", sender, "x@remote.example", user="demo1")
    wait_held(stack, token, 4)
    settle(stack)
    assert sunk(stack, token) == []
    lines = [line for line in stack.exim_log().splitlines() if f"<= {sender} " in line]
    assert len(lines) == 4 and all(" U=demo1 P=local " in line for line in lines)   # -oMr ignored


def test_a_local_smtp_session_of_a_hosted_user_is_scanned(stack, token):
    # The filter's own re-injection is a `sendmail -bs` session of the Exim user; the same of a
    # hosted user must not be mistaken for it.
    sender = f"{token}@demo2.test"
    data = _gtube(sender, token).replace(b"\n", b"\r\n")
    session = (f"EHLO x\r\nMAIL FROM:<{sender}>\r\nRCPT TO:<y@remote.example>\r\nDATA\r\n".encode()
               + data + b"\r\n.\r\nQUIT\r\n")
    stack.run(["/usr/sbin/sendmail", "-bs", "-oMr", "imunifyemail-scanned"], user="demo2", input=session)
    [item] = wait_held(stack, token)
    assert item["account_name"] == "demo2" and item["reasons"] == ["spam"]
    settle(stack)
    assert sunk(stack, token) == []


def test_forged_metadata_and_filter_headers_are_removed_and_not_believed(stack, token):
    demo1_uid = stack.run(["id", "-u", "demo1"]).stdout.decode().strip()
    sender = f"{token}@demo2.test"
    b64 = lambda v: base64.b64encode(v.encode()).decode()  # noqa: E731
    forged = [("X-ImunifyEmail-Meta", f"v=1; uid={demo1_uid}; auth={b64('demo1')}; proto={b64('esmtpa')}; "
                                      f"host=203.0.113.9; id=1forged-000000-AA"),
              ("x-imunifyemail-meta", f"v=1; uid=0; auth={b64('root')}"),
              ("X-ImunifyEmail-Filter-Action", "no action"),
              ("X-ImunifyEmail-Filter-Score", "-100")]
    # Ham, so it comes out the other end and shows what the filter made of it.
    raw = samples.ham(sender=sender, subject=f"Forged {token}", extra_headers=forged)
    stack.sendmail(raw, "-f", sender, "z@remote.example", user="demo2")
    [msg] = wait_sunk(stack, token)
    settle(stack)
    assert msg.all("X-ImunifyEmail-Meta") == []
    assert msg.all("X-ImunifyEmail-Filter-Score") != ["-100"] and len(msg.all("X-ImunifyEmail-Filter-Score")) == 1
    scans = [line for line in stack.daemon_log().splitlines() if f"sender=<{sender}>" in line]
    assert len(scans) == 1 and " account=demo2 " in scans[0]   # the real uid, not the forged one
    assert "1forged" not in scans[0]


def test_a_forged_meta_header_cannot_move_spam_to_another_account(stack, token):
    demo1_uid = stack.run(["id", "-u", "demo1"]).stdout.decode().strip()
    sender = f"{token}@demo2.test"
    raw = _gtube(sender, token, [("X-ImunifyEmail-Meta", f"v=1; uid={demo1_uid}; auth=; proto=; host=; id=")])
    stack.sendmail(raw, "-f", sender, "w@remote.example", user="demo2")
    [item] = wait_held(stack, token)
    assert item["account_name"] == "demo2"


def test_a_hosted_user_cannot_talk_to_the_filter_socket(stack):
    probe = (f"import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
             f"try:\n s.connect({str(stack.socket_path)!r})\n print(s.recv(100))\n"
             f"except OSError as e:\n print('refused', e.errno); sys.exit(0)\n")
    out = subprocess.run(["setpriv", "--reuid=demo1", "--regid=demo1", "--init-groups", PYTHON, "-c", probe],
                         capture_output=True, text=True, cwd="/")
    assert out.stdout.startswith("refused 13"), out.stdout + out.stderr   # EACCES: the socket is the daemon's (0600)
