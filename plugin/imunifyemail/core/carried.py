"""Files and messages carried inside the text of a part.

- uuencoded blocks (``begin 644 name`` ... ``end``, and ``begin-base64``) and yEnc blocks
  (``=ybegin ... name=``): Outlook, Thunderbird and others show them as attachments;
- the copy of a message that Exim appends as plain text to some of its own messages. A client
  shows that copy as text, but an executable in it was still mailed out: it is judged on purpose.

Exim 4.96 (source tag exim-4.96) writes such copies in two places; its bounces and delay warnings
are MIME (deliver.c: multipart/report with a message/rfc822 or text/rfc822-headers part), which the
MIME walk inspects like any attached message:
- src/moan.c, moan_to_sender(): errors found while a message is received, e.g. "Mail failure -
  malformed recipient address" for ``sendmail -t`` with a bad To:. Its marker line is
  "------ This is a copy of your message, including all the headers. ------", or without the
  trailing dashes and followed by "------ No more than N characters of the body are included.";
- src/transports/autoreply.c (``return_message``, e.g. vacation replies): "------ This is a copy of
  the message, including all the headers." (also the wording of Exim's text bounces before 4.83)
  or "------ This is a copy of the body of the message, without the headers.", maybe followed by
  "------ The body of the message is N characters long; only the first" / "------ N or so are
  included here.".
"""
import binascii
import re
from typing import Callable, Iterator, Tuple

_HINTS = (b"begin", b"=ybegin", b"------ This is a copy of ")   # each at the start of a line
_UU_BEGIN = re.compile(rb"^begin(-base64)?[ \t]+[0-7]{3,4}[ \t]+([^\r\n]*?)[ \t]*\r?$", re.M)
_Y_BEGIN = re.compile(rb"^=ybegin[ \t][^\r\n]*?name=([^\r\n]*?)[ \t]*\r?$", re.M)
_COPY = re.compile(rb"^------ This is a copy of (?:your message|the message), including all the headers\.[^\r\n]*$"
                   rb"|^------ This is a copy of the (body) of the message, without the headers\.[^\r\n]*$", re.M)
_NOTE = re.compile(rb"(?:(?:------ |       was detected)[^\r\n]*)?(?:\r\n|\r|\n)")
_Y_TABLE = bytes((b - 42) & 0xFF for b in range(256))
_TICK_EVERY = 4096   # lines decoded between two looks at the clock


def might_carry(text: bytes, start: int = 0) -> bool:
    """A cheap look (a few substring searches) that rules out most text."""
    return any(text.startswith(hint, start) or text.find(b"\n" + hint, start) >= 0
               or text.find(b"\r" + hint, start) >= 0 for hint in _HINTS)


def files(text: bytes, tick: Callable[[], None]) -> Iterator[Tuple[str, bytes]]:
    """(name, data) of each uuencoded or yEnc block."""
    if b"begin" in text:
        for match in _UU_BEGIN.finditer(text):
            name = match.group(2).decode("utf-8", "surrogateescape")
            decode = _base64_block if match.group(1) else _uu_block
            yield name, decode(text, match.end(), tick)
    if b"=ybegin" in text:
        for match in _Y_BEGIN.finditer(text):
            yield match.group(1).decode("utf-8", "surrogateescape"), _yenc_block(text, match.end(), tick)


def uudecode(body: bytes, tick: Callable[[], None]) -> bytes:
    """A Content-Transfer-Encoding: x-uuencode body that lacks its begin line."""
    return _uu_block(body, 0, tick)


def copied_messages(text: bytes) -> Iterator[bytes]:
    """The messages Exim copied after its marker lines, as raw messages (a body copied without its
    headers gets a multipart header if it looks like one, so its parts are read)."""
    if b"------ This is a copy of " not in text:
        return
    for match in _COPY.finditer(text):
        pos = match.end()
        while True:   # the marker's line end, notes about the size, blank lines
            note = _NOTE.match(text, pos)
            if not note or note.end() == pos:
                break
            pos = note.end()
        copy = text[pos:]
        if match.group(1) and copy.startswith(b"--"):
            copy = b"Content-Type: multipart/mixed\n\n" + copy
        yield copy


def _lines(text: bytes, pos: int, tick: Callable[[], None]) -> Iterator[bytes]:
    count = 0
    while pos < len(text):
        end = text.find(b"\n", pos)
        end = len(text) if end < 0 else end + 1
        yield text[pos:end].rstrip(b"\r\n")
        pos = end
        count += 1
        if count % _TICK_EVERY == 0:
            tick()


def _uu_block(text: bytes, pos: int, tick: Callable[[], None]) -> bytes:
    out = []
    for line in _lines(text, pos, tick):
        if line.rstrip() == b"end":
            break
        if not line:
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            # As Python's uu module did for broken encoders: trust the length character.
            try:
                out.append(binascii.a2b_uu(line[:(((line[0] - 32) & 63) * 4 + 5) // 3]))
            except binascii.Error:
                continue
    return b"".join(out)


def _base64_block(text: bytes, pos: int, tick: Callable[[], None]) -> bytes:
    out = []
    for line in _lines(text, pos, tick):
        if line.rstrip() == b"====":
            break
        out.append(line)
    try:
        return binascii.a2b_base64(b"".join(out))
    except binascii.Error:
        return b""


def _yenc_block(text: bytes, pos: int, tick: Callable[[], None]) -> bytes:
    out = bytearray()
    for line in _lines(text, pos, tick):
        if line.startswith(b"=yend"):
            break
        if line.startswith(b"=ypart"):
            continue
        pieces = line.split(b"=")
        out += pieces[0]
        for piece in pieces[1:]:   # "=" escapes the next byte, shifted by 64
            if piece:
                out.append((piece[0] - 64) & 0xFF)
                out += piece[1:]
    return bytes(out).translate(_Y_TABLE)
