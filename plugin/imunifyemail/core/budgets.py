"""What one inspection of a message may cost, and what it has spent so far.

A message is hostile input: whatever it holds, its inspection must end soon, in bounded memory, and
say plainly when it could not look at everything (``beyond``), since "not fully inspected" must never
read as "clean".
"""
import time
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

from .executables import Finding

MiB = 1024 * 1024


@dataclass(frozen=True)
class Budgets:
    # cPanel's Exim refuses messages over 50 MB (message_size_limit): 64 MiB admits all of them.
    max_bytes: int = 64 * MiB
    # Every leaf and every multipart counts, all nesting levels together. A newsletter with its inline
    # images has tens of parts, a forwarded chain a few hundred at most; a million empty parts cost
    # the old parser 24 s and Rspamd 50 s.
    max_parts: int = 1000
    # A forward-as-attachment adds two levels (the multipart and the message/rfc822), a message's own
    # structure (mixed > related > alternative > leaf) four: 30 admits a chain of a dozen forwards.
    max_depth: int = 30
    # The 50 MB ham of the tests takes well under a second; Exim waits 60 s for the verdict.
    max_seconds: float = 5.0
    # Archives: zips (and 7z, RAR, TNEF) inside archives followed this deep ...
    archive_nesting: int = 3
    # ... the content of this many members of one archive read (every name is checked) ...
    archive_members: int = 10_000
    # ... and this much decompressed in all: nesting multiplies the per-archive limits, so a crafted
    # archive could otherwise cost hours.
    archive_read: int = 128 * MiB
    member_head: int = 64 * 1024        # bytes of an archive member read to find a PE header
    nested_archive: int = 8 * MiB       # bytes of an archive inside an archive read to open it


BUDGETS = Budgets()


def size_text(n: int) -> str:
    return "%d MiB" % (n // MiB) if n and n % MiB == 0 else "%d bytes" % n


class OutOfBudget(Exception):
    """A budget that ends the inspection ran out; ``reason`` says which, for an administrator."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Tally:
    """One inspection in progress: what it found, and what it has spent of its budgets."""

    def __init__(self, budgets: Budgets, clock: Callable[[], float] = time.monotonic):
        self.budgets = budgets
        self._clock = clock
        self._deadline = clock() + budgets.max_seconds
        self._found: Dict[Finding, None] = {}   # insertion-ordered, without duplicates
        self.parts = 0
        self.read_left = budgets.archive_read
        self.beyond = ""

    def found(self, location: str, why: str) -> None:
        self._found[Finding(location, why)] = None

    @property
    def findings(self) -> Tuple[Finding, ...]:
        return tuple(self._found)

    def part(self) -> None:
        self.parts += 1
        if self.parts > self.budgets.max_parts:
            raise OutOfBudget("more than %d MIME parts" % self.budgets.max_parts)
        self.tick()

    def nest(self, depth: int) -> None:
        if depth > self.budgets.max_depth:
            raise OutOfBudget("MIME nesting deeper than %d" % self.budgets.max_depth)

    def tick(self) -> None:
        if self._clock() > self._deadline:
            raise OutOfBudget("took more than %g s to inspect" % self.budgets.max_seconds)

    def short(self, reason: str) -> None:
        """Something was left unread but the inspection goes on (names are still checked): the
        message is not fully inspected all the same."""
        if not self.beyond:
            self.beyond = reason

    def spend(self, n: int) -> int:
        """Up to ``n`` bytes of the archive read budget: how many may be read now."""
        allowed = max(0, min(n, self.read_left))
        if allowed < n:
            self.short("archives expand to more than %s" % size_text(self.budgets.archive_read))
        return allowed

    def spent(self, n: int) -> None:
        self.read_left -= n
