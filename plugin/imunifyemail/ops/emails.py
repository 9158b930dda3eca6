"""Held emails: list, show, release, remove — each within what the caller may see — and when the
ones held for a sender limit are expected to leave on their own."""
import logging
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ..context import Context
from ..core import accounts as account_rules
from ..core import autorelease
from ..core import view
from ..core.learning import LEARN_HAM, LEARN_SPAM, Report
from ..core.ids import canonical_uuid
from ..core.limits import DOMAIN, SENDER_EMAIL, SCRIPT
from ..core.verdict import REASONS
from ..errors import ActionError, Forbidden, InvalidInput, NotFoundError
from ..store import accounts as account_rows
from ..store import settings, waiting
from ..store.activity import ObjectNotFound
from ..store.settings import load_server_limits
from ..store.listing import NEWEST_FIRST, OLDEST_FIRST, ListQuery, NotFound, StoredMessage
from ..store.quarantine import Freed
from . import accounts, audit, learning
from .caller import Caller
from .paging import MAX_PAGE

log = logging.getLogger(__name__)

MAX_IDS = MAX_PAGE   # what one page can select


def validate_ids(email_ids: Sequence[str]) -> List[str]:
    """Canonical (lower-case, hyphenated) UUIDs, duplicates dropped."""
    out: List[str] = []
    for value in email_ids:
        canonical = canonical_uuid(value)
        if canonical is None:
            raise InvalidInput(f'invalid email id "{value}"')
        if canonical not in out:
            out.append(canonical)
    if not out:
        raise InvalidInput("no email id given")
    if len(out) > MAX_IDS:
        raise InvalidInput(f"too many email ids: at most {MAX_IDS} at once")
    return out


@dataclass
class EmailQuery:
    """What a list asks for; every field is checked by :func:`list_emails`."""
    account: Optional[str] = None
    unattributed: bool = False
    sender: Optional[str] = None
    recipient: Optional[str] = None
    subject: Optional[str] = None
    reason: Optional[str] = None
    since: Optional[int] = None
    until: Optional[int] = None
    sender_object: Optional[str] = None     # a sender object's id: its mail only ("Go to quarantine")
    limit: int = 25
    offset: int = 0
    after: Optional[str] = None             # keyset paging: the page after this email id
    order: str = NEWEST_FIRST


def _text_filter(value: Optional[str]) -> Optional[str]:
    return value.strip() or None if value is not None else None


def _object_query(ctx: Context, object_id: str, q: ListQuery) -> None:
    """Narrow ``q`` to a sender object's mail."""
    canonical = canonical_uuid(object_id)
    if canonical is None:
        raise InvalidInput(f'invalid sender object id "{object_id}"')
    try:
        row = ctx.activity.get(canonical)
        owner = ctx.activity.get(row["account_id"])["name"]
    except ObjectNotFound:
        raise NotFoundError(f'sender object "{canonical}" not found') from None
    if q.account is not None and q.account != owner:   # another account's: not the caller's to see
        raise NotFoundError(f'sender object "{canonical}" not found')
    q.account = owner
    if row["type"] == DOMAIN:
        q.sender_domain_is = row["name"]
    elif row["type"] == SENDER_EMAIL:
        q.sender_is = row["name"]
    elif row["type"] == SCRIPT:
        q.script_is = row["name"]


def list_emails(ctx: Context, caller: Caller, f: EmailQuery) -> Tuple[List[StoredMessage], int]:
    if f.reason is not None and f.reason not in REASONS:
        raise InvalidInput(f'invalid reason "{f.reason}": use one of {", ".join(REASONS)}')
    if f.limit < 1 or (f.limit > MAX_PAGE and not caller.is_admin):
        raise InvalidInput(f"invalid limit {f.limit}: must be from 1 to {MAX_PAGE}")
    if f.offset < 0:
        raise InvalidInput(f"invalid offset {f.offset}: must be 0 or more")
    if f.order not in (NEWEST_FIRST, OLDEST_FIRST):
        raise InvalidInput(f'invalid order "{f.order}": use {NEWEST_FIRST} or {OLDEST_FIRST}')
    after = None
    if f.after is not None:
        after = canonical_uuid(f.after)
        if after is None:
            raise InvalidInput(f'invalid email id "{f.after}"')
    q = ListQuery(account=accounts.scope(ctx, caller, f.account, f.unattributed),
                  sender=_text_filter(f.sender), recipient=_text_filter(f.recipient),
                  subject=_text_filter(f.subject), reason=f.reason, since=f.since, until=f.until,
                  limit=f.limit, offset=f.offset, after=after, order=f.order)
    if f.sender_object:
        _object_query(ctx, f.sender_object, q)
    try:
        return ctx.quarantine.list(q)
    except NotFound:   # a page after an id out of the caller's scope, or gone: never a position
        raise NotFoundError(f'email "{after}" not found') from None


def expected_releases(ctx: Context, items: Sequence[StoredMessage]) -> Dict[str, int]:
    """When each listed message held only for ratelimit is expected to leave on its own (automatic
    release on; a message that never will, or whose account is blocked, has none). A forecast, from
    its objects' use of their windows and its place in its account's queue (``core/autorelease.py``)."""
    if not settings.load_features(ctx.conn).auto_release:
        return {}
    accounts = sorted({m.account for m in items if autorelease.waits_for_room(m.reasons)})
    if not accounts:
        return {}
    when = waiting.expected(ctx.activity, accounts, ctx.clock(), load_server_limits(ctx.conn))
    return {m.email_id: math.ceil(when[m.email_id]) for m in items if m.email_id in when}


