"""Windows executables in a message: by PE header, by file extension, and inside ZIP archives.

Everything here is a function of untrusted bytes, so nothing raises: a part or
archive that cannot be read is skipped and the rest of the message is still
examined.
"""
import io
import re
import struct
import zipfile
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import collapse_rfc2231_value
from typing import Iterator, List

from . import headers

EXECUTABLE_EXTENSIONS = frozenset({
    "exe", "scr", "com", "pif", "bat", "cmd", "cpl", "msi", "dll", "vbs", "vbe", "js", "jse", "wsf",
    "wsh", "hta", "lnk", "ps1", "jar", "msp", "scf", "reg", "gadget", "application", "msc",
})

ZIP_MAGIC = b"PK\x03\x04"
MEMBER_HEAD = 64 * 1024          # bytes of an archive member we may read to find a PE header
NESTED_ZIP_MAX = 8 * 1024 * 1024  # bytes of a zip inside a zip we may read to open it
MAX_MEMBERS = 10_000             # members per archive whose content is read (names are all checked)
MAX_NESTING = 3                  # zips inside zips, and encoded messages inside messages, followed
# Total decompressed bytes per message: nesting multiplies the per-archive limits, so a
# crafted archive could otherwise cost hours. Once spent, member names are still checked.
READ_BUDGET = 128 * 1024 * 1024
MEMBER_COST = 4096               # one deflate read: what opening a member costs at least

_TRAILING = re.compile(r"[\s.]+$")  # Windows drops trailing dots and spaces from a file name


@dataclass(frozen=True)
class Finding:
    location: str   # human-readable, e.g. "invoice.zip/setup.exe" or "part 2" (for a nameless part)
    why: str        # "PE header" or "extension .exe"


class _Budget:
    def __init__(self) -> None:
        self.left = READ_BUDGET

    def read(self, fh: "zipfile.ZipExtFile", n: int) -> bytes:
        data = fh.read(max(0, min(n, self.left)))  # never read(-1): that means "everything"
        self.left -= len(data)
        return data


_PLAIN_TYPES = ("text/plain", "text/html")
_PLAIN_ENCODINGS = ("", "7bit", "8bit")


def _plainly_text(raw: bytes) -> bool:
    """A single text part that can hold no file: no MIME structure, no name, no encoding that could
    carry binary (7bit/8bit text cannot hold a PE file). Most outbound mail is not; this much is
    decided from the header block alone, without parsing the message."""
    fields = headers.Fields(raw)
    if fields.values("Content-Disposition"):
        return False
    ctypes = fields.values("Content-Type")
    if len(ctypes) > 1 or (ctypes and ctypes[0].split(";", 1)[0].strip().lower() not in _PLAIN_TYPES):
        return False
    if ctypes and "name" in ctypes[0].lower():   # name=, filename*= ...: treat as an attachment
        return False
    encodings = fields.values("Content-Transfer-Encoding")
    return len(encodings) <= 1 and (encodings[0].strip().lower() if encodings else "") in _PLAIN_ENCODINGS


def find_executables(raw: bytes) -> List[Finding]:
    """All Windows executables in a message (given as the exact raw RFC 5322 bytes)."""
    if _plainly_text(raw):
        return []
    findings: List[Finding] = []
    try:
        _scan_message(raw, "", findings, _Budget(), 0)
    except Exception:  # last line of defence; whatever was found so far still counts
        pass
    return findings


def _scan_message(raw: bytes, prefix: str, findings: List[Finding], budget: _Budget, depth: int) -> None:
    try:
        msg = BytesParser(policy=compat32).parsebytes(raw)
    except RecursionError:
        # Only absurd MIME nesting gets here; uninspectable must not mean clean.
        findings.append(Finding(prefix + "message", "MIME nesting too deep to inspect"))
        return
    for number, part in enumerate(_leaves(msg), 1):
        try:
            _scan_leaf(part, prefix, number, findings, budget, depth)
        except Exception:
            continue  # one hostile part must not hide the others


def _leaves(msg: Message) -> Iterator[Message]:
    """Leaf parts in document order; iterative, since Message.walk() recurses."""
    stack = [msg]
    while stack:
        part = stack.pop()
        payload = part.get_payload()
        if isinstance(payload, list) and not _is_encoded_message(part):
            stack.extend(p for p in reversed(payload) if isinstance(p, Message))
        else:
            yield part


