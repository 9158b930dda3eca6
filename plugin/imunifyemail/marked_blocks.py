"""Our blocks in an administrator's configuration file, as pure text operations (no I/O).

We own only the lines between our sentinel lines; every other byte is the administrator's::

    # BEGIN imunifyemail NAME (a note for whoever opens the file)
    ...
    # END imunifyemail NAME

Both files we edit (``/etc/exim.conf.local``: :mod:`.exim.localconf`; ``/etc/rspamd/*.d/*``:
:mod:`.rspamd_files`) take ``#`` comments. A block is inserted as whole lines; when it lands after a
last line that had no newline, that line gets one and the block goes without its own, so the file
still ends as it did; :func:`strip` takes that newline back. ``strip(insert(text))`` is ``text``
byte for byte.
"""
import re
from typing import List

BEGIN = "# BEGIN imunifyemail "
END = "# END imunifyemail "
_BLOCK = re.compile(r"^# BEGIN imunifyemail (\S+)[^\n]*\n.*?^# END imunifyemail \1[^\n]*(?:\n|\Z)",
                    re.MULTILINE | re.DOTALL)


class BlockError(Exception):
    pass


def render(name: str, note: str, body: str) -> str:
    """The block ``name`` around ``body`` (whole lines), ``note`` on its BEGIN line."""
    return f"{BEGIN}{name} ({note})\n{body if body.endswith(chr(10)) else body + chr(10)}{END}{name}\n"


def present(text: str) -> List[str]:
    """Names of our blocks in ``text``, in file order."""
    return [m.group(1) for m in _BLOCK.finditer(text)]


def found(text: str, name: str) -> str:
    """The text of block ``name`` in ``text`` (as :func:`render` made it), or ``""``."""
    for m in _BLOCK.finditer(text):
        if m.group(1) == name:
            return m.group(0) if m.group(0).endswith("\n") else m.group(0) + "\n"
    return ""


def strip(text: str) -> str:
    """``text`` without our blocks: the administrator's file exactly as it was."""
    if text.count(BEGIN) != len(present(text)):
        raise BlockError("an imunifyemail block has no END line: fix or remove it by hand")
    out, pos, unterminated = [], 0, False
    for m in _BLOCK.finditer(text):
        out.append(text[pos:m.start()])
        pos = m.end()
        unterminated = not m.group(0).endswith("\n")
    out.append(text[pos:])
    result = "".join(out)
    if unterminated and result.endswith("\n"):
        result = result[:-1]   # the newline insert_after() added after a last line that had none
    return result


def insert_after(line: str, blocks: List[str]) -> List[str]:
    """``line`` followed by ``blocks`` (rendered), as whole lines; a ``line`` without its newline
    (the file's last) gets one and the last block goes without, so the file ends as it did."""
    if line.endswith("\n") or not blocks:
        return [line, *blocks]
    return [line, "\n", *blocks[:-1], blocks[-1][:-1]]


def append(text: str, block: str) -> str:
    """``text`` (without our blocks) with ``block`` (rendered) at its end."""
    if present(text):
        raise BlockError("append() expects a file without imunifyemail blocks")
    if not text:
        return block
    lines = text.splitlines(keepends=True)
    return "".join(lines[:-1] + insert_after(lines[-1], [block]))
