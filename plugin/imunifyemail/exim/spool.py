"""Exim's spool files, read as Exim writes them (the spec's chapter "Format of spool files").

``input/<id>-H`` (or ``input/<6th char of id>/<id>-H`` with ``split_spool_directory``):

* line 1 the file's name, line 2 ``<login> <uid> <gid>`` of the submitter, line 3 ``<sender>``
  (``<>`` the null sender), line 4 the time received;
* ``-name value`` options (``--name`` when the value is tainted, Exim 4.94+): ``-received_protocol``,
  ``-auth_id``, ``-host_address`` (``[ip]:port``) ...; ``-aclc``/``-aclm`` variables carry their value
  on the next line(s), of the length given;
* the tree of addresses already delivered (``XX`` for none; ``YY``/``YN``/``NY``/``NN`` + address);
* the number of recipients and one line each (``address`` or ``address errors_to len,pno#flags``);
* a blank line, then the header lines: each entry is ``NNNF text`` — the entry's length in bytes
  (continuation lines included) in at least three digits, a flag character (``*`` = deleted,
  ``P`` Received, ``F`` From, ...) and a space, then the header as received.

``input/<id>-D`` begins with the line ``<id>-D``; the body follows as received. The message Exim
holds is the live header entries, a blank line and the body — byte for byte what was spooled.
"""
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import FrozenSet, Iterator, List, Optional, Set, Tuple

from ..core.attribution import EXIM_ID, Meta

_ACL_VAR = re.compile(rb"^--?acl[cm]\s+\S+\s+(\d+)$")
_TREE = re.compile(rb"^[NYX][NYX]( |$)")
_ERRORS_TO = re.compile(rb" \d+,\d+#\d+$")
_HEADER = re.compile(rb"(\d{3,})(.) ")   # matched at a position: no ^


class SpoolError(Exception):
    """The message is not (or no longer) on the spool, or its files are not Exim's format."""


@dataclass(frozen=True)
class SpooledMessage:
    exim_id: str
    login: str
    uid: int
    gid: int
    sender: str
    protocol: str = ""
    auth_id: str = ""
    host: str = ""
    recipients: Tuple[str, ...] = ()
    delivered: FrozenSet[str] = frozenset()
    headers: Tuple[bytes, ...] = field(default=(), repr=False)    # live entries, as received
    received_at: int = 0      # when Exim received it (seconds since the epoch)

    @property
    def undelivered(self) -> List[str]:
        return [r for r in self.recipients if r not in self.delivered]

    def meta(self, exim_uid: Optional[int] = None) -> Meta:
        """What attribution needs, from the spool (never from a request); ``exim_uid``: the Exim user's."""
        return Meta(uid=self.uid, auth=self.auth_id, proto=self.protocol, host=self.host, exim_id=self.exim_id,
                    by_exim=exim_uid is not None and self.uid == exim_uid)

    def message(self, body: bytes) -> bytes:
        """The message as Exim delivers it (``exim -Mvc``): neither file holds the blank line between
        header and body, so a header-only message gets it here, as Exim's own copy does."""
        return b"".join(self.headers) + b"\n" + body


def _value(line: bytes) -> str:
    return line.split(b" ", 1)[1].decode("utf-8", "surrogateescape") if b" " in line else ""


def parse_header_file(exim_id: str, data: bytes, journal: bytes = b"") -> SpooledMessage:
    """A ``-H`` file's content; SpoolError if it is not one (e.g. caught half-written)."""
    try:
        return _parse(exim_id, data, journal)
    except (ValueError, IndexError) as exc:
        raise SpoolError(f"{exim_id}-H: not an Exim spool header file ({exc})") from None


def _parse(exim_id: str, data: bytes, journal: bytes) -> SpooledMessage:
    lines = data.split(b"\n")
    if lines[0] != f"{exim_id}-H".encode():
        raise ValueError("first line is not its name")
    login, uid, gid = lines[1].split(b" ")[:3]
    received_at = int(lines[3].split(b" ")[0])
    sender = lines[2].strip()
    sender = sender[1:-1] if sender.startswith(b"<") and sender.endswith(b">") else sender
    options = {}
    i = 4
    while i < len(lines) and lines[i].startswith(b"-"):
        acl = _ACL_VAR.match(lines[i])
        if acl:   # the value follows on its own line(s), of the given length
            i += 1
            skip = int(acl.group(1))
            while i < len(lines) and skip > len(lines[i]):
                skip -= len(lines[i]) + 1
                i += 1
        else:
            # "--name value": Exim 4.94+ marks a tainted value (from the message) with a second dash
            name = lines[i].split(b" ", 1)[0].lstrip(b"-").decode("ascii", "replace")
            options[name] = _value(lines[i])
        i += 1
    delivered = set()
    while i < len(lines) and _TREE.match(lines[i]):
        if not lines[i].startswith(b"XX"):
            delivered.add(lines[i][3:].strip().decode("utf-8", "surrogateescape"))
        i += 1
    count = int(lines[i].strip())
    recipients = []
    for line in lines[i + 1:i + 1 + count]:
        address = line.strip()
        if _ERRORS_TO.search(address):
            address = address.split(b" ", 1)[0]
        recipients.append(address.decode("utf-8", "surrogateescape"))
    i += 1 + count
    if lines[i] != b"":
        raise ValueError("no blank line before the headers")
    headers = _headers(b"\n".join(lines[i + 1:]))
    delivered.update(line.strip().decode("utf-8", "surrogateescape") for line in journal.split(b"\n") if line.strip())
    host = _without_port(options.get("host_address", ""))
    return SpooledMessage(exim_id=exim_id, login=login.decode("utf-8", "replace"), uid=int(uid), gid=int(gid),
                          sender=sender.decode("utf-8", "surrogateescape"),
                          protocol=options.get("received_protocol", ""), auth_id=options.get("auth_id", ""),
                          host=host, recipients=tuple(recipients), delivered=frozenset(delivered),
                          headers=tuple(headers), received_at=received_at)


