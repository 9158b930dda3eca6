"""A held copy is byte for byte what Exim spooled, and a release sends those bytes.

Exim normalizes what it receives (CRLF and a lone CR become LF, a missing final newline is added, a
header block cut short gets its blank line): the reference is what Exim keeps, read from its spool
before the message is routed (``exim -Mvc``, and the ``-D`` file itself), never what was submitted.
A message handed to ``smtplib`` as bytes that end in a bare LF reaches Exim with one more line: the
client appends CRLF to data not ending in CRLF without converting its bare LFs, and Exim keeps that
line — the SMTP case below therefore submits proper CRLF data.
"""
import base64
import glob
import importlib.util
import json
import os
from pathlib import Path
from typing import Dict, Tuple

from devtools.exim import EXIM

from .conftest import settle

# Endings and shapes Exim treats each its own way.
OWN = {
    "no-final-newline": b"Subject: x\n\nlast line without a newline",
    "lf": b"Subject: x\n\nends in LF\n",
    "crlf": b"Subject: x\r\n\r\nends in CRLF\r\n",
    "two-newlines": b"Subject: x\n\nends in two LFs\n\n",
    "three-newlines": b"Subject: x\n\nends in three\n\n\n",
    "header-only": b"Subject: x\n",
    "empty-body": b"Subject: x\n\n",
    "blank-body-line": b"Subject: x\n\n\n",
    "lone-cr": b"Subject: x\n\nlone\rcarriage return\n",
    "ends-in-cr": b"Subject: x\n\nends in CR\r",
    "dots-and-nul": b"Subject: x\n\n.\n..\n.x\nnul\x00byte\n",
    "mixed-endings": b"Subject: x\n\nmixed\r\nendings\n\r\n",
    "headers-cut-by-a-non-header": b"Subject: x\nnot a header line\nmore\n",
    "mbox-from-line": b"From someone@example.com Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n",
    "long-line": b"Subject: x\n\n" + b"y" * 990 + b"\n",   # longer: Exim's transport refuses it (998)
    "nothing": b"",
}


def cpython_corpus() -> Dict[str, bytes]:
    """The real and malformed messages of CPython's email tests (``Lib/test/test_email/data``), from the
    Python installed here with its test suite that has the most (Debian's python3 has none; pyenv's do)."""
    spec = importlib.util.find_spec("test")
    mine = [str(Path(p) / "test_email/data") for p in (spec.submodule_search_locations or [])] if spec else []
    candidates = mine + sorted(glob.glob("/usr/lib/python3*/test/test_email/data")) + \
        sorted(glob.glob("/usr/local/lib/python3*/test/test_email/data")) + \
        sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/*/lib/python3*/test/test_email/data")))
    found = [sorted(Path(directory).glob("msg_*.txt")) for directory in candidates]
    return {p.name: p.read_bytes() for p in max(found, key=len, default=[])}


def spooled_id(stack, sender: str) -> str:
    """Exim id of the queued message from ``sender`` (line 3 of its -H file), "" if there is none."""
    for hfile in (stack.layout.spool / "input").rglob("*-H"):
        try:
            if hfile.read_bytes().split(b"\n")[2].decode().strip("<>") == sender:
                return hfile.name[:-2]
        except (OSError, IndexError):
            continue
    return ""


def queued_frozen(stack, raw: bytes, sender: str, recipient: str) -> Tuple[str, str]:
    """Submit as demo2 and freeze it at once: no queue run routes it before the test has read the spool
    (one that took it meanwhile: sent again, from another sender). Its (sender, Exim id)."""
    for attempt in range(3):
        envelope = f"{sender.replace('@', f'.{attempt}@')}" if attempt else sender
        stack.sendmail(raw, "-odq", "-f", envelope, recipient, user="demo2", sync=False)
        exim_id = spooled_id(stack, envelope)
        if exim_id and stack.run([EXIM, "-Mf", exim_id], check=False).returncode == 0 \
                and spooled_id(stack, envelope):
            return envelope, exim_id
    raise AssertionError(f"{sender}: routed by a queue run three times before it could be frozen")


def data_file_body(stack, exim_id: str) -> bytes:
    """The ``-D`` file after its first line: the body exactly as Exim keeps it."""
    dfile = next((stack.layout.spool / "input").rglob(f"{exim_id}-D"))
    return dfile.read_bytes().split(b"\n", 1)[1]


def held_by_sender(stack, token: str, count: int) -> Dict[str, dict]:
    def listed():
        out = stack.ie_cli("emails", "list", "-a", "root", "--sender", token, "--limit", "1000", "--json")
        items = json.loads(out.stdout)["items"]
        return {i["sender"]: i for i in items} if len(items) >= count else None
    return stack.wait_for(listed, f"{count} held message(s) from {token}")


