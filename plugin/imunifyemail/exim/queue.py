"""What waits in Exim's queue for the scanner (``ie-config status``), read from the spool.

A message waits for the scanner while it has an undelivered recipient in a
remote domain and is not one our router skips (a second pass: released with
``imunifyemail-released``, or passed and re-injected by the Exim user over
``sendmail -bs``; or Exim's own bounce) — the same rule as ``exim_conf/router.conf``. Each message's ``-H`` file says
who submitted it, with which protocol, its recipients and those already
delivered; the ``-J`` journal adds deliveries not yet written back. Reading
the files (as root) costs one ``exim -bP`` run, however long the queue.
"""
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Set, Tuple

from .. import paths
from ..core.attribution import EXIM_ID

EXIM = "/usr/sbin/exim"
_ACL_VAR = re.compile(r"^-acl[cm]\s+\S+\s+(\d+)$")
_TREE = re.compile(r"^[NYX][NYX] ")
_ID = re.compile(rf"^{EXIM_ID.pattern}-H$")


class QueueError(Exception):
    pass


@dataclass(frozen=True)
class SpoolMessage:
    exim_id: str
    uid: int
    sender: str
    protocol: str
    recipients: Tuple[str, ...]
    delivered: frozenset

    @property
    def undelivered(self) -> List[str]:
        return [r for r in self.recipients if r not in self.delivered]


@dataclass(frozen=True)
class QueueSummary:
    total: int
    waiting_for_scanner: int


def exim_settings(*names: str) -> dict:
    conf = paths.system_path(paths.EXIM_CONF)
    try:
        proc = subprocess.run([EXIM, "-C", str(conf), "-bP", *names], capture_output=True, text=True,
                              errors="replace", timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise QueueError(f"cannot run {EXIM}: {exc}") from None
    if proc.returncode != 0:
        raise QueueError(f"{EXIM} -bP: {(proc.stderr or proc.stdout).strip()[:300]}")
    out = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def parse_header_file(exim_id: str, text: str, journal: str = "") -> SpoolMessage:
    lines = text.split("\n")
    uid = int(lines[1].split()[1])
    sender = lines[2].strip()
    sender = sender[1:-1] if sender.startswith("<") and sender.endswith(">") else sender
    protocol, delivered = "", set()
    i = 4
    while i < len(lines) and lines[i].startswith("-"):
        acl = _ACL_VAR.match(lines[i])
        if acl:   # the value follows on its own line(s), of the given length
            i += 1
            skip = int(acl.group(1))
            while i < len(lines) and skip > len(lines[i]):
                skip -= len(lines[i]) + 1
                i += 1
        elif lines[i].startswith("-received_protocol "):
            protocol = lines[i].split(" ", 1)[1].strip()
        i += 1
    while i < len(lines) and _TREE.match(lines[i] + " "):   # the delivered ("non-recipients") tree
        if not lines[i].startswith("XX"):
            delivered.add(lines[i][3:].strip())
        i += 1
    count = int(lines[i].strip())
    recipients = []
    for line in lines[i + 1:i + 1 + count]:
        address = line.strip()
        if re.search(r" \d+,\d+#\d+$", address):   # "address errors_to len,pno#flags"
            address = address.split(" ", 1)[0]
        recipients.append(address)
    delivered.update(line.strip() for line in journal.splitlines() if line.strip())
    return SpoolMessage(exim_id, uid, sender, protocol, tuple(recipients), frozenset(delivered))


def _header_files(spool: Path) -> Iterator[Path]:
    base = spool / "input"
    try:
        entries = list(os.scandir(base))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.is_dir():   # split_spool_directory
            for sub in os.scandir(entry.path):
                if _ID.match(sub.name):
                    yield Path(sub.path)
        elif _ID.match(entry.name):
            yield Path(entry.path)


def messages(spool: Path) -> Iterator[SpoolMessage]:
    for hfile in _header_files(spool):
        exim_id = hfile.name[:-2]
        try:
            text = hfile.read_text(encoding="utf-8", errors="surrogateescape")
            jfile = hfile.with_name(f"{exim_id}-J")
            journal = jfile.read_text(errors="surrogateescape") if jfile.exists() else ""
            yield parse_header_file(exim_id, text, journal)
        except (OSError, ValueError, IndexError):
            continue   # delivered and removed meanwhile, or being written


def local_domains(hostname: str) -> Set[str]:
    domains = {"localhost", hostname.lower()}
    try:
        text = paths.system_path(paths.LOCALDOMAINS).read_text(errors="replace")
    except OSError:
        return domains
    domains.update(line.strip().lower() for line in text.splitlines() if line.strip())
    return domains


def waits_for_scanner(msg: SpoolMessage, local: Set[str], exim_uid: int) -> bool:
    if msg.protocol.startswith("imunifyemail-"):
        return False
    if msg.protocol in ("local-smtp", "local-esmtp") and msg.uid == exim_uid:
        return False   # passed by the filter: re-injected by the Exim user over sendmail -bs
    if msg.sender == "" and msg.protocol == "local" and msg.uid == exim_uid:
        return False   # Exim's own bounce
    return any(r.rpartition("@")[2].lower() not in local for r in msg.undelivered)


def summary(spool: Optional[Path] = None) -> QueueSummary:
    settings = exim_settings("spool_directory", "primary_hostname")
    spool = spool or Path(settings.get("spool_directory", "/var/spool/exim"))
    local = local_domains(settings.get("primary_hostname", ""))
    try:
        exim_uid = (spool / "input").stat().st_uid
    except OSError:
        return QueueSummary(0, 0)
    total = waiting = 0
    for msg in messages(spool):
        total += 1
        waiting += waits_for_scanner(msg, local, exim_uid)
    return QueueSummary(total, waiting)
