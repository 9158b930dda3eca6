"""Byte-exact header surgery on raw messages.

The quarantine keeps the exact bytes received, so what a release sends or a
page shows — without a sender's ``X-ImunifyEmail-*`` fields, with the filter's
own — must not re-serialise the message through ``email`` (that would rewrap
lines and touch the body).
"""
import re
from typing import Dict, Iterable, List, Optional, Tuple

_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:")


def split(raw: bytes) -> Tuple[List[bytes], bytes]:
    """Split into header fields (each with its continuation lines and line
    ending) and the rest (blank separator line + body, as received)."""
    fields: List[bytes] = []
    pos = 0
    n = len(raw)
    while pos < n:
        end = raw.find(b"\n", pos)
        line_end = n if end < 0 else end + 1
        line = raw[pos:line_end]
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        elif _FIELD_NAME.match(line):
            fields.append(line)
        else:
            # Not a header line (malformed message): the body starts here.
            break
        pos = line_end
    return fields, raw[pos:]


def field_name(field: bytes) -> str:
    m = _FIELD_NAME.match(field)
    return m.group(1).decode("ascii").lower() if m else ""


_FOLDING = re.compile(r"\r?\n[ \t]")


def field_value(field: bytes) -> str:
    value = field.split(b":", 1)[1] if b":" in field else b""
    text = value.decode("utf-8", "replace").strip()
    return _FOLDING.sub(" ", text) if "\n" in text else text


class Fields:
    """A message's header block, split once and indexed by lower-case name."""

    def __init__(self, raw: bytes):
        self.raw = raw
        self.fields, _ = split(raw)
        self._index: Optional[Dict[str, List[bytes]]] = None

    def values(self, name: str) -> List[str]:
        if self._index is None:
            index: Dict[str, List[bytes]] = {}
            for f in self.fields:
                index.setdefault(field_name(f), []).append(f)
            self._index = index
        return [field_value(f) for f in self._index.get(name.lower(), ())]


def values(raw: bytes, name: str) -> List[str]:
    return Fields(raw).values(name)


def remove(raw: bytes, names: Iterable[str] = (), prefixes: Iterable[str] = ()) -> bytes:
    """Drop every field whose name is in ``names`` or starts with a prefix
    (case-insensitive); everything else stays byte for byte."""
    drop = {n.lower() for n in names}
    pre = tuple(p.lower() for p in prefixes)
    fields, rest = split(raw)
    kept = [f for f in fields
            if not (field_name(f) in drop or (pre and field_name(f).startswith(pre)))]
    if len(kept) == len(fields):
        return raw
    return b"".join(kept) + rest


OURS = "X-ImunifyEmail-"   # the fields only the filter writes (Exim's router adds them to passed mail)


def without_ours(raw: bytes) -> bytes:
    """The message without any ``X-ImunifyEmail-*`` field: in mail as received, each is a sender's
    (a forged verdict). Everything else stays byte for byte."""
    return remove(raw, prefixes=(OURS,))


def append(raw: bytes, new_fields: Iterable[Tuple[str, str]]) -> bytes:
    """Add fields at the end of the header block (where Exim's ``headers_add`` puts them), using the
    message's own line ending; the rest stays byte for byte."""
    fields, rest = split(raw)
    eol = b"\r\n" if raw[:raw.find(b"\n") + 1].endswith(b"\r\n") else b"\n"
    block = b"".join(f"{name}: {value}".encode("utf-8") + eol for name, value in new_fields)
    if fields and not fields[-1].endswith(b"\n"):   # a header block cut short, without its line end
        block = eol + block
    return b"".join(fields) + block + (rest if rest else eol)
