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
those lines, so ``strip(insert(text))`` is ``text`` byte for byte (the rule
of :mod:`imunifyemail.marked_blocks`, shared with Rspamd's files). A marker
the administrator deleted is re-created *inside* our block, so it leaves
with the block.
"""
import re
from typing import Dict, List, Tuple

from .. import marked_blocks

# cPanel's skeleton of an otherwise empty exim.conf.local (sections in alphabetical order).
SECTIONS = ("AUTH", "BEGINACL", "CONFIG", "DIRECTOREND", "DIRECTORMIDDLE", "DIRECTORSTART", "ENDACL",
            "POSTMAILCOUNT", "PREDOTFORWARD", "PREFILTER", "PRELOCALUSER", "PRENOALIASDISCARD", "PREROUTERS",
            "PREVALIASNOSTAR", "PREVALIASSTAR", "PREVIRTUALUSER", "RETRYEND", "RETRYSTART", "REWRITE",
            "ROUTEREND", "ROUTERMIDDLE", "ROUTERSTART", "TRANSPORTEND", "TRANSPORTMIDDLE", "TRANSPORTSTART")
SKELETON = "\n\n".join(f"@{name}@" for name in SECTIONS) + "\n"

_NOTE = "managed by ie-config: changes here are overwritten"
_MARKER = re.compile(r"^@([A-Z]+)@[ \t]*\r?$")

LocalConfError = marked_blocks.BlockError
blocks_present = marked_blocks.present
strip = marked_blocks.strip


def _render(name: str, section: str, body: str, with_marker: bool) -> str:
    return marked_blocks.render(name, _NOTE, (f"@{section}@\n" if with_marker else "") + body)


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
        out.extend(marked_blocks.insert_after(line, after.get(i, [])))
    if tail:
        if out:
            out[-1:] = marked_blocks.insert_after(out[-1], tail)
        else:
            out = tail
    return "".join(out)
