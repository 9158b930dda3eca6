"""Reading the quarantine: one message, or a page of them with filters.

A page is chosen by the time index, newest first (or oldest first), either
by offset (``ie-cli emails list --offset``) or by keyset — "after this
message" — which costs the same on page 1 and page 40,000. Substring
filters on subject, sender and recipients use the trigram index
(:mod:`.search`) when it can answer them. Scope ``None`` is every account;
an account name is that account's own mail (``"root"``: the unattributed
mail held under root).
"""
import json
import sqlite3
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from ..core.message import ScriptHeader
from . import search

ALL_ACCOUNTS = None
NEWEST_FIRST = "desc"
OLDEST_FIRST = "asc"
SMALL_SCOPE = 20_000   # an account with fewer messages is searched by scanning them


class NotFound(Exception):
    pass


@dataclass(frozen=True)
class StoredMessage:
    email_id: str
    account: str
    received_at: int
    sender: str
    recipients: List[str]
    subject: str
    size_bytes: int
    reasons: List[str]
    filter_score: Optional[float]
    filter_action: str
    script: ScriptHeader
    header_from: str
    file: str


@dataclass
class ListQuery:
    account: Optional[str] = ALL_ACCOUNTS
    sender: Optional[str] = None       # substring of the envelope sender
    recipient: Optional[str] = None    # substring of any recipient
    subject: Optional[str] = None      # substring of the subject
    reason: Optional[str] = None       # exact reason
    since: Optional[int] = None        # received_at >= since (unix seconds)
    until: Optional[int] = None        # received_at < until
    limit: int = 25
    offset: int = 0
    ids: Sequence[str] = field(default_factory=tuple)
    after: Optional[str] = None        # keyset: the page after this email id (in the chosen order)
    order: str = NEWEST_FIRST
    sender_is: Optional[str] = None         # exactly this envelope sender
    sender_domain_is: Optional[str] = None  # an envelope sender in exactly this domain
    script_is: Optional[str] = None         # sent by exactly this script (its sender object name)

    def has_filters(self) -> bool:
        return any(v is not None for v in (self.sender, self.recipient, self.subject, self.reason,
                                           self.since, self.until, self.sender_is, self.sender_domain_is,
                                           self.script_is)) or bool(self.ids)


COLUMNS = ("m.email_id, a.name AS account, m.received_at, m.sender, m.recipients, m.subject, "
           "m.size_bytes, m.reasons, m.filter_score, m.filter_action, m.script_raw, m.script_domain, "
           "m.script_path, m.header_from, m.file")


def row_to_message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        email_id=row["email_id"], account=row["account"], received_at=row["received_at"],
        sender=row["sender"], recipients=json.loads(row["recipients"]), subject=row["subject"],
        size_bytes=row["size_bytes"], reasons=[r for r in row["reasons"].split(",") if r],
        filter_score=row["filter_score"], filter_action=row["filter_action"],
        script=ScriptHeader(row["script_raw"], row["script_domain"], row["script_path"]),
        header_from=row["header_from"], file=row["file"],
    )


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def scope_clause(account: Optional[str]) -> Tuple[str, list]:
    if account is ALL_ACCOUNTS:
        return "1", []
    return "m.account_id = (SELECT id FROM accounts WHERE name = ?)", [account]


class _Where:
    def __init__(self):
        self.clauses: List[str] = []
        self.params: list = []
        self.driver: Optional[Tuple[str, str]] = None   # (column, fts query) the page starts from

    def add(self, clause: str, *params) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def sql(self) -> str:
        return " AND ".join(self.clauses) or "1"


def _use_index(conn: sqlite3.Connection, q: ListQuery) -> bool:
    """The trigram index pays off over many messages; one account's few are scanned as they are."""
    if not search.available(conn):
        return False
    if q.account is ALL_ACCOUNTS:
        return True
    row = conn.execute("SELECT message_count FROM accounts WHERE name = ?", (q.account,)).fetchone()
    return row is not None and row[0] > SMALL_SCOPE