def _without_port(host: str) -> str:
    """``[ip]:port`` (4.96) or ``ip.port`` (older Exims): the address alone."""
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    if host.count(".") == 4 or (":" in host and "." in host):
        return host.rsplit(".", 1)[0]
    return host


def _headers(block: bytes) -> List[bytes]:
    """The live header entries, each exactly as received (deleted ones, flagged ``*``, left out)."""
    out, pos = [], 0
    while pos < len(block):
        m = _HEADER.match(block, pos)
        if m is None:
            if block[pos:].strip():
                raise ValueError("a header entry without its length")
            break
        start = m.end()
        length = int(m.group(1))
        entry = block[start:start + length]
        if len(entry) != length:
            raise ValueError("a header entry shorter than its length")
        if m.group(2) != b"*":
            out.append(entry)
        pos = start + length
    return out


class Spool:
    """One Exim spool directory (``spool_directory``): find and read a message's files."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._input = os.path.join(str(directory), "input")
        self._flat_first = False   # where the last file was found: a spool keeps its layout

    # A message's files are looked up as plain strings, each opened at its first candidate place: the
    # daemon reads every message it is asked about, and pathlib and a stat before each open were a
    # measurable share of its CPU per message (issue 18).
    def _places(self, exim_id: str, suffix: str) -> Tuple[str, str]:
        """Where a file of the message is: split_spool_directory's subdirectory first, then flat."""
        if not EXIM_ID.fullmatch(exim_id):
            raise SpoolError(f"not an Exim message id: {exim_id!r}")
        name = f"{exim_id}-{suffix}"
        split, flat = f"{self._input}/{exim_id[5]}/{name}", f"{self._input}/{name}"
        return (flat, split) if self._flat_first else (split, flat)

    def _read(self, exim_id: str, suffix: str) -> Tuple[Optional[bytes], str]:
        """A file's bytes and where they were (None, "" when it is in neither place)."""
        for n, place in enumerate(self._places(exim_id, suffix)):
            try:
                with open(place, "rb") as fh:
                    data = fh.read()
            except FileNotFoundError:
                continue
            if n:
                self._flat_first = not self._flat_first
            return data, place
        return None, ""

    def header(self, exim_id: str) -> SpooledMessage:
        data, place = self._read(exim_id, "H")
        if data is None:
            raise SpoolError(f"{exim_id}: not in the spool {self.directory}")
        try:   # the journal (addresses delivered before a crash) is beside it, if there is one
            with open(place[:-1] + "J", "rb") as fh:
                journal = fh.read()
        except FileNotFoundError:
            journal = b""
        return parse_header_file(exim_id, data, journal)

    def data_size(self, exim_id: str) -> int:
        """The ``-D`` file's size (0 when it is not there): how big the message is."""
        for place in self._places(exim_id, "D"):
            try:
                return os.stat(place).st_size
            except FileNotFoundError:
                continue
        return 0

    def read(self, exim_id: str) -> Tuple[SpooledMessage, bytes]:
        """The message's envelope and its bytes as spooled (headers as received, blank line, body)."""
        spooled = self.header(exim_id)
        data, _ = self._read(exim_id, "D")
        if data is None:
            raise SpoolError(f"{exim_id}: its -D file is not in the spool")
        first, _, body = data.partition(b"\n")
        if first != f"{exim_id}-D".encode():
            raise SpoolError(f"{exim_id}-D: not an Exim spool data file")
        return spooled, spooled.message(body)

    def _names(self, subdir: str) -> List[str]:
        """File names in ``input/`` or ``msglog/``, split into subdirectories or not."""
        try:
            entries = list(os.scandir(self.directory / subdir))
        except FileNotFoundError:
            return []
        names = []
        for entry in entries:
            if entry.is_dir():   # split_spool_directory
                names += [e.name for e in os.scandir(entry.path)]
            else:
                names.append(entry.name)
        return names

    def message_ids(self) -> List[str]:
        """The ids of the messages in the queue (their ``-H`` files), nothing read."""
        return [name[:-2] for name in self._names("input") if name.endswith("-H") and EXIM_ID.fullmatch(name[:-2])]

    def msglog_ids(self) -> Set[str]:
        """The ids of the messages with a message log (a delivery was attempted), nothing read."""
        return {name for name in self._names("msglog") if EXIM_ID.fullmatch(name)}

    def messages(self) -> Iterator[SpooledMessage]:
        """Every message's envelope (those caught mid-write or gone meanwhile are left out)."""
        for exim_id in self.message_ids():
            try:
                yield self.header(exim_id)
            except (SpoolError, OSError):
                continue

    def msglog(self, exim_id: str) -> str:
        """Exim's per-message log (``msglog/``), what its deliveries said so far."""
        for candidate in (self.directory / "msglog" / exim_id[5] / exim_id, self.directory / "msglog" / exim_id):
            try:
                return candidate.read_text(errors="replace")
            except OSError:
                continue
        return ""
