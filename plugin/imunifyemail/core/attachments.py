"""What one attached file carries: a Windows program (PE header), or a container whose members are
checked in turn: zip (names and content), 7z and RAR (names: their data is never decompressed),
TNEF's winmail.dat (names and content). An encrypted archive cannot be looked into, yet can carry a
program: that is a finding of its own.

Everything here reads untrusted bytes: a container that cannot be read is skipped (nothing raises
but ``OutOfBudget``), and every read is charged to the inspection's budgets.
"""
import io
import struct
import zipfile
from typing import Sequence

from . import rar, sevenzip, tnef
from .budgets import OutOfBudget, Tally, size_text
from .executables import executable_extension, extension, is_pe

ENCRYPTED = "encrypted archive, cannot be inspected"
ZIP_MAGIC = b"PK\x03\x04"
_ZIP_END = b"PK\x05\x06"
_ZIP_END_SPAN = 22 + 65535      # the end-of-central-directory record, comment included, ends a zip
MEMBER_COST = 4096              # one deflate read: what opening a zip member costs at least
# Names that 7-Zip, WinRAR and Windows open as an archive whatever the content starts with.
_ARCHIVE_EXTENSIONS = frozenset({"zip", "7z", "rar", "zipx"})
_TICK_EVERY = 256               # member names checked between two looks at the clock


def check_name(location: str, name: str, tally: Tally) -> None:
    ext = executable_extension(name)
    if ext:
        tally.found(location, "extension ." + ext)


def inspect_file(data: bytes, names: Sequence[str], where: str, tally: Tally, nesting: int = 0) -> None:
    """``data``: a whole attached file, or as much of an archive member as was read; ``names``: what
    the file is called (the names themselves are checked by the caller); ``nesting``: how many
    containers hold it."""
    if is_pe(data):
        tally.found(where, "PE header")
        return
    kind = _container(data, names)
    if not kind:
        return
    if nesting > tally.budgets.archive_nesting:
        tally.short("archives nested deeper than %d" % tally.budgets.archive_nesting)
        return
    tally.tick()
    if kind == "7z":
        limit = min(tally.budgets.nested_archive, max(tally.read_left, 0))
        _listed(sevenzip.listing(data, limit, tally.tick), where, tally)
    elif kind == "rar":
        _listed(rar.listing(data, tally.tick), where, tally)
    elif kind == "tnef":
        _tnef(data, where, tally, nesting)
    else:
        _zip(data, where, tally, nesting)


def _container(data: bytes, names: Sequence[str]) -> str:
    if data[:6] == sevenzip.SIGNATURE:
        return "7z"
    if data[:7] in (rar.SIGNATURE4, rar.SIGNATURE5[:7]):
        return "rar"
    if tnef.is_tnef(data):
        return "tnef"
    # A zip is read from its end: content before it (a picture, say) does not stop an archiver.
    if (data[:4] == ZIP_MAGIC or any(extension(n) in _ARCHIVE_EXTENSIONS for n in names)
            or data.rfind(_ZIP_END, max(0, len(data) - _ZIP_END_SPAN)) >= 0):
        return "zip"
    return ""


def _listed(listing: "sevenzip.Listing", where: str, tally: Tally) -> None:
    tally.spent(listing.decoded)
    for number, name in enumerate(listing.names):
        if number % _TICK_EVERY == 0:
            tally.tick()
        check_name("%s/%s" % (where, name), name, tally)
    if listing.encrypted:
        tally.found(where, ENCRYPTED)
    if listing.unread:
        tally.short(listing.unread)


def _tnef(data: bytes, where: str, tally: Tally, nesting: int) -> None:
    for number, attachment in enumerate(tnef.attachments(data, tally.tick), 1):
        tally.tick()
        location = "%s/%s" % (where, attachment.names[0] if attachment.names else "attachment %d" % number)
        for name in attachment.names:
            check_name("%s/%s" % (where, name), name, tally)
        inspect_file(attachment.data, attachment.names, location, tally, nesting + 1)


def _zip(data: bytes, where: str, tally: Tally, nesting: int) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except Exception:
        return  # corrupt, truncated or not a zip at all: nothing more to see inside
    budgets = tally.budgets
    encrypted = False
    with archive:
        for index, info in enumerate(members):
            if index % _TICK_EVERY == 0:
                tally.tick()
            location = "%s/%s" % (where, info.filename)
            check_name(location, info.filename, tally)
            unicode = _unicode_path(info.extra)
            if unicode and unicode != info.filename:
                check_name("%s/%s" % (where, unicode), unicode, tally)
            if info.flag_bits & 0x1:   # traditional or AES encryption: names readable, content not
                encrypted = True
                continue
            # Only stored and deflated members: zipfile decompresses bzip2/lzma reads
            # without an output bound, so a few bytes can expand to gigabytes.
            if info.is_dir() or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                continue
            if index >= budgets.archive_members:
                tally.short("an archive with more than %d members" % budgets.archive_members)
                continue
            if tally.read_left <= 0:
                tally.short("archives expand to more than %s" % size_text(budgets.archive_read))
                continue
            try:
                _zip_member(archive, info, location, tally, nesting)
            except OutOfBudget:
                raise
            except Exception:
                continue  # unsupported, damaged: the name was checked
    if encrypted:
        tally.found(where, ENCRYPTED)


def _unicode_path(extra: bytes) -> str:
    """The Info-ZIP Unicode Path extra field (0x7075): the name 7-Zip and WinRAR show in place of
    the one in the header, which Python's zipfile (before 3.12) does not read."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if tag == 0x7075 and size >= 5:
            return extra[pos + 9:pos + 4 + size].decode("utf-8", "replace")
        pos += 4 + size
    return ""


def _read(fh: "zipfile.ZipExtFile", n: int, tally: Tally) -> bytes:
    data = fh.read(tally.spend(n))   # never read(-1): that means "everything"
    tally.spent(len(data))
    return data


def _zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, location: str, tally: Tally,
                nesting: int) -> None:
    budgets = tally.budgets
    tally.spent(MEMBER_COST)
    with archive.open(info) as fh:
        # A bad CRC would raise at end of a small member and hide its content; 7-Zip
        # still extracts such files. Private attribute: if it ever goes, CRC errors are skipped.
        fh._expected_crc = None
        head = _read(fh, 0x40, tally)
        if head[:2] == b"MZ" and len(head) == 0x40:
            (offset,) = struct.unpack_from("<I", head, 0x3C)
            if offset + 4 <= budgets.member_head:  # read only as far as the PE signature
                head += _read(fh, offset + 4 - len(head), tally)
        if is_pe(head):
            tally.found(location, "PE header")
        elif _container(head, [info.filename]):
            if nesting + 1 > budgets.archive_nesting:
                tally.short("archives nested deeper than %d" % budgets.archive_nesting)
                return
            nested = head + _read(fh, budgets.nested_archive - len(head), tally)
            inspect_file(nested, [info.filename], location, tally, nesting + 1)
