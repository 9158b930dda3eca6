"""Windows executables in a message, looked for as a mail client would find them, within budgets.

``precheck(raw)`` says at a glance (no parsing, linear) whether a message is too big or has too many
MIME parts to be inspected or handed to anything that parses MIME. ``inspect(raw)`` runs it, then
walks the message: each part, under every reading clients disagree on (two Content-Type fields, a
header block that a strict reader ends early), is checked by name and by content, including archives,
TNEF, uuencoded text and Exim's plain-text copies of a message. It stops when a budget runs out and
says why (``beyond``): an inspection that did not see everything is never "clean". Nothing raises.
"""
import re
import time
from dataclasses import dataclass
from typing import Callable, List, Sequence, Tuple

from . import attachments, carried, mimewalk
from .budgets import BUDGETS, Budgets, OutOfBudget, Tally, size_text
from .executables import EXECUTABLE_EXTENSIONS, Finding

__all__ = ["BUDGETS", "EXECUTABLE_EXTENSIONS", "Budgets", "Finding", "Inspection", "find_executables",
           "inspect", "precheck"]


@dataclass(frozen=True)
class Inspection:
    findings: Tuple[Finding, ...]
    beyond: str = ""    # "" = fully inspected; else why not, for an administrator


def precheck(raw: bytes, budgets: Budgets = BUDGETS) -> str:
    """"" or why the message must not be parsed at all: a few byte counts and one pass over its
    lines that start with "--"; cheap enough to run on every message before anything else."""
    if len(raw) > budgets.max_bytes:
        return "larger than %s" % size_text(budgets.max_bytes)
    if mimewalk.count_parts(raw, budgets.max_parts) > budgets.max_parts:
        return "more than %d MIME parts" % budgets.max_parts
    return ""


def inspect(raw: bytes, budgets: Budgets = BUDGETS, clock: Callable[[], float] = time.monotonic) -> Inspection:
    """The executables in a message (the exact raw RFC 5322 bytes), and whether it was fully seen."""
    beyond = precheck(raw, budgets)
    if beyond:
        return Inspection((), beyond)
    tally = Tally(budgets, clock)
    try:
        if _plainly_text(raw, tally.tick):
            return Inspection(())
        _Walk(tally).entity(raw, 0, len(raw), "", 0, [0])
    except OutOfBudget as exc:
        tally.beyond = exc.reason
    except RecursionError:
        tally.beyond = "MIME nesting too deep to inspect"
    except Exception as exc:  # last line of defence: whatever was found so far still counts
        tally.beyond = "could not be inspected (%s)" % type(exc).__name__
    return Inspection(tally.findings, tally.beyond)


def find_executables(raw: bytes) -> List[Finding]:
    """``inspect`` with the default budgets, as a list; a message not fully inspected adds a finding
    at "message" that says why, so that a caller who knows only findings holds it, not passes it."""
    result = inspect(raw)
    found = list(result.findings)
    if result.beyond:
        found.append(Finding("message", "not fully inspected: " + result.beyond))
    return found


_PLAIN_TYPES = ("text/plain", "text/html")
_PLAIN_ENCODINGS = ("", "7bit", "8bit")


def _plainly_text(raw: bytes, tick: Callable[[], None]) -> bool:
    """A single text part that can hold no file: no MIME structure, no name, no encoding that could
    carry binary (7bit/8bit text cannot hold a PE file), no uuencoded block or copied message in the
    text. Most outbound mail is such; this is decided from the header block and a few substring
    searches, without walking the message."""
    head = mimewalk.head(raw, 0, len(raw), tick)
    if head.early_body >= 0 or head.values("content-disposition"):
        return False
    types = head.values("content-type")
    if len(types) > 1 or (types and mimewalk.media_type(types[0]) not in _PLAIN_TYPES):
        return False
    if types and "name" in types[0].lower():   # name=, filename*= ...: treat as an attachment
        return False
    encodings = head.values("content-transfer-encoding")
    if len(encodings) > 1 or (encodings and _token(encodings[0]) not in _PLAIN_ENCODINGS):
        return False
    return not carried.might_carry(raw, head.body)


def _token(value: str) -> str:
    return re.sub(r"\([^)]*\)|[\s\"']", "", value).lower()


