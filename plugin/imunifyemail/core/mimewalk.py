"""MIME structure as mail clients read it, obsolete and sloppy syntax included.

Python's ``email`` parser ends a header block at the first line it does not take for a field, so
``Content-Type : multipart/mixed`` (obsolete syntax, RFC 5322 section 4.5.3, which clients accept)
turned a whole message into one text part, and it has no hook to stop between a million parts. Here
a header block runs to its blank line, fields are unfolded before their names are read, and a part
is a range of one buffer: splitting a multipart copies nothing and can stop at any child.
"""
import binascii
import re
from collections import Counter
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Callable, Iterator, List, Optional, Tuple
from urllib.parse import unquote_to_bytes

_EOL = re.compile(rb"\r\n|\r|\n")
_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:")   # field name, optional white space before the colon
_FOLD = re.compile(rb"(?:\r\n|\r|\n)(?=[ \t])")
_BLANK_LINE = re.compile(rb"\n[\r\n]|\r\r")   # a line break, then a line that is empty
_TICK_EVERY = 4096      # header lines read between two looks at the clock
_MIME_FIELDS = frozenset({b"content-type", b"content-transfer-encoding", b"content-disposition"})
_MAX_BOUNDARY = 200     # RFC 2046 allows 70 characters; a guessed boundary longer than this is not one


Fields = List[Tuple[str, str]]   # MIME fields: (lower-case name, unfolded value), duplicates kept


@dataclass
class Head:
    fields: Fields
    body: int                       # where the body starts: after the blank line
    early_body: int = -1            # where a stricter reader (Python's) starts it: the first line
    #                                 that is not a field, when that comes before the blank line
    early_fields: int = 0           # how many of ``fields`` that reader has

    def values(self, name: str) -> List[str]:
        return values(self.fields, name)

    def readings(self) -> List[Tuple[Fields, int]]:
        """(fields, where the body starts) of each way the block is read: to its blank line, and as
        a stricter reader ends it."""
        found = [(self.fields, self.body)]
        if self.early_body >= 0:
            found.append((self.fields[:self.early_fields], self.early_body))
        return found


def values(fields: Fields, name: str) -> List[str]:
    """Every value of the field, each once: clients disagree on which of two wins."""
    found: List[str] = []
    for field, value in fields:
        if field == name and value not in found:
            found.append(value)
    return found


def head(buf: bytes, start: int, end: int, tick: Callable[[], None] = lambda: None) -> Head:
    """The header block of the entity ``buf[start:end]``."""
    if start < end and buf[start] in b"\r\n":
        return Head([], start + (2 if buf.startswith(b"\r\n", start, end) else 1))
    blank = _BLANK_LINE.search(buf, start, end)
    stop = blank.start() + 1 if blank else end
    found = Head([], stop + (2 if buf.startswith(b"\r\n", stop, end) else 1) if blank else end)
    field_start, pos, pending = -1, start, False

    def close(at: int) -> None:
        nonlocal pending
        if field_start < 0:
            return
        before = len(found.fields)
        is_field = _field(buf[field_start:at], found.fields)
        if pending:   # the field a line of white space ended, for some readers: theirs too
            found.early_fields, pending = len(found.fields), False
        elif not is_field and found.early_body < 0:
            found.early_body, found.early_fields = field_start, before

    for number, line in enumerate(buf[start:stop].splitlines(True), 1):
        if line[0] in b" \t":
            if field_start >= 0 and not line.strip() and found.early_body < 0:
                found.early_body, pending = pos, True   # some readers take it for the blank line
        else:
            close(pos)
            field_start = pos
        pos += len(line)
        if number % _TICK_EVERY == 0:
            tick()
    close(stop)
    return found


def _field(raw: bytes, fields: Fields) -> bool:
    """Whether ``raw`` (a line and its continuation lines) is a field; a MIME one is kept."""
    match = _FIELD.match(raw)
    if not match:   # perhaps a name folded before its colon
        raw = _FOLD.sub(b"", raw)
        match = _FIELD.match(raw)
        if not match:
            return False
    name = match.group(1).lower()
    if name in _MIME_FIELDS:
        value = _FOLD.sub(b"", raw[match.end():]).rstrip(b"\r\n")
        fields.append((name.decode("ascii"), value.decode("utf-8", "surrogateescape").strip()))
    return True


