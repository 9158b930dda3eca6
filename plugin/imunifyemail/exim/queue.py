"""What waits in Exim's queue for the filter: messages our router deferred (no verdict yet).

The router logs ``== <address> R=imunifyemail_scan defer ...`` in the message's own log
(``msglog/<id>``) when the daemon did not answer in time (down, restarting, or the quarantine
full); such a message stays in the queue until Exim's next retry. ``ie-config status`` counts
them; the daemon, back from an outage, has Exim deliver them at once (``exim -M``).
"""
from dataclasses import dataclass
from typing import List

from .spool import Spool, SpooledMessage

DEFER_MARK = "R=imunifyemail_scan defer"


@dataclass(frozen=True)
class QueueSummary:
    total: int
    waiting_for_scanner: int


def _waits(spool: Spool, msg: SpooledMessage) -> bool:
    return bool(msg.undelivered) and DEFER_MARK in spool.msglog(msg.exim_id)


def deferred_by_filter(spool: Spool) -> List[str]:
    """Ids of the queued messages with an address our router deferred and not delivered since."""
    return [msg.exim_id for msg in spool.messages() if _waits(spool, msg)]


def summary(spool: Spool) -> QueueSummary:
    total = waiting = 0
    for msg in spool.messages():
        total += 1
        waiting += _waits(spool, msg)
    return QueueSummary(total, waiting)
