"""The member names of a 7z archive, and whether it is encrypted, read from its header alone.

Layout per 7-Zip's DOC/7zFormat.txt: a 32-byte signature header points at the header at the end of
the archive; that header is plain (kHeader) or itself packed (kEncodedHeader: usually LZMA, or AES
when the archive was made with ``-mhe``, which hides the names). The data of the members is never
decompressed; a packed header only with the stdlib's lzma, its output bounded by the caller.
"""
import lzma
import struct
from dataclasses import dataclass, field
from typing import Callable, List, Tuple

SIGNATURE = b"7z\xbc\xaf\x27\x1c"
_AES = b"\x06\xf1\x07\x01"      # 7zAES coder id
_LZMA = b"\x03\x01\x01"
_LZMA2 = b"\x21"

_END, _HEADER, _ARCHIVE_PROPERTIES, _ADDITIONAL_STREAMS, _MAIN_STREAMS, _FILES_INFO = range(6)
_PACK_INFO, _UNPACK_INFO, _SUBSTREAMS_INFO, _SIZE, _CRC, _FOLDER, _CODERS_UNPACK_SIZE = range(6, 13)
_NUM_UNPACK_STREAM, _NAME, _ENCODED_HEADER = 0x0D, 0x11, 0x17
_TICK_EVERY = 65536     # numbers read between two looks at the clock


@dataclass
class Listing:
    names: List[str] = field(default_factory=list)
    encrypted: bool = False
    unread: str = ""    # why the names of a whole archive were not read, for an administrator
    decoded: int = 0    # bytes decompressed to read them


@dataclass
class _Folder:
    coders: List[Tuple[bytes, bytes]]   # (coder id, properties)
    outputs: int
    unpack_sizes: List[int] = field(default_factory=list)
    crc_defined: bool = False


class _Bad(Exception):
    pass


class _Reader:
    def __init__(self, data: bytes, tick: Callable[[], None]):
        self.data = data
        self.pos = 0
        self.tick = tick
        self.numbers = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise _Bad("truncated")
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _Bad("truncated")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def number(self) -> int:
        """7z's NUMBER: the leading one bits of the first byte say how many bytes follow."""
        self.numbers += 1
        if self.numbers % _TICK_EVERY == 0:
            self.tick()
        first, mask, value = self.byte(), 0x80, 0
        for i in range(8):
            if not first & mask:
                return value | ((first & (mask - 1)) << (8 * i))
            value |= self.byte() << (8 * i)
            mask >>= 1
        return value

    def count(self) -> int:
        """A NUMBER that sizes a loop: each item takes at least a byte, so it cannot exceed the header."""
        n = self.number()
        if n > len(self.data):
            raise _Bad("count")
        return n


def listing(data: bytes, limit: int, tick: Callable[[], None] = lambda: None) -> Listing:
    """``limit``: how many bytes a packed header may decompress to; ``tick``: called now and then
    while a big header is read (it may raise to stop)."""
    if len(data) < 32 or data[:6] != SIGNATURE:
        return Listing()
    offset, size = struct.unpack_from("<QQ", data, 12)
    if size == 0 or 32 + offset + size > len(data):
        return Listing()   # empty, or truncated: an archiver cannot list it either
    try:
        reader = _Reader(data[32 + offset:32 + offset + size], tick)
        kind = reader.byte()
        if kind == _HEADER:
            return _header(reader)
        if kind != _ENCODED_HEADER:
            return Listing()
        pack_pos, pack_sizes, folders = _streams(reader)
        if _encrypted(folders):
            return Listing(encrypted=True)
        if len(folders) != 1 or not pack_sizes or not folders[0].unpack_sizes:
            return Listing()
        unpack = folders[0].unpack_sizes[-1]
        if unpack > limit:
            return Listing(unread="a 7z archive whose file list unpacks to more than %d bytes" % limit)
        packed = data[32 + pack_pos:32 + pack_pos + pack_sizes[0]]
        plain = _unpack(folders[0], packed, unpack)
        if not plain or plain[0] != _HEADER:
            return Listing(decoded=len(plain))
        reader = _Reader(plain, tick)
        reader.byte()
        found = _header(reader)
        found.decoded = len(plain)
        return found
    except (_Bad, lzma.LZMAError, ValueError, MemoryError):
        return Listing()


