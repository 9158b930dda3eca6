"""The Activity Monitor's statistics: sender objects with activity in a window, nested.

Accounts are paged in name order (``--limit`` counts accounts), each with its
domains (and their sender emails) and its scripts; only objects with mail in
the window appear. The page is chosen with one index seek per account, and
only the page's objects are summed, so the cost follows the page size, not
the number of objects on the server.
"""
import sqlite3
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ..core import limits, trust
from ..core.limits import Usage
from ..core.window import HOUR
from . import am_hours
from .activity import bucket_of
from .day_counts import day_start

DAY = 86400


@dataclass
class StatsQuery:
    account_name: Optional[str] = None
    domain: Optional[str] = None
    sender_email: Optional[str] = None
    script_name: Optional[str] = None
    since: int = HOUR
    limit: int = 25
    offset: int = 0


_ACTIVE = "EXISTS (SELECT 1 FROM am_buckets b WHERE b.object_id = {obj} AND b.bucket >= :since)"


def _page_sql(q: StatsQuery) -> str:
    clauses = ["o.type = 'account'"]
    if q.account_name is not None:
        clauses.append("o.name = :account_name")
    child = []
    if q.domain is not None:
        child.append(("domain", "domain"))
    if q.sender_email is not None:
        child.append(("sender_email", "sender_email"))
    if q.script_name is not None:
        child.append(("script", "script_name"))
    if not child:
        clauses.append(_ACTIVE.format(obj="o.id"))
    for so_type, param in child:
        clauses.append(f"EXISTS (SELECT 1 FROM sender_objects c WHERE c.account_id = o.id AND c.type = '{so_type}'"
                       f" AND c.name = :{param} AND {_ACTIVE.format(obj='c.id')})")
    return ("SELECT o.id, o.name, o.limit_override, o.daily_override, o.observe, o.raised_limit, o.raised_until"
            " FROM sender_objects o WHERE " + " AND ".join(clauses)
            + " ORDER BY o.name LIMIT :limit OFFSET :offset")


@dataclass
class ObjectStats:
    """One sender object with mail in the window: its sums, and its children that have some."""
    id: str
    type: str
    name: str
    override: Optional[int]
    messages: int               # sent in the window
    quarantined: int            # held in the window
    usage: Usage                # what its limits are checked against now (last 60 minutes, last 24 hours;
    #                             its hourly override: the one in force, a raise included)
    daily_override: Optional[int] = None
    domains: List["ObjectStats"] = field(default_factory=list)
    scripts: List["ObjectStats"] = field(default_factory=list)
    sender_emails: List["ObjectStats"] = field(default_factory=list)
    observe: Optional[int] = None   # its own observe setting (None: the server's)
    raised_limit: Optional[int] = None   # its limit raised for a while, and until when (None: not now)
    raised_until: Optional[int] = None