def media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def boundary(content_type: str) -> Optional[bytes]:
    msg = Message()
    msg["Content-Type"] = content_type
    try:
        found = msg.get_boundary()
    except Exception:
        return None
    return found.encode("utf-8", "surrogateescape") if found else None


def guess_boundary(buf: bytes, start: int, end: int) -> Optional[bytes]:
    """A multipart that declares no boundary: the first line starting with "--" (a lenient reader's
    guess; a strict one shows the body as text, which hides nothing)."""
    pos = start
    while True:
        at = buf.find(b"--", pos, end)
        if at < 0:
            return None
        if at == start or buf[at - 1] in b"\r\n":
            eol = _EOL.search(buf, at, end)
            token = buf[at + 2:eol.start() if eol else end].rstrip(b" \t")
            token = token[:-2] if token.endswith(b"--") else token
            return token if 0 < len(token) <= _MAX_BOUNDARY else None
        pos = at + 2


def parts(buf: bytes, start: int, end: int, separator: bytes) -> Iterator[Tuple[int, int]]:
    """The ranges of a multipart body's parts. A missing close delimiter ends the last part at the
    end; delimiter lines after the close delimiter still start parts (a reader that misses the
    close would show them)."""
    opened = -1
    for line_start, line_end, closing in _delimiters(buf, start, end, b"--" + separator):
        if opened >= 0:
            yield opened, _before_eol(buf, opened, line_start)
        opened = -1 if closing else line_end
    if opened >= 0:
        yield opened, end


def _delimiters(buf: bytes, start: int, end: int, delimiter: bytes) -> Iterator[Tuple[int, int, bool]]:
    """Delimiter lines (RFC 2046 section 5.1.1): "--" boundary, "--" if closing, white space."""
    pos = start
    while True:
        at = buf.find(delimiter, pos, end)
        if at < 0:
            return
        pos = at + len(delimiter)
        if at > start and buf[at - 1] not in b"\r\n":
            continue
        closing = buf.startswith(b"--", pos, end)
        after = pos + 2 if closing else pos
        while after < end and buf[after] in b" \t":
            after += 1
        if after < end and buf[after] not in b"\r\n":
            continue   # "--boundary" followed by more text: another line
        after += 2 if buf.startswith(b"\r\n", after, end) else (1 if after < end else 0)
        yield at, after, closing


def _before_eol(buf: bytes, start: int, at: int) -> int:
    """The line break before a delimiter belongs to the delimiter."""
    if at - 2 >= start and buf[at - 2:at] == b"\r\n":
        return at - 2
    return at - 1 if at - 1 >= start and buf[at - 1] in b"\r\n" else at


# -- transfer encodings ----------------------------------------------------------------------------

def encoding(value: str) -> str:
    """A Content-Transfer-Encoding as a client takes it: comments, quotes, case and spaces ignored.
    "base64", "quoted-printable", "uuencode", or "" for everything shown as it is."""
    token = re.sub(r"\([^)]*\)|[\s\"']", "", value).lower()
    if "base64" in token:
        return "base64"
    if token.startswith("quoted"):
        return "quoted-printable"
    if token in ("x-uuencode", "uuencode", "x-uue", "uue"):
        return "uuencode"
    return ""