class _Walk:
    """One message's parts, depth first; ``counter`` numbers the nameless parts of one message."""

    def __init__(self, tally: Tally):
        self.tally = tally

    def entity(self, buf: bytes, start: int, end: int, prefix: str, depth: int, counter: List[int],
               default: str = "text/plain") -> None:
        """The message or part ``buf[start:end]``, under each reading of its header fields. Every
        one below the top counts as a part: readings that multiply (an attached message read twice
        at each level) stay within the budget."""
        tally = self.tally
        tally.nest(depth)
        if depth:
            tally.part()
        head = mimewalk.head(buf, start, end, tally.tick)
        names = mimewalk.names(head.values("content-type"), head.values("content-disposition"))
        for name in names:
            attachments.check_name(prefix + name, name, tally)
        where = ""
        for fields, body in head.readings():
            types = mimewalk.values(fields, "content-type") or [default]
            transfers = list(dict.fromkeys(mimewalk.encoding(v)
                                           for v in mimewalk.values(fields, "content-transfer-encoding"))) or [""]
            files: List[Tuple[str, str]] = []   # (media type, transfer encoding) read as a file
            for value in types:
                media = mimewalk.media_type(value)
                if media.startswith("multipart/") and self.multipart(buf, body, end, media, value, prefix, depth,
                                                                      counter):
                    continue
                if media.startswith("message/"):
                    if "" in transfers:   # an attached message as it is: its parts count as this message's
                        self.entity(buf, body, end, prefix, depth + 1, counter)
                    files.extend((media, t) for t in transfers if t)   # encoded: decoded, then read anew
                else:
                    files.extend((media, t) for t in transfers)
            if files and not where:
                counter[0] += 1
                where = prefix + (names[0] if names else "part %d" % counter[0])
            for transfer in dict.fromkeys(t for _, t in files):
                media = [m for m, t in files if t == transfer]
                self.leaf(buf[body:end], media, transfer, names, prefix, where, depth)

    def multipart(self, buf: bytes, body: int, end: int, media: str, value: str, prefix: str, depth: int,
                  counter: List[int]) -> bool:
        """The parts of a multipart body; False if it has no boundary to split on (a text, then)."""
        self.tally.tick()   # each reading of a body scans all of it
        separator = mimewalk.boundary(value) or mimewalk.guess_boundary(buf, body, end)
        if not separator:
            return False
        default = "message/rfc822" if media == "multipart/digest" else "text/plain"
        for child_start, child_end in mimewalk.parts(buf, body, end, separator):
            self.isolated(self.entity, buf, child_start, child_end, prefix, depth + 1, counter, default)
        return True

    def leaf(self, body: bytes, media: Sequence[str], transfer: str, names: List[str], prefix: str,
             where: str, depth: int) -> None:
        tally = self.tally
        tally.tick()
        if transfer == "uuencode":
            if not carried.might_carry(body):   # no begin line: the body is the encoded file
                attachments.inspect_file(carried.uudecode(body, tally.tick), names, where, tally)
            self.text(body, prefix, where, depth)
            return
        data = mimewalk.decode(body, transfer)
        attachments.inspect_file(data, names, where, tally)
        if any(m.startswith("message/") for m in media):
            self.entity(data, 0, len(data), where + "/", depth + 1, [0])
        if any(m.startswith("text/") for m in media):
            self.text(data, prefix, where, depth)

    def text(self, text: bytes, prefix: str, where: str, depth: int) -> None:
        """Files and messages carried in a text."""
        if not carried.might_carry(text):
            return
        tally = self.tally
        for name, data in carried.files(text, tally.tick):
            attachments.check_name(prefix + name, name, tally)
            attachments.inspect_file(data, [name], prefix + name, tally)
        for copy in carried.copied_messages(text):
            self.entity(copy, 0, len(copy), where + "/", depth + 1, [0])

    def isolated(self, step: Callable[..., None], *args) -> None:
        """One hostile part must not hide the others: a part that fails is noted and skipped."""
        try:
            step(*args)
        except (OutOfBudget, RecursionError):
            raise
        except Exception as exc:
            self.tally.short("a part could not be inspected (%s)" % type(exc).__name__)
