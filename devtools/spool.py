"""Exim's side of the single pass, for tests without Exim: spool files and the router's question.

:func:`write` puts a message into a spool directory the way Exim 4.96 does (``input/<c>/<id>-H`` and
``-D``, split spool, ``root:mail 0640`` as on cPanel), and :func:`ask` asks the daemon what the
router asks, per remote address. The system tests use the real Exim instead.
"""
import grp
import itertools
import os
import pwd
import re
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

from imunifyemail.protocol import clients

EXIM_USER = "Debian-exim"   # Debian's Exim user (cPanel: mailnull)
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_counter = itertools.count(os.getpid() * 1000)


def _b62(n: int, width: int) -> str:
    out = ""
    for _ in range(width):
        n, r = divmod(n, 62)
        out = _B62[r] + out
    return out


def new_id() -> str:
    """A fresh Exim message id (4.96's 6-6-2 form)."""
    return f"{_b62(int(time.time()), 6)}-{_b62(next(_counter), 6)}-{_b62(int(time.time() * 1000) % 3844, 2)}"


def _entries(header_block: bytes):
    """Header fields, each with its continuation lines, as Exim stores them (LF line ends)."""
    entry = b""
    for line in header_block.split(b"\n"):
        if line[:1] in (b" ", b"\t") and entry:
            entry += line + b"\n"
        else:
            if entry:
                yield entry
            entry = line + b"\n" if line else b""
    if entry:
        yield entry


_HEADER_LINE = re.compile(rb"^[!-9;-~]+[ \t]*:")


def _split(data: bytes):
    """(header block, body) as Exim sees them: headers end at a blank line or the first line that is none."""
    lines = data.split(b"\n")
    for n, line in enumerate(lines):
        if line == b"":
            return b"\n".join(lines[:n]), b"\n".join(lines[n + 1:])
        if not _HEADER_LINE.match(line) and not (line[:1] in (b" ", b"\t") and n > 0):
            return b"\n".join(lines[:n]), b"\n".join(lines[n:])
    return data, b""


def write(spool_dir: Path, exim_id: str, raw: bytes, sender: str, recipients: Sequence[str],
          uid: Optional[int] = None, login: Optional[str] = None, protocol: Optional[str] = None,
          auth_id: Optional[str] = None, host: str = "127.0.0.1", deleted: Sequence[bytes] = (),
          received_at: Optional[int] = None) -> Path:
    """The message as Exim spools it; ``deleted``: header names Exim has marked deleted (``*``).

    Unless told otherwise it came over SMTP from loopback (so the Exim user submitted it), and the
    client authenticated as the sender's own mailbox (SMTP AUTH): verified mail of the account that
    owns the sender's domain. ``auth_id=""``: an unauthenticated client (only a claim of that domain)."""
    exim = pwd.getpwnam(EXIM_USER)
    if auth_id is None:
        auth_id = sender if uid is None else ""
    uid = exim.pw_uid if uid is None else uid
    login = (exim.pw_name if uid == exim.pw_uid else "nobody") if login is None else login
    protocol = ("esmtpa" if auth_id else "esmtp") if protocol is None else protocol
    data = raw.replace(b"\r\n", b"\n")
    head, body = _split(data)
    lines = [f"{exim_id}-H", f"{login} {uid} {grp.getgrnam('mail').gr_gid}", f"<{sender}>",
             f"{int(time.time()) if received_at is None else received_at} 0", f"-received_protocol {protocol}"]
    if auth_id:
        lines.append(f"--auth_id {auth_id}")   # tainted: from the SMTP session
    if host:
        lines.append(f"-host_address {host}.25")
    lines += ["-body_linecount 1", "XX", str(len(recipients)), *recipients, ""]
    hdr = ("\n".join(lines) + "\n").encode()
    for entry in _entries(head):
        name = entry.split(b":", 1)[0].strip().lower()
        flag = b"*" if name in {d.lower() for d in deleted} else b" "
        hdr += f"{len(entry):03d}".encode() + flag + b" " + entry
    directory = Path(spool_dir) / "input" / exim_id[5]
    directory.mkdir(parents=True, exist_ok=True)
    mail = grp.getgrnam("mail").gr_gid
    for suffix, content in (("D", f"{exim_id}-D\n".encode() + body), ("H", hdr)):
        path = directory / f"{exim_id}-{suffix}"
        path.write_bytes(content)
        os.chown(path, 0, mail)
        path.chmod(0o640)
    for d in (directory, directory.parent, directory.parent.parent):   # the Exim user's, as Exim keeps them
        os.chown(d, exim.pw_uid, mail)
        d.chmod(0o750)
    return directory / f"{exim_id}-H"


def ask(socket_path: str, exim_id: str, rcpt: str, timeout: float = 60, verb: str = "SCAN") -> Dict[str, str]:
    """What the router asks for one address, as it asks it; the answer's fields (``verdict`` first)."""
    return clients.ask(socket_path, exim_id, rcpt, timeout, verb)