def _unpack(folder: _Folder, packed: bytes, unpack: int) -> bytes:
    if len(folder.coders) != 1:
        raise _Bad("header coders")
    coder, props = folder.coders[0]
    # The dictionary need not exceed the output: capping it keeps a hostile dictionary size from
    # allocating gigabytes (liblzma allocates it up front, and FORMAT_RAW takes no memlimit).
    if coder == _LZMA and len(props) == 5:
        d = props[0]
        dictionary = struct.unpack_from("<I", props, 1)[0]
        spec = {"id": lzma.FILTER_LZMA1, "lc": d % 9, "lp": d // 9 % 5, "pb": d // 45}
    elif coder == _LZMA2 and len(props) == 1 and props[0] <= 40:
        dictionary = (2 | (props[0] & 1)) << (props[0] // 2 + 11) if props[0] < 40 else 0xFFFFFFFF
        spec = {"id": lzma.FILTER_LZMA2}
    else:
        raise _Bad("header coder")
    spec["dict_size"] = max(4096, min(dictionary, unpack))
    return lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=[spec]).decompress(packed, max_length=unpack)


def _encrypted(folders: List[_Folder]) -> bool:
    return any(coder == _AES for folder in folders for coder, _ in folder.coders)


def _header(r: _Reader) -> Listing:
    found = Listing()
    prop = r.byte()
    if prop == _ARCHIVE_PROPERTIES:
        while r.number():
            r.take(r.number())
        prop = r.byte()
    for streams in (_ADDITIONAL_STREAMS, _MAIN_STREAMS):
        if prop == streams:
            found.encrypted |= _encrypted(_streams(r)[2])
            prop = r.byte()
    if prop == _FILES_INFO:
        files = r.count()
        while True:
            kind = r.number()
            if kind == _END:
                break
            body = r.take(r.number())
            if kind == _NAME and body[:1] == b"\0":   # not "external": the names are right here
                found.names = body[1:].decode("utf-16-le", "replace").split("\0")[:files]
            elif kind == _NAME:
                found.unread = "a 7z archive whose file names are stored apart"
    return found


def _streams(r: _Reader) -> Tuple[int, List[int], List[_Folder]]:
    pack_pos, pack_sizes, folders = 0, [], []   # type: int, List[int], List[_Folder]
    while True:
        prop = r.byte()
        if prop == _END:
            return pack_pos, pack_sizes, folders
        if prop == _PACK_INFO:
            pack_pos, pack_sizes = _pack_info(r)
        elif prop == _UNPACK_INFO:
            folders = _unpack_info(r)
        elif prop == _SUBSTREAMS_INFO:
            _substreams(r, folders)
        else:
            raise _Bad("streams property %d" % prop)


def _pack_info(r: _Reader) -> Tuple[int, List[int]]:
    pack_pos, streams, sizes = r.number(), r.count(), []   # type: int, int, List[int]
    while True:
        prop = r.byte()
        if prop == _END:
            return pack_pos, sizes
        if prop == _SIZE:
            sizes = [r.number() for _ in range(streams)]
        elif prop == _CRC:
            _digests(r, streams)
        else:
            raise _Bad("pack info property %d" % prop)


def _unpack_info(r: _Reader) -> List[_Folder]:
    if r.byte() != _FOLDER:
        raise _Bad("folders")
    count = r.count()
    if r.byte() != 0:
        raise _Bad("external folders")
    folders = [_folder(r) for _ in range(count)]
    if r.byte() != _CODERS_UNPACK_SIZE:
        raise _Bad("unpack sizes")
    for folder in folders:
        folder.unpack_sizes = [r.number() for _ in range(folder.outputs)]
    prop = r.byte()
    if prop == _CRC:
        for folder, defined in zip(folders, _digests(r, count)):
            folder.crc_defined = defined
        prop = r.byte()
    if prop != _END:
        raise _Bad("unpack info property %d" % prop)
    return folders


def _folder(r: _Reader) -> _Folder:
    coders, inputs, outputs = [], 0, 0
    for _ in range(r.count()):
        flags = r.byte()
        coder = r.take(flags & 0x0F)
        ins, outs = (r.count(), r.count()) if flags & 0x10 else (1, 1)
        props = r.take(r.number()) if flags & 0x20 else b""
        coders.append((coder, props))
        inputs, outputs = inputs + ins, outputs + outs
    for _ in range(outputs - 1):   # bind pairs
        r.number()
        r.number()
    packed = inputs - (outputs - 1)
    if packed > 1:
        for _ in range(packed):
            r.number()
    return _Folder(coders, outputs)


def _substreams(r: _Reader, folders: List[_Folder]) -> None:
    counts = [1] * len(folders)
    prop = r.byte()
    if prop == _NUM_UNPACK_STREAM:
        counts = [r.count() for _ in folders]
        prop = r.byte()
    if prop == _SIZE:
        for _ in range(sum(max(0, n - 1) for n in counts)):
            r.number()
        prop = r.byte()
    unknown = sum(n for folder, n in zip(folders, counts) if not (n == 1 and folder.crc_defined))
    while prop != _END:
        if prop == _CRC:
            _digests(r, unknown)
        else:
            r.take(r.number())
        prop = r.byte()


def _digests(r: _Reader, n: int) -> List[bool]:
    if n > 8 * len(r.data):
        raise _Bad("digests")
    if r.byte():
        defined = [True] * n
    else:
        bits = r.take((n + 7) // 8)
        defined = [bool(bits[i >> 3] & (0x80 >> (i & 7))) for i in range(n)]
    r.take(4 * sum(defined))
    return defined