def _is_encoded_message(part: Message) -> bool:
    # The parser reads a base64/QP message/rfc822 body as if it were the inner message.
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    return part.get_content_maintype() == "message" and cte in ("base64", "quoted-printable")


def _body(part: Message) -> bytes:
    payload = part.get_payload()
    if isinstance(payload, list):  # an encoded message/*: re-encode what the parser split, then decode
        encoded = Message()
        encoded["Content-Transfer-Encoding"] = str(part.get("content-transfer-encoding"))
        encoded.set_payload("".join(p.as_string() for p in payload).lstrip("\r\n"))
        part = encoded
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _scan_leaf(part: Message, prefix: str, number: int, findings: List[Finding], budget: _Budget,
               depth: int) -> None:
    names = _names(part)
    where = prefix + (names[0] if names else "part %d" % number)
    for name in names:
        ext = _extension(name)
        if ext in EXECUTABLE_EXTENSIONS:
            findings.append(Finding(prefix + name, "extension ." + ext))
    data = _body(part)
    if _is_pe(data):
        findings.append(Finding(where, "PE header"))
    elif data[:4] == ZIP_MAGIC or any(_extension(n) == "zip" for n in names):
        _scan_zip(data, where, findings, budget, 0)
    if part.get_content_maintype() == "message" and depth < MAX_NESTING:
        _scan_message(data, where + "/", findings, budget, depth + 1)


def _names(part: Message) -> List[str]:
    """Content-Disposition filename and Content-Type name, decoded; both, as they may differ."""
    names: List[str] = []
    for get in (part.get_filename, lambda: collapse_rfc2231_value(part.get_param("name") or "")):
        try:
            name = get()
        except Exception:
            continue
        if isinstance(name, str) and name:
            name = _decode_words(name)
            if name not in names:
                names.append(name)
    return names


def _decode_words(name: str) -> str:
    if "=?" not in name:
        return name
    try:
        return str(make_header(decode_header(name)))
    except Exception:  # unknown charset, bad encoded word: the raw text is the best we have
        return name


def _extension(name: str) -> str:
    stem = _TRAILING.sub("", name)
    return stem.rsplit(".", 1)[1].lower() if "." in stem else ""


def _is_pe(data: bytes) -> bool:
    """MZ stub whose e_lfanew (uint32 at 0x3C) points at a "PE\\0\\0" signature."""
    if len(data) < 0x40 or data[:2] != b"MZ":
        return False
    (offset,) = struct.unpack_from("<I", data, 0x3C)
    return data[offset:offset + 4] == b"PE\0\0"


def _scan_zip(data: bytes, where: str, findings: List[Finding], budget: _Budget, depth: int) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except Exception:
        return  # corrupt, truncated or not a zip at all: nothing more to see inside
    with archive:
        for index, info in enumerate(members):
            location = "%s/%s" % (where, info.filename)
            ext = _extension(info.filename)
            if ext in EXECUTABLE_EXTENSIONS:
                findings.append(Finding(location, "extension ." + ext))
            # Only stored and deflated members: zipfile decompresses bzip2/lzma reads
            # without an output bound, so a few bytes can expand to gigabytes.
            if (index >= MAX_MEMBERS or budget.left <= 0 or info.is_dir()
                    or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)):
                continue
            try:
                _scan_member(archive, info, location, ext == "zip", findings, budget, depth)
            except Exception:
                continue  # encrypted (RuntimeError), unsupported, damaged: the name was checked


def _scan_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, location: str, named_zip: bool,
                 findings: List[Finding], budget: _Budget, depth: int) -> None:
    budget.left -= MEMBER_COST
    with archive.open(info) as fh:
        # A bad CRC would raise at end of a small member and hide its content; 7-Zip
        # still extracts such files. Private attribute: if it ever goes, CRC errors are skipped.
        fh._expected_crc = None
        head = budget.read(fh, 0x40)
        if head[:2] == b"MZ" and len(head) == 0x40:
            (offset,) = struct.unpack_from("<I", head, 0x3C)
            if offset + 4 <= MEMBER_HEAD:  # read only as far as the PE signature
                head += budget.read(fh, offset + 4 - len(head))
        if _is_pe(head):
            findings.append(Finding(location, "PE header"))
        elif depth < MAX_NESTING and (head[:4] == ZIP_MAGIC or named_zip):
            nested = head + budget.read(fh, NESTED_ZIP_MAX - len(head))
            _scan_zip(nested, location, findings, budget, depth + 1)