def stored(stack, email_id: str) -> bytes:
    storage = stack.root / "var/imunifyemail/quarantine/storage"
    return next(storage.rglob(f"{email_id}.eml")).read_bytes()


def split_body(message: bytes) -> Tuple[bytes, bytes]:
    """(header block, body) at the first blank line; Exim's copies always have one."""
    head, sep, body = message.partition(b"\n\n")
    assert sep, message[:200]
    return head + b"\n", body


def sink_copy(msg) -> bytes:
    """What the sink received, without its envelope lines, with the wire's CRLF back to Exim's LF."""
    lines = msg.raw.split(b"\r\n")
    while lines and lines[0].startswith((b"X-Sink-Mail-From: ", b"X-Sink-Rcpt-To: ")):
        lines.pop(0)
    return b"\n".join(lines)


def blocked(stack, account: str):
    """Every message of ``account`` is held (for the duration of a ``with``)."""
    class _Blocked:
        def __enter__(self):
            stack.ie_cli("accounts", "edit", "-a", account, "--state", "block")

        def __exit__(self, *exc):
            stack.ie_cli("accounts", "edit", "-a", account, "--state", "active")
    return _Blocked()


def test_held_copy_is_what_exim_spooled_and_a_release_sends_it(stack, token):
    messages = {**OWN, **cpython_corpus()}
    names = list(messages)
    settle(stack)
    with blocked(stack, "demo2"):
        # read from the spool before it is routed
        ids = dict(queued_frozen(stack, messages[name], f"{token}-{n}@demo2.test", f"exact-{token}@remote.example")
                   for n, name in enumerate(names))
        senders = list(ids)
        exim_copy = {s: stack.run([EXIM, "-Mvc", ids[s]]).stdout for s in senders}
        exim_body = {s: data_file_body(stack, ids[s]) for s in senders}
        stack.run([EXIM, "-M", *ids.values()])   # thawed and routed: held
        items = held_by_sender(stack, token, len(senders))
        for n, sender in enumerate(senders):
            held = stored(stack, items[sender]["email_id"])
            assert held == exim_copy[sender], names[n]
            assert split_body(held)[1] == exim_body[sender], names[n]
            shown = json.loads(stack.ie_cli("emails", "show", "--id", items[sender]["email_id"], "--json").stdout)
            assert base64.b64decode(shown["body"]) == exim_body[sender], names[n]
        assert {i["filter_action"] for i in items.values()} == {"blocked"}   # the verdict a release adds
        stack.ie_cli("emails", "release", "--ids", ",".join(i["email_id"] for i in items.values()))
    at_sink = stack.wait_for(lambda: {m.mail_from: m for m in stack.delivered() if token in m.mail_from}
                             if sum(token in m.mail_from for m in stack.delivered()) >= len(senders) else None,
                             "every released message at the sink")
    for n, sender in enumerate(senders):
        # Exim's Received field, the held header block, the filter's verdict, the body Exim spooled
        head, body = split_body(sink_copy(at_sink[sender]))
        assert body == exim_body[sender], names[n]
        kept = split_body(exim_copy[sender])[0] + b"X-ImunifyEmail-Filter-Action: blocked\n"
        assert head.endswith(kept), names[n]
        received = head[:-len(kept)].split(b"\n")[:-1]   # one field: Exim's own, for the re-injection
        assert received[0].startswith(b"Received: ") and all(c[:1] in b" \t" for c in received[1:]), names[n]


def test_mail_over_smtp_is_held_as_exim_received_it(stack, token):
    # Proper SMTP data (CRLF lines): Exim keeps each line with LF, adds the final line end if missing.
    submitted = {name: raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                 for name, raw in OWN.items() if name in ("lf", "crlf", "two-newlines", "no-final-newline",
                                                          "dots-and-nul", "empty-body")}
    senders = {f"{token}-{name}@demo2.test": name for name in submitted}
    with blocked(stack, "demo2"):
        with stack.smtp_connection(login="demo2") as smtp:
            for sender, name in senders.items():
                smtp.sendmail(sender, [f"smtp-{token}@remote.example"], submitted[name])
        items = held_by_sender(stack, token, len(senders))
    for sender, name in senders.items():
        head, body = split_body(stored(stack, items[sender]["email_id"]))
        sent_head, _, sent_body = submitted[name].replace(b"\r\n", b"\n").partition(b"\n\n")
        kept = sent_body if sent_body.endswith(b"\n") or not sent_body else sent_body + b"\n"
        assert body == kept, name
        assert (sent_head + b"\n") in head, name
