"""`ie-cli am stats`: the nested view of sender objects with activity in a window.

Accounts are paged in name order (``--limit`` counts accounts), each with its
domains (and their sender emails) and its scripts; only objects with mail in
the window appear. The page is chosen with one index seek per account, and
only the page's objects are summed, so the cost follows the page size, not
the number of objects on the server.
"""
import sqlite3
from dataclasses import dataclass
from typing import Dict, List, Optional

from ..core import limits
from ..core.limits import ServerLimits, Usage
from ..core.verdict import Whitelist
from .activity import bucket_of


@dataclass
class StatsQuery:
    account_name: Optional[str] = None
    domain: Optional[str] = None
    sender_email: Optional[str] = None
    script_name: Optional[str] = None
    since: int = 3600
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
    return ("SELECT o.id, o.name, o.limit_override FROM sender_objects o WHERE " + " AND ".join(clauses)
            + " ORDER BY o.name LIMIT :limit OFFSET :offset")


def stats(conn: sqlite3.Connection, q: StatsQuery, server: ServerLimits, whitelist: Whitelist, now: float) -> dict:
    params = {"since": bucket_of(now - q.since), "limit": q.limit, "offset": q.offset,
              "account_name": q.account_name, "domain": q.domain, "sender_email": q.sender_email,
              "script_name": q.script_name}
    page = conn.execute(_page_sql(q), params).fetchall()
    if not page:
        return {"accounts": []}
    ids = [r["id"] for r in page]
    marks = ",".join("?" * len(ids))
    objects = conn.execute(f"SELECT id, type, name, account_id, parent_id, limit_override FROM sender_objects"
                           f" WHERE account_id IN ({marks})", ids).fetchall()
    in_page = f"SELECT id FROM sender_objects WHERE account_id IN ({marks})"
    sums = {r[0]: (r[1], r[2]) for r in conn.execute(
        f"SELECT object_id, SUM(messages), SUM(quarantined) FROM am_buckets"
        f" WHERE object_id IN ({in_page}) AND bucket >= ? GROUP BY object_id", (*ids, params["since"]))}
    recent = {r[0]: (r[1], r[2]) for r in conn.execute(
        f"SELECT object_id, COUNT(*), SUM(recipients) FROM am_events"
        f" WHERE object_id IN ({in_page}) AND at > ? GROUP BY object_id", (*ids, now - limits.WINDOW_SECONDS))}
    view = _View(server, whitelist, sums, recent)

    children: Dict[str, List[sqlite3.Row]] = {}
    for obj in sorted(objects, key=lambda r: r["name"]):
        if obj["type"] != limits.ACCOUNT and obj["id"] in sums:
            children.setdefault(obj["parent_id"], []).append(obj)

    def wanted(obj: sqlite3.Row, name: Optional[str]) -> bool:
        return name is None or obj["name"] == name

    accounts = []
    for acct in page:
        domains = []
        if q.script_name is None:
            for dom in children.get(acct["id"], []):
                if dom["type"] != limits.DOMAIN or not wanted(dom, q.domain):
                    continue
                senders = [view.item(s, account_id=acct["id"], domain_id=dom["id"])
                           for s in children.get(dom["id"], []) if wanted(s, q.sender_email)]
                if q.sender_email is not None and not senders:
                    continue
                domains.append(view.item(dom, account_id=acct["id"], sender_emails=senders or None))
        scripts = []
        if q.domain is None and q.sender_email is None:
            scripts = [view.item(s, account_id=acct["id"]) for s in children.get(acct["id"], [])
                       if s["type"] == limits.SCRIPT and wanted(s, q.script_name)]
        accounts.append(view.item(acct, so_type=limits.ACCOUNT, domains=domains or None, scripts=scripts or None))
    return {"accounts": accounts}


class _View:
    def __init__(self, server: ServerLimits, whitelist: Whitelist, sums, recent):
        self.server, self.whitelist, self.sums, self.recent = server, whitelist, sums, recent

    def item(self, obj: sqlite3.Row, so_type: Optional[str] = None, **extra) -> dict:
        so_type = so_type or obj["type"]
        messages, quarantined = self.sums.get(obj["id"], (0, 0))
        last_hour = self.recent.get(obj["id"], (0, 0))
        usage = Usage(so_type, obj["id"], obj["limit_override"], last_hour[0], last_hour[1] or 0)
        whitelisted = (obj["name"] in self.whitelist.sender_domains if so_type == limits.DOMAIN else
                       obj["name"] in self.whitelist.sender_emails if so_type == limits.SENDER_EMAIL else False)
        out = {
            "exclusion": obj["limit_override"] is not None,
            "id": obj["id"],
            "limit": limits.effective_limit(so_type, obj["limit_override"], self.server),
            "messages": messages or 0,
            "name": obj["name"],
            "quarantined": quarantined or 0,
            "rateLimited": limits.rate_limited(usage, self.server),
            "whitelisted": whitelisted,
        }
        out.update(extra)
        return dict(sorted(out.items()))
