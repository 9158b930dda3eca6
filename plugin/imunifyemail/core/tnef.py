"""The attachments inside a TNEF stream (Outlook's winmail.dat, application/ms-tnef): their names and
data, as Outlook would save them.

A small reader of the attributes and attachment properties of [MS-OXTNEF] (sections 2.1.3.x), made
for hostile input: every length is checked against the bytes that remain, a property block of an
unknown type is skipped, and nothing here raises. Checksums are not verified (Outlook ignores them
too). An embedded message's attachment data is its own TNEF stream: the caller sees it as a file that
is TNEF again, and nesting budgets apply.
"""
import struct
from dataclasses import dataclass, field
from typing import Callable, Iterator, List, Optional

SIGNATURE = struct.pack("<I", 0x223E9F78)

_LEVEL_ATTACHMENT = 0x02
# attribute ids (low word; the high word repeats the type)
_ATT_ATTACH_DATA, _ATT_ATTACH_TITLE, _ATT_ATTACH_REND_DATA, _ATT_ATTACHMENT = 0x800F, 0x8010, 0x9002, 0x9005
# attachment properties
_PR_DISPLAY_NAME, _PR_ATTACH_DATA, _PR_ATTACH_EXTENSION = 0x3001, 0x3701, 0x3703
_PR_ATTACH_FILENAME, _PR_ATTACH_LONG_FILENAME = 0x3704, 0x3707
_NAME_PROPERTIES = (_PR_ATTACH_LONG_FILENAME, _PR_ATTACH_FILENAME, _PR_DISPLAY_NAME, _PR_ATTACH_EXTENSION)
# property types: fixed sizes as stored (padded to 4), and the variable ones
_FIXED = {0x0002: 4, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000A: 4, 0x000B: 4,
          0x0014: 8, 0x0040: 8, 0x0048: 16}
_OBJECT, _STRING8, _UNICODE, _BINARY = 0x000D, 0x001E, 0x001F, 0x0102
_MULTI = 0x1000
_MAX_PROPERTIES = 10_000   # per block: Outlook writes a few dozen
_TICK_EVERY = 1024          # attributes read between two looks at the clock


@dataclass
class Attachment:
    names: List[str] = field(default_factory=list)
    data: bytes = b""


def is_tnef(data: bytes) -> bool:
    return data[:4] == SIGNATURE


def attachments(data: bytes, tick: Callable[[], None] = lambda: None) -> Iterator[Attachment]:
    if not is_tnef(data):
        return
    pos, current, count = 6, None, 0   # signature, legacy key
    while pos + 9 <= len(data):
        level, attribute, length = struct.unpack_from("<BII", data, pos)
        body = data[pos + 9:pos + 9 + length]
        if len(body) < length:
            break   # truncated: what was read so far stands
        pos += 9 + length + 2   # + checksum
        count += 1
        if count % _TICK_EVERY == 0:
            tick()
        if level != _LEVEL_ATTACHMENT:
            continue
        attribute &= 0xFFFF
        if attribute == _ATT_ATTACH_REND_DATA or current is None:
            if current is not None:
                yield current
            current = Attachment()
        if attribute == _ATT_ATTACH_TITLE:
            _add_name(current, body.split(b"\0", 1)[0].decode("cp1252", "replace"))
        elif attribute == _ATT_ATTACH_DATA:
            current.data = body
        elif attribute == _ATT_ATTACHMENT:
            _properties(body, current)
    if current is not None:
        yield current


def _add_name(attachment: Attachment, name: str) -> None:
    if name and name not in attachment.names:
        attachment.names.append(name)


def _properties(block: bytes, attachment: Attachment) -> None:
    """The attachment's MAPI properties: its names, and its data when attAttachData is absent."""
    if len(block) < 4:
        return
    (count,) = struct.unpack_from("<I", block, 0)
    pos = 4
    for _ in range(min(count, _MAX_PROPERTIES)):
        if pos + 4 > len(block):
            return
        kind, ident = struct.unpack_from("<HH", block, pos)
        pos += 4
        if ident >= 0x8000:   # a named property: GUID, then a number or a name
            if pos + 24 > len(block):
                return
            name_kind, size = struct.unpack_from("<II", block, pos + 16)
            pos += 24 + (_padded(size) if name_kind == 1 else 0)
        values = _values(block, pos, kind)
        if values is None:
            return   # a type of unknown size: the rest of the block cannot be found
        pos, found = values
        if ident in _NAME_PROPERTIES and kind & ~_MULTI in (_STRING8, _UNICODE):
            for value in found:
                _add_name(attachment, _text(value, kind & ~_MULTI))
        elif ident == _PR_ATTACH_DATA and found and not attachment.data:
            # PT_OBJECT: an interface id, then the object (an embedded message's own TNEF stream)
            attachment.data = found[0][16:] if kind & ~_MULTI == _OBJECT else found[0]


def _values(block: bytes, pos: int, kind: int) -> Optional[tuple]:
    base, multi = kind & ~_MULTI, kind & _MULTI
    if base in _FIXED:
        if not multi:
            return pos + _FIXED[base], []
        if pos + 4 > len(block):
            return None
        (n,) = struct.unpack_from("<I", block, pos)
        return pos + 4 + n * _FIXED[base], []
    if base not in (_OBJECT, _STRING8, _UNICODE, _BINARY) or pos + 4 > len(block):
        return None
    (n,) = struct.unpack_from("<I", block, pos)
    pos += 4
    found: List[bytes] = []
    for _ in range(min(n, _MAX_PROPERTIES)):
        if pos + 4 > len(block):
            return None
        (size,) = struct.unpack_from("<I", block, pos)
        found.append(block[pos + 4:pos + 4 + size])
        pos += 4 + _padded(size)
    return pos, found


def _padded(n: int) -> int:
    return (n + 3) & ~3


def _text(value: bytes, kind: int) -> str:
    if kind == _UNICODE:
        return value.decode("utf-16-le", "replace").split("\0", 1)[0]
    return value.split(b"\0", 1)[0].decode("cp1252", "replace")