_B64_DROP = bytes(sorted(set(range(256)) - set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")))


def base64_lenient(body: bytes) -> bytes:
    """Base64 as readers decode it: anything outside the alphabet skipped, padding missing or in the
    middle (pieces encoded one after another) tolerated."""
    out = []
    for piece in body.translate(None, _B64_DROP).split(b"="):
        if len(piece) % 4 == 1:
            piece = piece[:-1]   # a lone sextet carries no whole byte
        if piece:
            out.append(binascii.a2b_base64(piece + b"=" * (-len(piece) % 4)))
    return b"".join(out)


def decode(body: bytes, transfer: str) -> bytes:
    if transfer == "base64":
        return base64_lenient(body)
    if transfer == "quoted-printable":
        return binascii.a2b_qp(body)
    return body


# -- file names ------------------------------------------------------------------------------------

# name= / filename= anywhere in a field: clients still read a name from a parameter list Python
# cannot split (no ";" before it, say).
_LOOSE_NAME = re.compile(r"(?:^|[;\s])(?:file)?name\*?(?:\d+\*?)?\s*=\s*(\"[^\"]*\"?|[^;\s]+)", re.I)


def names(content_types: List[str], dispositions: List[str]) -> List[str]:
    """Every name a client could give the part: Content-Disposition filename and Content-Type name
    (both, as they may differ, and of every copy of the fields), RFC 2231 and 2047 decoded."""
    found: List[str] = []
    for field, given in (("content-disposition", dispositions), ("content-type", content_types)):
        for value in given:
            msg = Message()
            msg[field] = value
            here: List[str] = []
            for param in ("filename", "name"):
                try:
                    raw = msg.get_param(param, header=field)
                    name = collapse_rfc2231_value(raw) if raw else ""
                except Exception:
                    continue
                if isinstance(name, str) and name:
                    here.append(decode_words(name))
            if not here:
                here = [decode_words(m.strip('"')) for m in _LOOSE_NAME.findall(value)]
            found.extend(n for n in here if n and n not in found)
    return found


def decode_words(name: str) -> str:
    if "=?" not in name:
        return name
    try:
        return str(make_header(decode_header(name)))
    except Exception:  # unknown charset, bad encoded word: the raw text is the best we have
        return name


# -- the count of parts, at a glance ----------------------------------------------------------------

_BOUNDARY_PARAM = re.compile(rb'boundary(\*?)(\d+\*?)?[ \t]*=[ \t]*(?:"([^"\r\n]*)"|([^\s;"]+))')
_DELIMITER_LINE = (re.compile(rb"\n--([^\r\n]*)"), re.compile(rb"\r--([^\r\n]*)"))
_FEW_BOUNDARIES = 8             # declared boundaries counted one by one (two scans each)
_MANY_LINES = 256 * 1024        # lines starting with "--" read one by one, at most


def count_parts(raw: bytes, limit: int) -> int:
    """How many MIME parts ``raw`` has, at most, without parsing it: its lines that start with "--"
    and a boundary declared anywhere in the message (each opens a part). When no more than
    ``limit`` lines start with "--" at all, that number. Linear: a few scans of the bytes, or one
    pass over at most 256 Ki such lines; a message with more of them and many boundaries counts as
    having that many parts."""
    lines = _lines_starting(raw, b"--")
    if lines <= limit:
        return lines
    exact, prefixes = set(), set()
    lowered = raw.lower()   # the parameter name in any case; the value as written (same offsets)
    for match in _BOUNDARY_PARAM.finditer(lowered):
        group = 3 if match.group(3) is not None else 4
        value = raw[match.start(group):match.end(group)]
        if match.group(1) and value.count(b"'") >= 2:   # RFC 2231: charset'language'%xx
            value = unquote_to_bytes(value.split(b"'", 2)[2])
        # A continuation (boundary*0=...) is only the start of a boundary: match lines by prefix.
        (prefixes if match.group(2) else exact).add(value.rstrip(b" \t"))
    exact.discard(b"")
    prefixes.discard(b"")
    if len(exact) + len(prefixes) <= _FEW_BOUNDARIES:
        # By prefix: a longer boundary that starts with this one counts too (close delimiters not).
        return sum(_lines_starting(raw, b"--" + b) - _lines_starting(raw, b"--" + b + b"--")
                   for b in exact | prefixes)
    if lines > _MANY_LINES:
        return lines
    tokens = Counter(_DELIMITER_LINE[0].findall(raw))
    tokens.update(_DELIMITER_LINE[1].findall(raw))
    if raw.startswith(b"--"):
        first = _EOL.search(raw)
        tokens[raw[2:first.start() if first else len(raw)]] += 1
    starts = tuple(prefixes)
    return sum(n for token, n in tokens.items()
               if token.rstrip(b" \t") in exact or (starts and token.startswith(starts)))


def _lines_starting(raw: bytes, prefix: bytes) -> int:
    return raw.count(b"\n" + prefix) + raw.count(b"\r" + prefix) + raw.startswith(prefix)