def stats(conn: sqlite3.Connection, q: StatsQuery, now: float) -> List[ObjectStats]:
    """A page of accounts (name order), each with its domains (and their sender emails) and scripts."""
    params = {"since": bucket_of(now - q.since), "limit": q.limit, "offset": q.offset,
              "account_name": q.account_name, "domain": q.domain, "sender_email": q.sender_email,
              "script_name": q.script_name}
    page = conn.execute(_page_sql(q), params).fetchall()
    if not page:
        return []
    ids = [r["id"] for r in page]
    marks = ",".join("?" * len(ids))
    objects = conn.execute(f"SELECT id, type, name, account_id, parent_id, limit_override, daily_override, observe,"
                           f" raised_limit, raised_until FROM sender_objects"
                           f" WHERE account_id IN ({marks})", ids).fetchall()
    in_page = f"SELECT id FROM sender_objects WHERE account_id IN ({marks})"
    sums = {r[0]: (r[1], r[2]) for r in conn.execute(
        f"SELECT object_id, SUM(messages), SUM(quarantined) FROM am_buckets"
        f" WHERE object_id IN ({in_page}) AND bucket >= ? GROUP BY object_id", (*ids, params["since"]))}
    recent = {r[0]: (r[1], r[2]) for r in conn.execute(
        f"SELECT object_id, COUNT(*), SUM(recipients) FROM am_events"
        f" WHERE object_id IN ({in_page}) AND at > ? GROUP BY object_id", (*ids, now - limits.WINDOW_SECONDS))}
    today = window_sums(conn, [r["id"] for r in objects], day_start(now))

    def node(obj: sqlite3.Row, so_type: str) -> ObjectStats:
        messages, quarantined = sums.get(obj["id"], (0, 0))
        last = recent.get(obj["id"], (0, 0))
        day = today.get(obj["id"], (0, 0))
        raised = trust.applies(obj["raised_until"], now) and obj["raised_limit"] is not None
        hourly = trust.override_at(obj["limit_override"], obj["raised_limit"], obj["raised_until"], now)
        return ObjectStats(obj["id"], so_type, obj["name"], obj["limit_override"], messages or 0, quarantined or 0,
                           Usage(so_type, obj["id"], hourly, last[0], last[1] or 0,
                                 obj["daily_override"], day[0] or 0, day[1] or 0), obj["daily_override"],
                           observe=obj["observe"],
                           raised_limit=obj["raised_limit"] if raised else None,
                           raised_until=obj["raised_until"] if raised else None)

    children: Dict[str, List[sqlite3.Row]] = {}
    for obj in sorted(objects, key=lambda r: r["name"]):
        if obj["type"] != limits.ACCOUNT and obj["id"] in sums:
            children.setdefault(obj["parent_id"], []).append(obj)

    def wanted(obj: sqlite3.Row, name: Optional[str]) -> bool:
        return name is None or obj["name"] == name

    accounts = []
    for acct in page:
        account = node(acct, limits.ACCOUNT)
        if q.script_name is None:
            for dom in children.get(acct["id"], []):
                if dom["type"] != limits.DOMAIN or not wanted(dom, q.domain):
                    continue
                senders = [node(s, limits.SENDER_EMAIL) for s in children.get(dom["id"], [])
                           if wanted(s, q.sender_email)]
                if q.sender_email is not None and not senders:
                    continue
                domain = node(dom, limits.DOMAIN)
                domain.sender_emails = senders
                account.domains.append(domain)
        if q.domain is None and q.sender_email is None:
            account.scripts = [node(s, limits.SCRIPT) for s in children.get(acct["id"], [])
                               if s["type"] == limits.SCRIPT and wanted(s, q.script_name)]
        accounts.append(account)
    return accounts