def _where(conn: sqlite3.Connection, q: ListQuery) -> _Where:
    w = _Where()
    clause, args = scope_clause(q.account)
    if clause != "1":
        w.add(clause, *args)
    indexed = _use_index(conn, q)
    for column, value in (("subject", q.subject), ("sender", q.sender), ("recipients", q.recipient)):
        if value is None:
            continue
        fts = search.phrase(value) if indexed else None
        if fts is not None and w.driver is None:
            w.driver = (column, fts)
        elif fts is not None:
            w.add(f"m.id IN (SELECT rowid FROM {search.TABLE} WHERE {column} MATCH ?)", fts)
        elif column == "recipients":
            w.add("EXISTS (SELECT 1 FROM json_each(m.recipients) AS r WHERE r.value LIKE ? ESCAPE '\\')",
                  _like(value))
        else:
            w.add(f"m.{column} LIKE ? ESCAPE '\\'", _like(value))
        if fts is not None and column == "recipients":   # one recipient, not the list's text
            w.add("EXISTS (SELECT 1 FROM json_each(m.recipients) AS r WHERE r.value LIKE ? ESCAPE '\\')",
                  _like(value))
    if q.sender_is is not None:
        w.add("m.sender = ?", q.sender_is)
    if q.sender_domain_is is not None:
        w.add("m.sender LIKE ? ESCAPE '\\'", "%@" + _like(q.sender_domain_is)[1:-1])
    if q.script_is is not None:
        w.add("m.script_name = ?", q.script_is)
    if q.reason is not None:
        w.add("(',' || m.reasons || ',') LIKE ?", f"%,{q.reason},%")
    if q.since is not None:
        w.add("m.received_at >= ?", q.since)
    if q.until is not None:
        w.add("m.received_at < ?", q.until)
    if q.ids:
        w.add(f"m.email_id IN ({','.join('?' * len(q.ids))})", *q.ids)
    return w


def _mark(conn: sqlite3.Connection, q: ListQuery) -> sqlite3.Row:
    """The message a keyset page starts after, looked for within the query's scope only: another
    account's id is :class:`NotFound`, as an unknown one (a position would tell its received time)."""
    where, args = scope_clause(q.account)
    mark = conn.execute(f"SELECT m.received_at, m.id FROM messages m WHERE m.email_id = ? AND {where}",
                        (q.after, *args)).fetchone()
    if mark is None:
        raise NotFound(q.after)
    return mark


def _search_page(conn: sqlite3.Connection, q: ListQuery, w: _Where) -> Tuple[List[StoredMessage], int]:
    """A page driven by the trigram index, walked in arrival order (message ids: the order of
    received_at but for a clock stepping back), so a common word stops after one page's worth."""
    column, fts = w.driver
    direction = "DESC" if q.order == NEWEST_FIRST else "ASC"
    where, params = w.sql(), list(w.params)
    page_where, page_params = where, list(params)
    if q.after is not None:
        mark = _mark(conn, q)
        page_where += f" AND s.rowid {'<' if direction == 'DESC' else '>'} ?"
        page_params.append(mark["id"])
    source = f"{search.TABLE} s CROSS JOIN messages m ON m.id = s.rowid"
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM {source} JOIN accounts a ON a.id = m.account_id"
        f" WHERE s.{column} MATCH ? AND {page_where} ORDER BY s.rowid {direction} LIMIT ? OFFSET ?",
        (fts, *page_params, q.limit, q.offset)).fetchall()
    if where == "1":
        total = conn.execute(f"SELECT COUNT(*) FROM {search.TABLE} WHERE {column} MATCH ?", (fts,)).fetchone()[0]
    else:
        total = conn.execute(f"SELECT COUNT(*) FROM {source} WHERE s.{column} MATCH ? AND {where}",
                             (fts, *params)).fetchone()[0]
    return [row_to_message(r) for r in rows], total


def list_messages(conn: sqlite3.Connection, q: ListQuery) -> Tuple[List[StoredMessage], int]:
    """A page and the number of messages that match in all; :class:`NotFound` when ``q.after`` is not a
    message in the query's scope."""
    w = _where(conn, q)
    if w.driver is not None:
        return _search_page(conn, q, w)
    direction = "DESC" if q.order == NEWEST_FIRST else "ASC"
    page_where, page_params = w.sql(), list(w.params)
    if q.after is not None:
        mark = _mark(conn, q)
        page_where += f" AND (m.received_at, m.id) {'<' if direction == 'DESC' else '>'} (?, ?)"
        page_params += [mark["received_at"], mark["id"]]
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM messages m JOIN accounts a ON a.id = m.account_id WHERE {page_where}"
        f" ORDER BY m.received_at {direction}, m.id {direction} LIMIT ? OFFSET ?",
        (*page_params, q.limit, q.offset)).fetchall()
    if q.has_filters():
        total = conn.execute(f"SELECT COUNT(*) FROM messages m WHERE {w.sql()}", w.params).fetchone()[0]
    elif q.account is ALL_ACCOUNTS:
        total = conn.execute("SELECT COALESCE(SUM(message_count), 0) FROM accounts").fetchone()[0]
    else:
        row = conn.execute("SELECT message_count FROM accounts WHERE name = ?", (q.account,)).fetchone()
        total = row[0] if row else 0
    return [row_to_message(r) for r in rows], total


def get_message(conn: sqlite3.Connection, email_id: str, account: Optional[str] = ALL_ACCOUNTS) -> StoredMessage:
    where, args = scope_clause(account)
    row = conn.execute(
        f"SELECT {COLUMNS} FROM messages m JOIN accounts a ON a.id = m.account_id"
        f" WHERE m.email_id = ? AND {where}", (email_id, *args)).fetchone()
    if row is None:
        raise NotFound(email_id)
    return row_to_message(row)