def get_messages(ctx: Context, caller: Caller, email_ids: Sequence[str],
                 account: Optional[str] = None) -> List[StoredMessage]:
    """All the messages or an error naming the first id that is invalid or not visible
    to the caller (a message of another account is "not found")."""
    ids = validate_ids(email_ids)
    scope = accounts.scope(ctx, caller, account)
    found = []
    for email_id in ids:
        try:
            found.append(ctx.quarantine.get(email_id, scope))
        except NotFound:
            raise NotFoundError(f'email "{email_id}" not found') from None
    return found


def read_raw(ctx: Context, msg: StoredMessage) -> bytes:
    try:
        return ctx.quarantine.read(msg)
    except OSError as exc:
        raise ActionError(f'cannot read email "{msg.email_id}": {exc.strerror}') from None


@dataclass(frozen=True)
class HeldEmail:
    """A held message as ``emails show`` and the pages present it: with the filter's own verdict fields
    and no sender's ``X-ImunifyEmail-*`` (:func:`..core.view.judged`, what a release sends)."""
    message: StoredMessage
    raw: bytes                      # as stored: byte for byte as received, a sender's forged fields included
    judged_raw: bytes
    judged: view.ParsedMessage      # judged_raw's fields and body


def show(ctx: Context, caller: Caller, email_id: str, account: Optional[str] = None) -> HeldEmail:
    msg = get_messages(ctx, caller, [email_id], account)[0]
    raw = read_raw(ctx, msg)
    judged = view.judged(raw, msg.filter_action, msg.filter_score)
    return HeldEmail(msg, raw, judged, view.parse(judged))


@dataclass(frozen=True)
class ReleaseQuota:
    """A hosted user's release quota now: recipients per hour, used within the last hour, left."""
    blocked: bool
    limit: int
    used: int

    @property
    def left(self) -> int:
        return account_rules.releases_left(self.limit, self.used)


def release_quota(ctx: Context, caller: Caller) -> ReleaseQuota:
    """The quota of a hosted user's own releases (what they released within the hour counts)."""
    info = ctx.quarantine.account(caller.account)
    used = account_rows.releases_since(ctx.conn, caller.account, account_rows.window_start(ctx.now()),
                                       actors=[caller.login])
    return ReleaseQuota(blocked=info is not None and info.state == account_rules.BLOCK,
                        limit=info.releases_limit if info is not None else account_rules.DEFAULT_RELEASES_PER_HOUR,
                        used=used)


def release(ctx: Context, caller: Caller, email_ids: Sequence[str], account: Optional[str] = None) -> List[str]:
    """Send held messages to their original envelope recipients from their original
    envelope sender; each leaves the quarantine once the mail server accepted it.

    Every id is checked first: one unknown id sends nothing. A hosted user may not
    release while their account is blocked, nor to more recipients than its hourly quota
    (all of a request or none). The sending itself is the releaser's
    (:mod:`.release`): in this process or handed to the daemon."""
    messages = get_messages(ctx, caller, email_ids, account)
    if not caller.is_admin:
        quota = release_quota(ctx, caller)
        refusal = account_rules.release_refusal(
            blocked=quota.blocked, limit=quota.limit, released_last_hour=quota.used,
            asked=[(m.email_id, account_rules.release_cost(m.recipients)) for m in messages])
        if refusal:
            raise Forbidden(refusal)
    return ctx.releaser.release(ctx, caller, messages)


def remove(ctx: Context, caller: Caller, email_ids: Sequence[str], account: Optional[str] = None) -> Freed:
    """Delete messages; one invalid or unknown id deletes nothing."""
    messages = get_messages(ctx, caller, email_ids, account)
    scope = accounts.scope(ctx, caller, account)
    try:
        freed = ctx.quarantine.remove([m.email_id for m in messages], scope)
    except NotFound as exc:
        raise NotFoundError(f'email "{exc.args[0]}" not found') from None
    audit.record_mail(ctx, caller, "delete", messages, [m.email_id for m in messages])
    return freed


def remove_as_spam(ctx: Context, caller: Caller, email_ids: Sequence[str],
                   account: Optional[str] = None) -> Tuple[Freed, Report]:
    """Delete messages as spam: Rspamd learns them first (what it cannot learn is reported, and the
    messages are deleted all the same)."""
    messages = get_messages(ctx, caller, email_ids, account)
    report = learning.teach(ctx, caller, messages, LEARN_SPAM)
    return remove(ctx, caller, [m.email_id for m in messages], account), report


def release_not_spam(ctx: Context, caller: Caller, email_ids: Sequence[str],
                     account: Optional[str] = None) -> Tuple[List[str], Report]:
    """Release messages as not spam: Rspamd learns them first (what it cannot learn is reported, and
    the messages are released all the same)."""
    messages = get_messages(ctx, caller, email_ids, account)
    report = learning.teach(ctx, caller, messages, LEARN_HAM)
    return release(ctx, caller, [m.email_id for m in messages], account), report
