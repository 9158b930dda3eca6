"""The member names of a RAR archive, and whether it is encrypted, read from its block headers alone.

Layouts per RARLAB's technical notes: RAR 1.5-4.x (``Rar!\\x1a\\x07\\x00``; "block headers encrypted"
in the main header hides the names, "file encrypted" marks a member) and RAR 5
(``Rar!\\x1a\\x07\\x01\\x00``; an archive encryption header hides the names, a file encryption extra
record marks a member). The packed data is skipped, never decompressed; CRCs are not checked (WinRAR
warns and carries on).
"""
import struct
from typing import Callable, List, Tuple

from .sevenzip import Listing

SIGNATURE4 = b"Rar!\x1a\x07\x00"
SIGNATURE5 = b"Rar!\x1a\x07\x01\x00"

# RAR 4 block types and flags
_MAIN, _FILE, _END4 = 0x73, 0x74, 0x7B
_MAIN_HEADERS_ENCRYPTED = 0x0080
_FILE_ENCRYPTED, _FILE_LARGE, _FILE_UNICODE, _LONG_BLOCK = 0x0004, 0x0100, 0x0200, 0x8000
# RAR 5 header types and flags
_FILE5, _ENCRYPTION5, _END5 = 2, 4, 5
_HAS_EXTRA, _HAS_DATA = 0x0001, 0x0002
_TIME_PRESENT, _CRC_PRESENT = 0x0002, 0x0004
_FILE_ENCRYPTION_RECORD = 0x01
_TICK_EVERY = 4096      # blocks read between two looks at the clock


def listing(data: bytes, tick: Callable[[], None] = lambda: None) -> Listing:
    """(``Listing`` is shared with 7z: names, encrypted.) ``tick``: called now and then while many
    blocks are read (it may raise to stop)."""
    found = Listing()
    try:
        if data[:8] == SIGNATURE5:
            _rar5(data, found, tick)
        elif data[:7] == SIGNATURE4:
            _rar4(data, found, tick)
    except (IndexError, struct.error, ValueError):
        pass   # truncated or damaged here: the names before it were read, as WinRAR lists them
    return found


def _rar4(data: bytes, found: Listing, tick: Callable[[], None]) -> None:
    pos, blocks = len(SIGNATURE4), 0
    while pos + 7 <= len(data):
        blocks += 1
        if blocks % _TICK_EVERY == 0:
            tick()
        kind, flags, size = struct.unpack_from("<BHH", data, pos + 2)
        if size < 7:
            break
        extra = 0
        if kind == _MAIN and flags & _MAIN_HEADERS_ENCRYPTED:
            found.encrypted = True
            break
        if kind == _FILE:
            packed, name_size = struct.unpack_from("<I", data, pos + 7)[0], struct.unpack_from("<H", data, pos + 26)[0]
            name_at = pos + 32
            if flags & _FILE_LARGE:
                packed |= struct.unpack_from("<I", data, pos + 32)[0] << 32
                name_at = pos + 40
            name = data[name_at:name_at + name_size]
            found.names.append(_name4(name, flags & _FILE_UNICODE))
            found.encrypted |= bool(flags & _FILE_ENCRYPTED)
            extra = packed
        elif flags & _LONG_BLOCK:
            extra = struct.unpack_from("<I", data, pos + 7)[0]
        if kind == _END4:
            break
        pos += size + extra


def _name4(raw: bytes, unicode: int) -> str:
    """A RAR 4 name: OEM/ANSI bytes, or with the unicode flag those bytes, a NUL and RAR's own
    compact encoding of the UTF-16 name (the one WinRAR shows)."""
    plain, _, encoded = raw.partition(b"\0")
    if unicode and encoded:
        try:
            return _decode_unicode(plain, encoded)
        except IndexError:
            pass
    return (raw if unicode and not encoded else plain).decode("utf-8" if unicode else "cp437", "replace")


def _decode_unicode(plain: bytes, encoded: bytes) -> str:
    high, pos, bits, flags = encoded[0], 1, 0, 0
    chars: List[int] = []
    while pos < len(encoded):
        if bits == 0:
            flags, pos, bits = encoded[pos], pos + 1, 8
        bits -= 2
        mode = (flags >> bits) & 3
        if mode == 0:
            chars.append(encoded[pos])
            pos += 1
        elif mode == 1:
            chars.append(encoded[pos] | high << 8)
            pos += 1
        elif mode == 2:
            chars.append(encoded[pos] | encoded[pos + 1] << 8)
            pos += 2
        else:   # a run taken from the plain name, optionally shifted into the high byte's page
            length = encoded[pos]
            pos += 1
            correction, page = (encoded[pos], high) if length & 0x80 else (0, 0)
            pos += 1 if length & 0x80 else 0
            for _ in range((length & 0x7F) + 2):
                chars.append(((plain[len(chars)] + correction) & 0xFF) | page << 8)
    return "".join(map(chr, chars))


def _vint(data: bytes, pos: int) -> Tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80 or shift > 63:
            return value, pos
        shift += 7


def _rar5(data: bytes, found: Listing, tick: Callable[[], None]) -> None:
    pos, blocks = len(SIGNATURE5), 0
    while pos + 4 < len(data):
        blocks += 1
        if blocks % _TICK_EVERY == 0:
            tick()
        size, start = _vint(data, pos + 4)
        end = start + size
        if size == 0 or end > len(data):
            break
        kind, p = _vint(data, start)
        flags, p = _vint(data, p)
        extra_size, data_size = 0, 0
        if flags & _HAS_EXTRA:
            extra_size, p = _vint(data, p)
        if flags & _HAS_DATA:
            data_size, p = _vint(data, p)
        if kind == _ENCRYPTION5:
            found.encrypted = True
            break
        if kind == _FILE5:
            name = _file5(data, p, end)
            found.names.append(name)
            found.encrypted |= _encrypted5(data, end - extra_size, end)
        if kind == _END5:
            break
        pos = end + data_size


def _file5(data: bytes, p: int, end: int) -> str:
    file_flags, p = _vint(data, p)
    _, p = _vint(data, p)           # unpacked size
    _, p = _vint(data, p)           # attributes
    p += 4 if file_flags & _TIME_PRESENT else 0
    p += 4 if file_flags & _CRC_PRESENT else 0
    _, p = _vint(data, p)           # compression information
    _, p = _vint(data, p)           # host OS
    length, p = _vint(data, p)
    if p + length > end:
        raise ValueError("name beyond its header")
    return data[p:p + length].decode("utf-8", "replace")


def _encrypted5(data: bytes, p: int, end: int) -> bool:
    while p < end:
        size, after_size = _vint(data, p)
        kind, _ = _vint(data, after_size)
        if kind == _FILE_ENCRYPTION_RECORD:
            return True
        if size == 0:
            break
        p = after_size + size
    return False
