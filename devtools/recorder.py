"""A recording stand-in for Exim's ``sendmail`` (tests, sandbox, bench), until
the Exim integration is in place.

``sendmail -bs``: speaks SMTP on stdin/stdout like Exim's local SMTP; plain
``sendmail -oi -f S -- R...``: reads one message; ``sendmail -M ids``: notes
the ids in ``.retries`` in the outbox. Each accepted message leaves
a directory in the outbox with ``envelope.json`` (argv, sender, recipients,
protocol) and ``message``. While the fail flag exists, it refuses like an MTA
whose spool is broken; recipients whose local part starts with ``reject`` or
``defer`` get 550 or 451 at RCPT.
"""
from pathlib import Path

SCRIPT = r'''#!/usr/bin/python3 -IS
import json, os, sys, time
OUTBOX, FAIL = {outbox!r}, {fail!r}

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
    # exim -M: "deliver these queued messages now"; the recorder only notes the request
    ids = sys.argv[sys.argv.index("-M") + 1:]
    with open(os.path.join(OUTBOX, ".retries"), "a") as fh:
        fh.write(" ".join(ids) + "\n")

def plain():
    args = sys.argv[1:]
    if os.path.exists(FAIL):
        sys.stderr.write("sendmail: cannot write spool (simulated)\n")
        sys.exit(75)
    rcpts = args[args.index("--") + 1:] if "--" in args else []
    sender = option("-f")
    record("" if sender == "<>" else sender, rcpts, sys.stdin.buffer.read(), option("-oMr") or "local")

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
            if os.path.exists(FAIL):
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


def install_recorder(path: Path, outbox: Path, fail_flag: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SCRIPT.format(outbox=str(outbox), fail=str(fail_flag)))
    path.chmod(0o755)
