"""What waits in Exim's queue for the filter: messages our router deferred (no verdict yet).

The router logs ``<address> R=imunifyemail_scan defer (-1): ...`` in the message's own log
(``msglog/<id>``; the main log's ``==`` flag is not written there) when the daemon did not answer in time (down, restarting, or the quarantine
full); such a message stays in the queue until Exim's next retry. ``ie-config status`` counts
them; the daemon, back from an outage, has Exim deliver them at once (``exim -M``).
"""
import re
from dataclasses import dataclass
from typing import List, Sequence, Set

from .snippets import ROUTER_NAME
from .spool import Spool, SpoolError, SpooledMessage

# A deferral in a msglog line: "<time> <address> R=<router> [T=<transport>] defer (<errno>)..."
DEFERRAL = re.compile(r" R=(\S+) (?:T=\S+ )?defer \(")


@dataclass(frozen=True)
class QueueSummary:
    total: int
    waiting_for_scanner: int


def last_deferral_ours(msglog: str) -> bool:
    """Whether the latest deferral in a message's log is our router's (not a remote host's, say)."""
    for line in reversed(msglog.splitlines()):
        deferral = DEFERRAL.search(line)
        if deferral:
            return deferral.group(1) == ROUTER_NAME
    return False


def _waits(spool: Spool, msg: SpooledMessage) -> bool:
    return bool(msg.undelivered) and last_deferral_ours(spool.msglog(msg.exim_id))


def _waits_by_id(spool: Spool, exim_id: str, logged: Set[str]) -> bool:
    """:func:`_waits`, the msglog read first (``logged``: the ids that have one): most queued messages
    were never deferred by our router, and their ``-H`` files need not be parsed (the metrics file
    counts a whole queue often)."""
    if exim_id not in logged or not last_deferral_ours(spool.msglog(exim_id)):
        return False
    try:
        return bool(spool.header(exim_id).undelivered)
    except (SpoolError, OSError):   # delivered and gone meanwhile
        return False


def deferred_by_filter(spool: Spool) -> List[str]:
    """Ids of the queued messages whose addresses still wait for our router (it deferred them last)."""
    logged = spool.msglog_ids()
    return [exim_id for exim_id in spool.message_ids() if _waits_by_id(spool, exim_id, logged)]


def still_deferred_by_filter(spool: Spool, ids: Sequence[str]) -> List[str]:
    """Those of ``ids`` still in the queue waiting for our router: an ``exim -M`` did not take them
    (Exim skips a message another process has locked, silently)."""
    waiting = []
    for exim_id in ids:
        try:
            if _waits(spool, spool.header(exim_id)):
                waiting.append(exim_id)
        except (SpoolError, OSError):   # delivered and gone, or not an id: nothing to wait for
            continue
    return waiting


def summary(spool: Spool) -> QueueSummary:
    total = waiting = 0
    logged = spool.msglog_ids()
    for exim_id in spool.message_ids():
        total += 1
        waiting += _waits_by_id(spool, exim_id, logged)
    return QueueSummary(total, waiting)
