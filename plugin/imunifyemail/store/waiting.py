"""Held rate-limited mail waiting to leave on its own (automatic release), as stored.

Which messages wait (held only for ``ratelimit``, in an active account, not claimed by a release),
in what order (oldest first), what their sender objects sent in the window, and so when each may
leave (:func:`plan`, the schedule of :mod:`..core.autorelease`). :func:`pick` is the daemon's step:
in one durable transaction it takes the messages due now, checks each against its limits with the
very rule the mail path uses, counts it as sent and claims it. :func:`give_back` undoes both for a
message whose re-injection failed.

A message is found again from its row exactly as it was judged: its account (renames follow), the
envelope sender (lower-cased, as attributed) and its domain, the script's object name, and its
remote recipients (the weight it had).
"""
import json
import sqlite3
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..core import autorelease, limits
from ..core.accounts import ACTIVE
from ..core.addresses import envelope_key
from ..core.limits import ServerLimits
from ..core.verdict import RATELIMIT
from .activity import Activity, SenderObject
from .db import durable
from .settings import load_whitelist

QUEUE_LIMIT = 5000   # of one account's queue looked at once (in order: the rest comes later)
# A literal, not a parameter: SQLite uses the partial index messages_waiting only for its own condition.
IS_WAITING = f"m.reasons = '{RATELIMIT}' AND m.claimed_at IS NULL"


@dataclass(frozen=True)
class Waiting:
    email_id: str
    account: str
    received_at: int
    sender: str
    recipients: Tuple[str, ...]
    script: str      # the script's sender object name
    file: str
    filter_action: str = ""                # the verdict kept with it (its release carries it)
    filter_score: Optional[float] = None

    @property
    def who(self) -> Tuple[str, str, str, str]:
        return (self.account, envelope_key(self.sender)[1], self.sender, self.script)


@dataclass(frozen=True)
class Planned:
    """A waiting message, its sender objects, when it may leave (None: never on its own), and
    whether it is exempt from the limits (its sender whitelisted since it was held)."""
    message: Waiting
    objects: Tuple[SenderObject, ...]
    when: Optional[float]
    exempt: bool


@dataclass(frozen=True)
class Picked:
    """A message taken for automatic release: counted as sent ``at``, claimed."""
    message: Waiting
    objects: Tuple[SenderObject, ...]
    at: float


def accounts_waiting(conn: sqlite3.Connection) -> List[str]:
    """Active accounts with rate-limited mail waiting (a blocked account's wait for the administrator)."""
    rows = conn.execute(
        f"SELECT a.name FROM accounts a WHERE a.state = ? AND EXISTS (SELECT 1 FROM messages m"
        f" WHERE m.account_id = a.id AND {IS_WAITING}) ORDER BY a.name", (ACTIVE,)).fetchall()
    return [r[0] for r in rows]


def queue(conn: sqlite3.Connection, account: str, limit: int = QUEUE_LIMIT) -> List[Waiting]:
    """The account's waiting messages, oldest first (claimed ones are being released: not waiting)."""
    rows = conn.execute(
        "SELECT m.email_id, a.name, m.received_at, m.sender, m.recipients, m.script_name, m.file,"
        " m.filter_action, m.filter_score FROM messages m JOIN accounts a ON a.id = m.account_id"
        f" WHERE a.name = ? AND {IS_WAITING} ORDER BY m.received_at, m.id LIMIT ?", (account, limit)).fetchall()
    return [Waiting(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), r[5], r[6], r[7], r[8]) for r in rows]