def hourly(conn: sqlite3.Connection, object_id: str, since: int, now: float) -> List[Tuple[int, int, int]]:
    """(hour start, sent, quarantined) for every hour from ``since`` to now, zeros included:
    one object's series (``activity.SERVER_TOTAL``: the whole server's)."""
    first = int(since) // HOUR * HOUR
    rows = conn.execute(
        "SELECT bucket / ? * ? AS hour, SUM(messages), SUM(quarantined) FROM am_buckets"
        " WHERE object_id = ? AND bucket >= ? GROUP BY hour", (HOUR, HOUR, object_id, first)).fetchall()
    found = {r[0]: (r[1] or 0, r[2] or 0) for r in rows}
    return [(h, *found.get(h, (0, 0))) for h in range(first, int(now) // HOUR * HOUR + 1, HOUR)]


def _rolled_span(conn: sqlite3.Connection, first: int) -> Tuple[int, int]:
    """The rolled-up hours to read from ``am_hours`` for the minute buckets from ``first`` on, ``[lo, hi)``;
    the minute buckets before lo (the part of an hour ``first`` falls in, hours not backfilled yet) and
    from hi on (normally the current hour). lo == hi: every minute from the buckets."""
    whole = -(-first // HOUR) * HOUR      # the first hour wholly after ``first``
    rolled = am_hours.span(conn)
    lo, hi = (first, first) if rolled is None else (max(whole, rolled[0]), max(whole, rolled[1]))
    return (first, first) if lo >= hi else (lo, hi)


def window_sums(conn: sqlite3.Connection, object_ids: Sequence[str], first: int,
                chunk: int = 500) -> Dict[str, Tuple[int, int]]:
    """Per object with mail from the minute bucket ``first`` on: (messages, recipients). The rolled-up
    hours from ``am_hours``, the minutes around them from ``am_buckets``: a day is 24 rows an object,
    not 1,440."""
    lo, hi = _rolled_span(conn, first)
    ids = list(dict.fromkeys(object_ids))
    out: Dict[str, Tuple[int, int]] = {}
    for i in range(0, len(ids), chunk):
        part = ids[i:i + chunk]
        marks = ",".join("?" * len(part))
        minutes = (f"SELECT object_id, messages, recipients FROM am_buckets"
                   f" WHERE object_id IN ({marks}) AND bucket >= ? AND bucket < ?")
        parts, args = [minutes], [*part, hi, 2 ** 62]
        if lo > first:
            parts.append(minutes)
            args += [*part, first, lo]
        if lo < hi:
            parts.append(f"SELECT object_id, messages, recipients FROM am_hours"
                         f" WHERE object_id IN ({marks}) AND hour >= ? AND hour < ?")
            args += [*part, lo, hi]
        out.update((r[0], (r[1], r[2])) for r in conn.execute(
            f"SELECT object_id, SUM(messages), SUM(recipients) FROM ({' UNION ALL '.join(parts)})"
            f" GROUP BY object_id", args))
    return out


def period_totals(conn: sqlite3.Connection, object_ids: Sequence[str], since: float, limit_mode: int,
                  chunk: int = 500) -> Dict[str, Tuple[List[int], List[int]]]:
    """Per object: what it sent in each hour, and in each (UTC) day, from ``since`` on, in the limit
    mode's unit (messages or recipients); periods without mail are left out (what ``core/suggest.py``
    suggests a limit from). Complete hours the daemon has rolled up come from ``am_hours``; the
    minute buckets only for the rest (:mod:`.am_hours`)."""
    column = "recipients" if limit_mode == limits.BY_RECIPIENTS else "messages"
    first = bucket_of(since)
    lo, hi = _rolled_span(conn, first)
    ids = list(dict.fromkeys(object_ids))
    out: Dict[str, Tuple[List[int], List[int]]] = {oid: ([], []) for oid in ids}
    for i in range(0, len(ids), chunk):
        part = ids[i:i + chunk]
        marks = ",".join("?" * len(part))
        minutes = (f"SELECT object_id, bucket / {HOUR} AS hour, SUM({column}) AS total FROM am_buckets"
                   f" WHERE object_id IN ({marks}) AND bucket >= ? AND bucket < ? GROUP BY object_id, hour")
        parts, args = [minutes], [*part, hi, 2 ** 62]
        if lo > first:
            parts.append(minutes)
            args += [*part, first, lo]
        if lo < hi:
            parts.append(f"SELECT object_id, hour / {HOUR}, {column} FROM am_hours"
                         f" WHERE object_id IN ({marks}) AND hour >= ? AND hour < ?")
            args += [*part, lo, hi]
        sql = " UNION ALL ".join(parts)
        # A row per object and day, its hours' totals in one string: a page's 30 days of hours are
        # some 100,000 values, which Python would otherwise fetch one row each.
        rows = conn.execute(f"SELECT object_id, SUM(total), group_concat(total) FROM ({sql})"
                            f" WHERE total GROUP BY object_id, hour * {HOUR} / {DAY}", args)
        for object_id, day_total, hour_totals in rows:
            hours, days = out[object_id]
            hours.extend(map(int, hour_totals.split(",")))
            days.append(day_total)
    return out
