"""Our blocks in cPanel's ``/etc/exim.conf.local``, as pure text operations (no I/O).

The file is the WHM Advanced Editor's: ``@NAME@`` lines start sections that
``buildeximconf`` merges into cPanel's template. We own only what lies between
our sentinel lines, each block placed right after its section's marker line::

    @POSTMAILCOUNT@
    # BEGIN imunifyemail router (managed by ie-config: changes here are overwritten)
    imunifyemail_scan:
        ...
    # END imunifyemail router

``insert`` is a pure insertion of whole lines and ``strip`` removes exactly
those lines, so ``strip(insert(text))`` is ``text`` byte for byte. A marker
the administrator deleted is re-created *inside* our block, so it leaves
with the block.
"""
import re
from typing import Dict, List, Tuple

# cPanel's skeleton of an otherwise empty exim.conf.local (sections in alphabetical order).
SECTIONS = ("AUTH", "BEGINACL", "CONFIG", "DIRECTOREND", "DIRECTORMIDDLE", "DIRECTORSTART", "ENDACL",
            "POSTMAILCOUNT", "PREDOTFORWARD", "PREFILTER", "PRELOCALUSER", "PRENOALIASDISCARD", "PREROUTERS",
            "PREVALIASNOSTAR", "PREVALIASSTAR", "PREVIRTUALUSER", "RETRYEND", "RETRYSTART", "REWRITE",
            "ROUTEREND", "ROUTERMIDDLE", "ROUTERSTART", "TRANSPORTEND", "TRANSPORTMIDDLE", "TRANSPORTSTART")
SKELETON = "\n\n".join(f"@{name}@" for name in SECTIONS) + "\n"

BEGIN = "# BEGIN imunifyemail "
END = "# END imunifyemail "
_NOTE = " (managed by ie-config: changes here are overwritten)"
_MARKER = re.compile(r"^@([A-Z]+)@[ \t]*\r?$")
_BLOCK = re.compile(r"^# BEGIN imunifyemail (\S+)[^\n]*\n.*?^# END imunifyemail \1[^\n]*(?:\n|\Z)",
                    re.MULTILINE | re.DOTALL)


class LocalConfError(Exception):
    pass


def blocks_present(text: str) -> List[str]:
    """Names of our blocks in ``text``, in file order."""
    return [m.group(1) for m in _BLOCK.finditer(text)]


def strip(text: str) -> str:
    """``text`` without our blocks: the administrator's file exactly as it was."""
    if text.count(BEGIN) != len(blocks_present(text)):
        raise LocalConfError("an imunifyemail block in exim.conf.local has no END line: "
                             "fix or remove it by hand")
    out, pos, unterminated = [], 0, False
    for m in _BLOCK.finditer(text):
        out.append(text[pos:m.start()])
        pos = m.end()
        unterminated = not m.group(0).endswith("\n")
    out.append(text[pos:])
    result = "".join(out)
    if unterminated and result.endswith("\n"):
        result = result[:-1]   # the newline insert() added after a last line that had none
    return result


def _render(name: str, section: str, body: str, with_marker: bool) -> str:
    lines = [f"{BEGIN}{name}{_NOTE}\n"]
    if with_marker:
        lines.append(f"@{section}@\n")
    lines.append(body if body.endswith("\n") else body + "\n")
    lines.append(f"{END}{name}\n")
    return "".join(lines)


def insert(text: str, blocks: Dict[str, Tuple[str, str]]) -> str:
    """``text`` (already stripped) with each block ``name -> (section, body)``
    right after its section's first marker line; a missing marker is created
    inside the block, at the end of the file."""
    if blocks_present(text):
        raise LocalConfError("insert() expects a file without imunifyemail blocks")
    lines = text.splitlines(keepends=True)
    first: Dict[str, int] = {}
    for i, line in enumerate(lines):
        m = _MARKER.match(line.rstrip("\n"))
        if m and m.group(1) not in first:
            first[m.group(1)] = i
    after: Dict[int, List[str]] = {}
    tail: List[str] = []
    for name, (section, body) in blocks.items():
        if section not in SECTIONS:
            raise LocalConfError(f"unknown exim.conf.local section {section!r}")
        if section in first:
            after.setdefault(first[section], []).append(_render(name, section, body, False))
        else:
            tail.append(_render(name, section, body, True))
    out: List[str] = []
    for i, line in enumerate(lines):
        out.append(line)
        if i in after:
            if not line.endswith("\n"):
                out.append("\n")
                after[i][-1] = after[i][-1][:-1]   # keep "no newline at end of file" as it was
            out.extend(after[i])
    if tail:
        if out and not out[-1].endswith("\n"):
            out.append("\n")
            tail[-1] = tail[-1][:-1]
        out.extend(tail)
    return "".join(out)
