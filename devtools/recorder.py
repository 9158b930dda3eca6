"""The recording stand-in for Exim's ``sendmail`` of every test and benchmark that re-injects without
a real Exim (:class:`devtools.testroot.TestRoot`, ``ie-cli``'s :class:`tests.cli_helpers.IERoot`, the
spawner's tests).

``sendmail -bs``: speaks SMTP on stdin/stdout like Exim's local SMTP; plain
``sendmail -oi -f S -- R...``: reads one message; ``sendmail -M ids``: notes the request
(argv, uid) as a line of ``.retries`` in the outbox. Each accepted message leaves
a directory in the outbox (nothing else there is one) with ``envelope.json`` (argv, sender, recipients,
protocol, uid) and ``message``; :func:`read_outbox` and :func:`read_retries` read them back.
While the fail flag exists it refuses like an MTA whose spool is broken (the refusal and exit status
are the installer's to choose); a flag holding a number N refuses only once N messages were accepted.
Recipients whose local part starts with ``reject`` or ``defer`` get 550 or 451 at RCPT.
"""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from imunifyemail.core import headers

SCRIPT = r'''#!/usr/bin/python3 -IS
import json, os, sys, time
OUTBOX, FAIL, REFUSAL, REFUSAL_STATUS = {outbox!r}, {fail!r}, {refusal!r}, {refusal_status!r}

def refused():
    if not os.path.exists(FAIL):
        return False
    try:
        after = open(FAIL).read().strip()
    except OSError:   # a flag this user may not read: refuse all the same
        after = ""
    accepted = [n for n in os.listdir(OUTBOX) if not n.startswith(".") and os.path.isdir(os.path.join(OUTBOX, n))]
    return not after or len(accepted) >= int(after)

def record(sender, recipients, data, protocol):
    name = "%d-%d" % (time.time_ns(), os.getpid())
    tmp = os.path.join(OUTBOX, ".tmp-" + name)
    os.mkdir(tmp)
    with open(os.path.join(tmp, "message"), "wb") as fh:
        fh.write(data)
    with open(os.path.join(tmp, "envelope.json"), "w") as fh:
        json.dump({{"argv": sys.argv[1:], "sender": sender, "recipients": recipients,
                    "protocol": protocol, "uid": os.getuid()}}, fh)
    os.rename(tmp, os.path.join(OUTBOX, name))

def option(flag):
    args = sys.argv[1:]
    return args[args.index(flag) + 1] if flag in args else ""

def retry():
    # exim -M: "deliver these queued messages now"; the recorder only notes the request, in one write
    line = json.dumps({{"argv": sys.argv[1:], "uid": os.getuid()}}) + "\n"
    with open(os.path.join(OUTBOX, ".retries"), "a") as fh:
        fh.write(line)

def plain():
    args = sys.argv[1:]
    data = sys.stdin.buffer.read()
    if refused():
        sys.stderr.write(REFUSAL + "\n")
        sys.exit(REFUSAL_STATUS)
    rcpts = args[args.index("--") + 1:] if "--" in args else []
    sender = option("-f")
    record("" if sender == "<>" else sender, rcpts, data, option("-oMr") or "local")

def session():
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    def say(text):
        out.write(text.encode() + b"\r\n")
        out.flush()
    say("220 recorder ESMTP")
    sender, rcpts = None, []
    while True:
        line = inp.readline()
        if not line:
            return
        cmd = line.decode("utf-8", "replace").strip()
        verb = cmd[:4].upper()
        if verb in ("EHLO", "HELO"):
            say("250-recorder\r\n250-8BITMIME\r\n250 PIPELINING")
        elif cmd.upper().startswith("MAIL FROM:"):
            sender, rcpts = cmd[10:].split(">")[0].lstrip(" <"), []
            say("250 OK")
        elif cmd.upper().startswith("RCPT TO:"):
            rcpt = cmd[8:].strip().strip("<>")
            if rcpt.startswith("reject"):
                say("550 5.1.1 <%s>: recipient rejected (simulated)" % rcpt)
            elif rcpt.startswith("defer"):
                say("451 4.2.0 <%s>: try later (simulated)" % rcpt)
            else:
                rcpts.append(rcpt)
                say("250 Accepted")
        elif verb == "DATA":
            say("354 Enter message, ending with \".\" on a line by itself")
            chunks = []
            while True:
                line = inp.readline()
                if not line or line == b".\r\n":
                    break
                chunks.append(line[1:] if line.startswith(b"..") else line)
            if not line:
                return
            if refused():
                say("451 4.3.0 cannot write spool (simulated)")
            else:
                record(sender, rcpts, b"".join(chunks), option("-oMr") or "local-smtp")
                say("250 OK id=recorded")
            sender, rcpts = None, []
        elif verb == "RSET":
            sender, rcpts = None, []
            say("250 Reset OK")
        elif verb == "QUIT":
            say("221 closing connection")
            return
        else:
            say("500 unrecognized command")

retry() if "-M" in sys.argv[1:] else session() if "-bs" in sys.argv[1:] else plain()
'''


def install_recorder(path: Path, outbox: Path, fail_flag: Path,
                     refusal: str = "sendmail: cannot write spool (simulated)", refusal_status: int = 75) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SCRIPT.format(outbox=str(outbox), fail=str(fail_flag), refusal=refusal,
                                  refusal_status=refusal_status))
    path.chmod(0o755)


@dataclass
class Reinjected:
    """One message the stand-in sendmail accepted."""
    argv: List[str]
    sender: str
    recipients: List[str]
    protocol: str
    message: bytes
    uid: int = -1        # who ran sendmail

    def header(self, name: str) -> Optional[str]:
        found = headers.values(self.message, name)
        return found[0] if found else None


@dataclass
class Retry:
    """One ``sendmail -M ids`` asked of the stand-in."""
    argv: List[str]
    uid: int

    @property
    def ids(self) -> List[str]:
        return self.argv[self.argv.index("-M") + 1:]


def read_outbox(outbox: Path) -> List[Reinjected]:
    """The messages accepted so far, oldest first."""
    out = []
    for entry in sorted(p for p in outbox.iterdir() if not p.name.startswith(".") and p.is_dir()):
        env = json.loads((entry / "envelope.json").read_text())
        out.append(Reinjected(env["argv"], env["sender"], env["recipients"], env["protocol"],
                              (entry / "message").read_bytes(), env.get("uid", -1)))
    return out


def read_retries(outbox: Path) -> List[Retry]:
    """The retries asked for so far, oldest first."""
    try:
        lines = (outbox / ".retries").read_text().splitlines(keepends=True)
    except FileNotFoundError:
        return []
    return [Retry(**json.loads(line)) for line in lines if line.endswith("\n")]
