"""Small 7z, RAR and TNEF files built with the stdlib, byte by byte after their format notes, for the
winexec tests. Checked once by hand against real readers (7-Zip 26 lists the 7z ones, libarchive's
bsdtar the RAR ones, tnef 1.4 the TNEF ones); the tests do not need those tools."""
import lzma
import struct
import zlib
from typing import Dict, Sequence, Tuple

AES_7Z = b"\x06\xf1\x07\x01"
LZMA_7Z = b"\x03\x01\x01"
COPY_7Z = b"\x00"


# -- 7z (DOC/7zFormat.txt) -------------------------------------------------------------------------

def _number(n: int) -> bytes:
    """7z NUMBER; only the forms these tests need (up to 2**14)."""
    if n < 0x80:
        return bytes([n])
    assert n < 0x4000
    return bytes([0x80 | (n >> 8), n & 0xFF])


def _coder(coder_id: bytes, props: bytes = b"") -> bytes:
    return bytes([len(coder_id) | (0x20 if props else 0)]) + coder_id + (_number(len(props)) + props if props else b"")


def _lzma_props() -> Tuple[bytes, dict]:
    lc, lp, pb, dictionary = 3, 0, 2, 1 << 16
    spec = {"id": lzma.FILTER_LZMA1, "dict_size": dictionary, "lc": lc, "lp": lp, "pb": pb}
    return bytes([(pb * 5 + lp) * 9 + lc]) + struct.pack("<I", dictionary), spec


def _streams(pack_pos: int, packed: int, folder: bytes, unpack_sizes: Sequence[int], files: int = 0) -> bytes:
    out = b"\x06" + _number(pack_pos) + b"\x01\x09" + _number(packed) + b"\x00"
    out += b"\x07\x0b\x01\x00" + folder + b"\x0c" + b"".join(_number(n) for n in unpack_sizes) + b"\x00"
    if files:
        out += b"\x08\x0d" + _number(files) + b"\x09" + b"".join(_number(1) for _ in range(files - 1)) + b"\x00"
    return out + b"\x00"


def sevenzip(names: Sequence[str], header: str = "plain", encrypted_data: bool = False) -> bytes:
    """Each member holds b"x", stored (or behind an AES coder). ``header``: "plain" (kHeader),
    "lzma" (kEncodedHeader packed by the stdlib's LZMA) or "aes" (names encrypted, as 7z -mhe)."""
    data = b"x" * len(names)
    if encrypted_data:   # AES's output feeds the copy coder: two coders, one bind pair
        folder = b"\x02" + _coder(COPY_7Z) + _coder(AES_7Z, b"\x01" * 10) + _number(0) + _number(1)
        unpack = [len(data), len(data)]
    else:
        folder = b"\x01" + _coder(COPY_7Z)
        unpack = [len(data)]
    names_blob = b"\0" + b"".join(n.encode("utf-16-le") + b"\0\0" for n in names)
    plain = (b"\x01\x04" + _streams(0, len(data), folder, unpack, len(names))
             + b"\x05" + _number(len(names)) + b"\x11" + _number(len(names_blob)) + names_blob + b"\x00\x00")
    body = data
    if header == "plain":
        record = plain
    else:
        props, spec = _lzma_props()
        packed = lzma.compress(plain, format=lzma.FORMAT_RAW, filters=[spec])
        if header == "lzma":
            folder = b"\x01" + _coder(LZMA_7Z, props)
            unpack = [len(plain)]
        else:   # "aes": what 7-Zip writes with -mhe: AES, then LZMA; content unreadable here
            folder = b"\x02" + _coder(LZMA_7Z, props) + _coder(AES_7Z, b"\x01" * 10) + _number(0) + _number(1)
            unpack = [len(plain), len(packed)]
        record = b"\x17" + _streams(len(body), len(packed), folder, unpack)
        body += packed
    start = struct.pack("<QQI", len(body), len(record), zlib.crc32(record))
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + struct.pack("<I", zlib.crc32(start)) + start + body + record


# -- RAR 4 and RAR 5 (RARLAB technical notes) ------------------------------------------------------

def _rar4_block(kind: int, flags: int, fields: bytes) -> bytes:
    body = struct.pack("<BHH", kind, flags, 7 + len(fields)) + fields
    return struct.pack("<H", zlib.crc32(body) & 0xFFFF) + body


