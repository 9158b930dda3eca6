"""What the administrator's decisions teach the filter: the rules, in one place (no I/O).

Deleting a held message *as spam* or releasing it *as not spam* teaches Rspamd through its controller:
the message's fuzzy hashes under our spam or ham flag (rpm/rspamd/local.d/fuzzy_check.conf: a near
copy of a message deleted as spam is held, of one released as not spam is let through) and a Bayes
lesson. Who may teach, and what, is decided here:

* only the administrator (root, from a shell or WHM): a hosted user's release or delete never trains
  the filter — a spammer who owns the account must not whitelist their own campaign;
* mail held only for a sender limit is never learned as spam: its content was never found bad;
* "not spam" unlearns spam: only mail held as spam is learned as ham;
* a test message (GTUBE, the anti-spam test pattern) is never learned: it teaches nothing, and Rspamd
  3.4's controller crashes on it (its fuzzy requests).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

from .verdict import RATELIMIT, SPAM

LEARN_SPAM = "spam"
LEARN_HAM = "ham"
KINDS = (LEARN_SPAM, LEARN_HAM)

# The fuzzy_map flags of rule "imunifyemail" (rpm/rspamd/local.d/fuzzy_check.conf)
SPAM_FLAG = 11
HAM_FLAG = 12

ONLY_ADMIN = "only the administrator's decisions teach the filter"
ONLY_RATELIMIT = "held only for a sender limit: never learned as spam"
NOT_HELD_AS_SPAM = "not held as spam: nothing to unlearn"
TEST_MESSAGE = "a test message (GTUBE): never learned"
_GTUBE = b"GTUBE-STANDARD-ANTI-UBE-TEST"   # in each of Rspamd's GTUBE patterns


def refusal(kind: str, is_admin: bool, reasons: Sequence[str]) -> str:
    """Why a message held for ``reasons`` is not learned as ``kind`` ("" when it is)."""
    if kind not in KINDS:
        raise ValueError(f"unknown lesson {kind!r}")
    if not is_admin:
        return ONLY_ADMIN
    if kind == LEARN_SPAM and set(reasons) <= {RATELIMIT}:
        return ONLY_RATELIMIT
    if kind == LEARN_HAM and SPAM not in reasons:
        return NOT_HELD_AS_SPAM
    return ""


def content_refusal(raw: bytes) -> str:
    """Why a message's bytes are not learned at all ("" when they may be)."""
    return TEST_MESSAGE if _GTUBE in raw else ""


def offered(kind: str, is_admin: bool, reasons: Sequence[str]) -> bool:
    """Whether the pages offer "as spam" / "as not spam" for this message."""
    return refusal(kind, is_admin, reasons) == ""


# (controller path, its headers): what one lesson asks of Rspamd's controller, in this order. Ham first
# takes the message's hashes off the spam list, then whitelists them (a near copy then matches the
# whitelisted hashes: they share its shingles).
Request = Tuple[str, Dict[str, str]]
REQUESTS: Dict[str, List[Request]] = {
    LEARN_SPAM: [("/fuzzyadd", {"Flag": str(SPAM_FLAG), "Weight": "1"}), ("/learnspam", {})],
    LEARN_HAM: [("/fuzzydel", {"Flag": str(SPAM_FLAG)}), ("/fuzzyadd", {"Flag": str(HAM_FLAG), "Weight": "1"}),
                ("/learnham", {})],
}

# Rspamd 3.4's controller answers 404 "<id> has been already learned as spam, ignore it" (208 on another
# path) when Bayes has learned this very message before: a lesson all the same (the bulk delete of a
# campaign's identical copies). With its Redis down it says the same, and its fuzzy storage takes the
# write (queued; dropped after a few failed syncs): Rspamd 3.4 gives no sign of a Redis that is down.
ALREADY_LEARNED = 208
_ALREADY_LEARNED_TEXT = "has been already learned as"


def answered_ok(status: int, error: str = "") -> bool:
    return status in (200, ALREADY_LEARNED) or (status == 404 and _ALREADY_LEARNED_TEXT in error)


# Rspamd 3.4's fuzzy storage answers every write 403 "process fuzzy error" from its start until it has
# read the map of the keys allowed to write (imunifyemail-fuzzy-writers.map): it schedules that read
# 0-2 s after it starts listening (longer on a loaded server), so a lesson given just after Rspamd
# (re)started is refused; one given before the storage listens times out ("IO timeout with fuzzy
# storage", after the rule's 1 s x 3 retransmits). Both pass by themselves: the request is asked again
# for at most this long, once per decision (a storage that really refuses our key costs one wait).
STORAGE_STARTING = ((403, "process fuzzy error"), (500, "IO timeout with fuzzy storage"))
STORAGE_START_PATIENCE = 8.0   # seconds
STORAGE_START_POLL = 0.5


def storage_starting(path: str, status: int, error: str) -> bool:
    """Whether Rspamd's answer to a fuzzy request may be its storage still starting (worth asking again)."""
    return path.startswith("/fuzzy") and (status, error) in STORAGE_STARTING


@dataclass
class Report:
    """What a decision taught: the ids learned, those not learned (why), those failed (why)."""
    kind: str
    learned: List[str] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)
    failed: Dict[str, str] = field(default_factory=dict)

    def learned_line(self) -> str:
        """"learned as spam: N" ("" when none was)."""
        word = "spam" if self.kind == LEARN_SPAM else "not spam"
        return f"learned as {word}: {len(self.learned)}" if self.learned else ""

    def not_learned(self) -> Dict[str, str]:
        """Every id not learned, with why (skipped or failed)."""
        return {**self.skipped, **self.failed}

    def summary(self) -> str:
        parts = [self.learned_line()] if self.learned else []
        parts += [f"{email_id} not learned: {why}" for email_id, why in self.not_learned().items()]
        return "; ".join(parts) or "nothing to learn"