def plan(activity: Activity, account: str, now: float, server: ServerLimits,
         create: bool = False) -> List[Planned]:
    """The account's queue in order, each message planned (:func:`..core.autorelease.schedule`).
    ``create``: find its objects as the mail path does (inside a write transaction)."""
    waiting = queue(activity.conn, account)
    find = activity.objects if create else activity.lookup
    whitelist = load_whitelist(activity.conn, now)
    objects = {m.email_id: tuple(find(m.who)) for m in waiting}
    exempt = {m.email_id for m in waiting if autorelease.exempt(whitelist, m.sender, m.who[1])}
    windows = activity.windows([o for objs in objects.values() for o in objs], now, server)
    when = autorelease.schedule(
        now, [autorelease.Queued(m.email_id, () if m.email_id in exempt else tuple(o.id for o in objects[m.email_id]),
                                 len(m.recipients), m.email_id not in exempt and limits.over_cap(len(m.recipients), server))
              for m in waiting], windows, server.limit_mode)
    return [Planned(m, objects[m.email_id], when[m.email_id], m.email_id in exempt) for m in waiting]


def expected(activity: Activity, accounts: Sequence[str], now: float, server: ServerLimits) -> Dict[str, float]:
    """When each waiting message of these accounts is expected to leave (those that never will on
    their own, and those of blocked accounts, are absent)."""
    out: Dict[str, float] = {}
    active = set(accounts_waiting(activity.conn))
    for account in accounts:
        if account in active:
            out.update({p.message.email_id: p.when for p in plan(activity, account, now, server) if p.when is not None})
    return out


def _signature(conn: sqlite3.Connection, account: str) -> Tuple[int, int, int]:
    """What an account's plan depends on besides time: others' commits (limits, overrides, deletes,
    blocks) and its waiting messages (new holds, picks, claims given back)."""
    version = conn.execute("PRAGMA data_version").fetchone()[0]
    count, newest = conn.execute(
        f"SELECT COUNT(*), COALESCE(MAX(m.id), 0) FROM messages m WHERE m.account_id ="
        f" (SELECT id FROM accounts WHERE name = ?) AND {IS_WAITING}", (account,)).fetchone()
    return version, count, newest


def pick(activity: Activity, now: float, server: ServerLimits, most: int,
         known: Optional[Dict[str, Tuple[tuple, float]]] = None) -> List[Picked]:
    """Take up to ``most`` messages due now, oldest first in each account: each one is checked
    against its objects' limits by the mail path's rule, counted as sent and claimed, all in one
    durable transaction — so it is counted exactly when it is taken, and never taken twice.

    ``known`` (kept up to date here): each account's signature and next due time from earlier steps;
    an account whose signature is unchanged is not planned again before then (mail passing meanwhile
    only takes room: nothing becomes due sooner)."""
    conn = activity.conn
    picked: List[Picked] = []
    seen: Dict[str, Tuple[tuple, float]] = {}
    with durable(conn):
        for account in accounts_waiting(conn):
            signature = (str(server), *_signature(conn, account))
            if known and account in known and known[account][0] == signature and now < known[account][1]:
                seen[account] = known[account]
                continue
            next_due = float("inf")
            for planned in plan(activity, account, now, server, create=True):
                msg, objects, when = planned.message, planned.objects, planned.when
                if when is None:
                    continue
                if not autorelease.due(now, when) or len(picked) >= most:
                    next_due = min(next_due, max(when, now))
                    continue
                recipients = len(msg.recipients)
                if not planned.exempt and limits.offenders(activity.usage(objects, now, server), recipients, server):
                    next_due = now   # the forecast is never trusted over the limit itself: look again
                    continue
                activity.count_sent(objects, recipients, now)
                conn.execute("UPDATE messages SET claimed_at = ? WHERE email_id = ?", (int(now), msg.email_id))
                picked.append(Picked(msg, objects, now))
            seen[account] = ((str(server), *_signature(conn, account)), next_due)
    if known is not None:
        known.clear()
        known.update(seen)
    return picked


def give_back(activity: Activity, picked: Sequence[Picked], within: Optional[Callable[[], None]] = None) -> None:
    """Messages whose re-injection failed (or never began): uncounted and unclaimed, to wait again,
    in one transaction (with ``within``: the audit entry saying why)."""
    with durable(activity.conn):
        if within is not None:
            within()
        for p in picked:
            activity.uncount(p.objects, len(p.message.recipients), p.at)
            activity.conn.execute("UPDATE messages SET claimed_at = NULL WHERE email_id = ?", (p.message.email_id,))