def rar4(members: Sequence[Tuple[bytes, bytes]], encrypted_members: bool = False,
         encrypted_headers: bool = False, unicode: bool = False) -> bytes:
    """Stored members: (name as written in the header, data)."""
    out = b"Rar!\x1a\x07\x00" + _rar4_block(0x73, 0x0080 if encrypted_headers else 0, b"\0" * 6)
    for name, data in members:
        flags = 0x8000 | (0x0004 if encrypted_members else 0) | (0x0200 if unicode else 0)
        fields = struct.pack("<IIBIIBBHI", len(data), len(data), 2, zlib.crc32(data), 0x21000000, 29, 0x30,
                             len(name), 0x20) + name
        out += _rar4_block(0x74, flags, fields) + data
    return out + _rar4_block(0x7B, 0x4000, b"")


def _vint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _rar5_block(header: bytes) -> bytes:
    sized = _vint(len(header)) + header
    return struct.pack("<I", zlib.crc32(sized)) + sized


def rar5(members: Sequence[Tuple[str, bytes]], encrypted_members: bool = False,
         encrypted_headers: bool = False) -> bytes:
    out = b"Rar!\x1a\x07\x01\x00"
    if encrypted_headers:   # archive encryption header: AES-256, then everything is ciphertext
        out += _rar5_block(_vint(4) + _vint(0) + _vint(0) + _vint(0) + bytes([15]) + b"\x11" * 16)
        return out + b"\x5a" * 64
    out += _rar5_block(_vint(1) + _vint(0) + _vint(0))
    for name, data in members:
        raw = name.encode("utf-8")
        extra = b""
        if encrypted_members:   # file encryption record: version, flags, KDF count, salt, IV
            record = _vint(1) + _vint(0) + _vint(0) + bytes([15]) + b"\x22" * 16 + b"\x33" * 16
            extra = _vint(len(record)) + record
        specific = (_vint(0x0004) + _vint(len(data)) + _vint(0x20) + struct.pack("<I", zlib.crc32(data))
                    + _vint(0) + _vint(0) + _vint(len(raw)) + raw)
        flags = 0x0002 | (0x0001 if extra else 0)
        header = _vint(2) + _vint(flags) + (_vint(len(extra)) if extra else b"") + _vint(len(data)) + specific + extra
        out += _rar5_block(header) + data
    return out + _rar5_block(_vint(5) + _vint(0) + _vint(0))


# -- TNEF ([MS-OXTNEF]) ----------------------------------------------------------------------------

def _attribute(level: int, ident: int, data: bytes) -> bytes:
    return struct.pack("<BII", level, ident, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def tnef_properties(props: Dict[Tuple[int, int], bytes]) -> bytes:
    """{(property type, property id): value}; variable-size types only (string, binary, object)."""
    out = struct.pack("<I", len(props))
    for (kind, ident), value in props.items():
        out += struct.pack("<HHII", kind, ident, 1, len(value)) + _padded(value)
    return out


def tnef(attachments: Sequence[dict]) -> bytes:
    """Each attachment: {"title": bytes, "data": bytes, "props": bytes} (any of them)."""
    out = struct.pack("<IH", 0x223E9F78, 0x0102)
    out += _attribute(1, 0x00089006, struct.pack("<I", 0x00010000))        # attTnefVersion
    out += _attribute(1, 0x00078008, b"IPM.Microsoft Mail.Note\0")        # attMessageClass
    for attachment in attachments:
        out += _attribute(2, 0x00069002, struct.pack("<HIHHH", 1, 0xFFFFFFFF, 0, 0, 0))  # attAttachRendData
        if "title" in attachment:
            out += _attribute(2, 0x00018010, attachment["title"] + b"\0")   # attAttachTitle
        if "data" in attachment:
            out += _attribute(2, 0x0006800F, attachment["data"])            # attAttachData
        if "props" in attachment:
            out += _attribute(2, 0x00069005, attachment["props"])           # attAttachment
    return out


PT_UNICODE, PT_STRING8, PT_BINARY, PT_OBJECT = 0x001F, 0x001E, 0x0102, 0x000D
PR_ATTACH_LONG_FILENAME, PR_ATTACH_DATA = 0x3707, 0x3701
IID_IMESSAGE = bytes.fromhex("0703020000000000c000000000000046")
