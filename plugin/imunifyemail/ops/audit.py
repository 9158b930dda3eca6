"""The audit trail: every state change recorded with who, from where, what, which ids and the outcome.

Each operation that changes something calls :func:`record` once, after the change (or its failure);
the daemon records its own changes (automatic release, containment) in the transaction that makes
them. The administrator reads every entry; a hosted user the entries about their own account.
"""
import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..context import Context
from ..core.accounts import ROOT
from ..errors import InvalidInput
from ..store import audit as audit_rows
from ..store.audit import AuditEntry
from .caller import DAEMON, WHM, Caller, own_account
from .paging import MAX_PAGE

log = logging.getLogger("imunifyemail.audit")

OK = "ok"
DAEMON_ACTOR = "imunifyemaild"


def role(caller: Caller) -> str:
    if caller.via == DAEMON:
        return "daemon"
    if not caller.is_admin:
        return "hosted user"
    return "whm user" if caller.via == WHM and caller.login != ROOT else "root"


def record(ctx: Context, caller: Caller, action: str, account: Optional[str] = None, ids: Sequence[str] = (),
           detail: Optional[Dict[str, Any]] = None, outcome: str = OK) -> None:
    """One entry (and the same line in the log). A failure to write it is logged, never raised:
    the change it describes has been made."""
    detail = detail or {}
    log.info("%s by %s%s%s%s: %s", action, caller.describe(), f" account={account}" if account else "",
             f" ids={','.join(ids)}" if ids else "",
             "".join(f" {k}={v}" for k, v in sorted(detail.items())), outcome)
    try:
        audit_rows.add(ctx.conn, int(ctx.now()), caller.login, role(caller), caller.via, account, action, ids,
                       detail, outcome)
    except Exception:
        log.exception("could not write the audit entry for %s", action)


def insert_daemon(conn, at: int, action: str, account: Optional[str], ids: Sequence[str] = (),
                  detail: Optional[Dict[str, Any]] = None, outcome: str = OK) -> None:
    """The daemon's own change (automatic release, containment), inside the transaction that makes it."""
    audit_rows.insert(conn, at, DAEMON_ACTOR, "daemon", DAEMON, account, action, ids, detail or {}, outcome)


def record_mail(ctx: Context, caller: Caller, action: str, messages: Sequence, done: Sequence[str],
                failure: str = "") -> None:
    """An action on held messages: one entry per account they belong to, with its ids; the outcome
    says which were not done and why."""
    by_account: Dict[str, List[str]] = {}
    for msg in messages:
        by_account.setdefault(msg.account, []).append(msg.email_id)
    for account, ids in by_account.items():
        left = [i for i in ids if i not in done]
        record(ctx, caller, action, account=account, ids=ids, detail={"not_done": left} if left else None,
               outcome=OK if not left else (failure or "not done"))


def entries(ctx: Context, caller: Caller, since_seconds: Optional[int] = None, account: Optional[str] = None,
            limit: int = 100, offset: int = 0) -> Tuple[List[AuditEntry], int]:
    """The entries a caller may read, newest first: ``since_seconds`` ago at most; a hosted user's
    ``account`` is always their own (naming another is "not found")."""
    if since_seconds is not None and since_seconds < 0:
        raise InvalidInput("--since: must be 0 or more seconds")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInput(f"invalid page of the audit trail (1 to {MAX_PAGE} entries)")
    if not caller.is_admin:
        account = own_account(caller, account)
    elif account == ROOT:
        account = None
    since = None if since_seconds is None else int(ctx.now()) - since_seconds
    return audit_rows.entries(ctx.conn, since, account, limit, offset)
