"""The incoming filter's decision for one local recipient of a scanned message (no I/O).

Inbound mail is never held and never refused: a spam verdict sends the recipient's copy to the
mailbox's Junk folder, anything else (ham, an account with the filter off, a whitelisted recipient,
no verdict because Rspamd could not be asked) to the inbox.
"""
from dataclasses import dataclass
from typing import Optional

from .addresses import envelope_key
from .verdict import Scan, Whitelist

JUNK, INBOX = "junk", "inbox"
SPAM, HAM = "spam", "ham"   # what the daily counts count
# Rspamd's actions that mean "spam, but deliver it": in a mail client's terms, Junk.
SPAM_ACTIONS = ("reject", "rewrite subject", "add header")

# why a copy went where it went (the daemon's log, the answer's ``reason``)
ACCOUNT_OFF = "incoming filter off for the account"
WHITELISTED = "recipient whitelisted"
NOT_HOSTED = "no hosted account"
UNSCANNED = "not scanned"


@dataclass(frozen=True)
class Routing:
    folder: str             # JUNK or INBOX
    counted: Optional[str]  # SPAM, HAM, or None: not counted (nobody's, off, or not scanned)
    reason: str = ""


def is_spam(scan: Scan) -> bool:
    return scan.action in SPAM_ACTIONS


def whitelisted(recipient: str, whitelist: Whitelist) -> bool:
    email, domain = envelope_key(recipient)
    return email in whitelist.recipient_emails or (domain != "" and domain in whitelist.recipient_domains)


def route(account: Optional[str], account_on: bool, recipient: str, whitelist: Whitelist,
          scan: Optional[Scan]) -> Routing:
    """Where one recipient's copy goes, and what it counts as for the account's daily figures.

    A whitelisted recipient's mail is still counted (the figures say what arrived); an account with the
    filter off counts nothing (it asked not to be filtered)."""
    if account is None:
        return Routing(INBOX, None, NOT_HOSTED)
    if not account_on:
        return Routing(INBOX, None, ACCOUNT_OFF)
    if scan is None:
        return Routing(INBOX, None, UNSCANNED)
    kind = SPAM if is_spam(scan) else HAM
    if kind == SPAM and whitelisted(recipient, whitelist):
        return Routing(INBOX, kind, WHITELISTED)
    return Routing(JUNK if kind == SPAM else INBOX, kind)
