"""The Activity Monitor: statistics, per-object limits, the server's defaults, whitelisting objects.

Whitelisting a sender object is not a list of its own: a domain or sender email
object is added to (removed from) the one sender whitelist that
``ie-cli whitelist sender`` manages, which bypasses scanning and limits.
"""
import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..context import Context
from ..core import accounts as account_rules
from ..core import limits, observe, suggest
from ..core.addresses import normalize_domain, normalize_email
from ..core.ids import canonical_uuid
from ..core.limits import ServerLimits
from ..core.verdict import Whitelist
from ..core.window import HOUR
from ..errors import Forbidden, InvalidInput, NotFoundError
from ..store import am_stats, observed, settings
from ..store.activity import SERVER_TOTAL, ObjectNotFound
from ..store.settings import load_server_limits, save_server_limits
from . import audit
from .caller import Caller, require_admin
from .paging import MAX_PAGE

log = logging.getLogger(__name__)

DEFAULT_SINCE = HOUR
DEFAULT_PAGE = 25
MAX_OFFSET = 2 ** 62
DAY = 86400

# How a sender object type reads in a sentence ("an account", "a sender email").
NOUNS = {limits.ACCOUNT: "an account", limits.DOMAIN: "a domain", limits.SENDER_EMAIL: "a sender email",
         limits.SCRIPT: "a script"}
_KINDS = {limits.DOMAIN: "domain", limits.SENDER_EMAIL: "email"}   # whitelist entry kind of an object


# -- statistics ---------------------------------------------------------------

def _filter(value: Optional[str]) -> Optional[str]:
    """An empty filter is no filter (as an unset flag)."""
    if value is None or not value.strip():
        return None
    return value.strip()


def stats_query(ctx: Context, account_name: Optional[str] = None, domain: Optional[str] = None,
                sender_email: Optional[str] = None, script_name: Optional[str] = None,
                since: int = DEFAULT_SINCE, limit: int = DEFAULT_PAGE, offset: int = 0) -> am_stats.StatsQuery:
    """A validated query: ``since`` within the retention, a sane page, domain and
    email filters normalized (lower case), names matched exactly."""
    retention_days = ctx.config["activity_monitor"]["retention_days"]
    longest = retention_days * DAY
    if not 1 <= since <= longest:
        raise InvalidInput(f"invalid since {since}: must be from 1 to {longest} seconds "
                           f"(statistics are kept {retention_days} days)")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"invalid limit {limit}: must be from 1 to {MAX_PAGE} accounts")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(f"invalid offset {offset}: must be 0 or more")
    domain, sender_email = _filter(domain), _filter(sender_email)
    try:
        domain = None if domain is None else normalize_domain(domain)
        sender_email = None if sender_email is None else normalize_email(sender_email)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    return am_stats.StatsQuery(account_name=_filter(account_name), domain=domain, sender_email=sender_email,
                               script_name=_filter(script_name), since=since, limit=limit, offset=offset)


@dataclass(frozen=True)
class Stats:
    accounts: List[am_stats.ObjectStats]
    server: ServerLimits
    whitelist: Whitelist
    suggestions: Dict[str, suggest.Suggestion] = field(default_factory=dict)   # by object id


def _tree_ids(accounts: List[am_stats.ObjectStats]) -> List[str]:
    out = []
    for a in accounts:
        out.append(a.id)
        for d in a.domains:
            out.append(d.id)
            out.extend(s.id for s in d.sender_emails)
        out.extend(s.id for s in a.scripts)
    return out


def suggestions(ctx: Context, object_ids: List[str], server: ServerLimits) -> Dict[str, suggest.Suggestion]:
    """Each object's suggested limits, from what it sent over the last 30 days (core/suggest.py)."""
    since = ctx.clock() - suggest.HISTORY_DAYS * DAY
    return {oid: suggest.suggest(hours, days) for oid, (hours, days)
            in am_stats.period_totals(ctx.conn, object_ids, since, server.limit_mode).items()}


def stats(ctx: Context, caller: Caller, query: am_stats.StatsQuery) -> Stats:
    """The nested view of ``am stats``, with what its limits and whitelist flags are judged by, and each
    object's suggested limits."""
    require_admin(caller, "see the Activity Monitor")
    accounts, server = am_stats.stats(ctx.conn, query, ctx.clock()), load_server_limits(ctx.conn)
    return Stats(accounts, server, settings.load_whitelist(ctx.conn, ctx.clock()),
                 suggestions(ctx, _tree_ids(accounts), server))


def hourly(ctx: Context, caller: Caller, since: int, account_name: Optional[str] = None) -> List[Tuple[int, int, int]]:
    """(hour, sent, quarantined) over the last ``since`` seconds: the server's, or one account's."""
    require_admin(caller, "see the Activity Monitor")
    object_id = SERVER_TOTAL
    if account_name:
        row = ctx.conn.execute("SELECT id FROM sender_objects WHERE type = ? AND name = ?",
                               (limits.ACCOUNT, account_name)).fetchone()
        if row is None:
            return am_stats.hourly(ctx.conn, "", int(ctx.clock()) - since, ctx.clock())
        object_id = row["id"]
    return am_stats.hourly(ctx.conn, object_id, int(ctx.clock()) - since, ctx.clock())


# -- sender objects -------------------------------------------------------------

def validate_object_id(object_id: Optional[str]) -> str:
    """The canonical (lower-case, hyphenated) UUID of a sender object."""
    if not (object_id or "").strip():
        raise InvalidInput("no sender object id given (the ids are in am stats)")
    canonical = canonical_uuid(object_id)
    if canonical is None:
        raise InvalidInput(f'invalid sender object id "{object_id}": must be a UUID (see am stats)')
    return canonical


def validate_so_type(so_type: Optional[str]) -> str:
    if so_type not in limits.TYPES:
        given = f' "{so_type}"' if so_type else ""
        raise InvalidInput(f"invalid sender object type{given}: use one of {', '.join(limits.TYPES)}")
    return so_type


def get_object(ctx: Context, object_id: Optional[str]):
    canonical = validate_object_id(object_id)
    try:
        return ctx.activity.get(canonical)
    except ObjectNotFound:
        raise NotFoundError(f'sender object "{canonical}" not found') from None


def _account_of(ctx: Context, row) -> Optional[str]:
    """The account name a sender object belongs to (for the audit trail)."""
    if row["type"] == limits.ACCOUNT:
        return row["name"]
    try:
        return ctx.activity.get(row["account_id"])["name"]
    except ObjectNotFound:
        return None


def validate_object_settings(limit: Optional[int] = None, observe_value: Optional[int] = None,
                             daily_limit: Optional[int] = None) -> None:
    """A sender object's own settings (None: not given), all checked before any is changed."""
    for error in (None if limit is None else limits.limit_error(limit, "limit", "to remove the override"),
                  None if daily_limit is None else limits.limit_error(daily_limit, "daily limit",
                                                                      "to remove the override"),
                  None if observe_value is None else observe.observe_error(observe_value,
                                                                           "to follow the server's setting")):
        if error:
            raise InvalidInput(error)


def set_limit(ctx: Context, caller: Caller, object_id: Optional[str], so_type: Optional[str], limit: Optional[int],
              daily_limit: Optional[int] = None) -> None:
    """Tier 2: the object's own hourly limit and/or daily limit; 0 = unlimited, -1 = remove it (the
    server default applies again), None = leave it as it is. The object must be of type ``so_type``.
    Both values are checked before either is stored."""
    require_admin(caller, "change sender limits")
    so_type = validate_so_type(so_type)
    canonical = validate_object_id(object_id)
    validate_object_settings(limit=limit, daily_limit=daily_limit)
    row = get_object(ctx, canonical)
    if row["type"] != so_type:
        raise InvalidInput(f'sender object "{canonical}" is {NOUNS[row["type"]]}, not {NOUNS[so_type]}')
    detail = {"type": so_type, "name": row["name"]}
    try:
        if limit is not None:
            ctx.activity.set_override(canonical, limits.override_of(limit))
            detail["limit"] = "server default" if limit == limits.NO_OVERRIDE else limit
        if daily_limit is not None:
            ctx.activity.set_daily_override(canonical, limits.override_of(daily_limit))
            detail["daily_limit"] = "server default" if daily_limit == limits.NO_OVERRIDE else daily_limit
    except ObjectNotFound:   # removed meanwhile
        raise NotFoundError(f'sender object "{canonical}" not found') from None
    audit.record(ctx, caller, "sender limit", account=_account_of(ctx, row), ids=[canonical], detail=detail)


def set_observe(ctx: Context, caller: Caller, object_id: Optional[str], so_type: Optional[str], value: int) -> None:
    """The object's own observe setting: 1 observe (its limits count and report, hold nothing),
    0 enforce, -1 follow the server's. The object must be of type ``so_type``."""
    require_admin(caller, "change sender limits")
    so_type = validate_so_type(so_type)
    canonical = validate_object_id(object_id)
    validate_object_settings(observe_value=value)
    row = get_object(ctx, canonical)
    if row["type"] != so_type:
        raise InvalidInput(f'sender object "{canonical}" is {NOUNS[row["type"]]}, not {NOUNS[so_type]}')
    try:
        ctx.activity.set_observe(canonical, observe.own_setting(value))
    except ObjectNotFound:   # removed meanwhile
        raise NotFoundError(f'sender object "{canonical}" not found') from None
    audit.record(ctx, caller, "sender observe", account=_account_of(ctx, row), ids=[canonical],
                 detail={"type": so_type, "name": row["name"],
                         "observe": "server default" if value == observe.FOLLOW_SERVER else value})


@dataclass(frozen=True)
class Applied:
    object_id: str
    limit: int                      # the hourly limit now its own
    suggestion: suggest.Suggestion


def apply_suggested(ctx: Context, caller: Caller, object_id: Optional[str]) -> Applied:
    """Make the object's suggested hourly limit its own (tier 2); refused when it has no history."""
    require_admin(caller, "change sender limits")
    row = get_object(ctx, object_id)
    suggestion = suggestions(ctx, [row["id"]], load_server_limits(ctx.conn))[row["id"]]
    if suggestion.hourly is None:
        raise InvalidInput(f'{row["type"].replace("_", " ")} "{row["name"]}" sent nothing in the last '
                           f"{suggest.HISTORY_DAYS} days: no limit to suggest")
    set_limit(ctx, caller, row["id"], row["type"], suggestion.hourly, suggestion.daily)   # one audit entry
    return Applied(row["id"], suggestion.hourly, suggestion)


def would_be_holds(ctx: Context, caller: Caller, since: int, limit: int = DEFAULT_PAGE,
                   offset: int = 0) -> Tuple[List[observed.Observed], int]:
    """What observe mode passed that a limit would have held, over the last ``since`` seconds (newest
    first, a page), and how many."""
    require_admin(caller, "see the Activity Monitor")
    retention_days = ctx.config["activity_monitor"]["retention_days"]
    if not 1 <= since <= retention_days * DAY:
        raise InvalidInput(f"invalid since {since}: must be from 1 to {retention_days * DAY} seconds "
                           f"(kept {retention_days} days)")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"invalid limit {limit}: must be from 1 to {MAX_PAGE}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput(f"invalid offset {offset}: must be 0 or more")
    return observed.since(ctx.conn, int(ctx.clock()) - since, limit, offset)


# -- server settings ------------------------------------------------------------

def server_settings(ctx: Context) -> ServerLimits:
    return load_server_limits(ctx.conn)


def set_server_settings(ctx: Context, caller: Caller, changes: Dict[str, Optional[int]]) -> ServerLimits:
    """Tier 1: the default hourly and daily limit per object type, the limit mode and the cap on one
    message's recipients; -1 (or None) leaves a value unchanged. All values are checked first."""
    require_admin(caller, "change the server's sender limits")
    unknown = sorted(set(changes) - set(limits.SETTABLE_KEYS))
    if unknown:
        raise InvalidInput(f"unknown server setting: {unknown[0]}")
    valid = {}
    for key in limits.SETTABLE_KEYS:
        value = changes.get(key)
        if value is None or value == limits.LEAVE:
            continue
        what = "max-recipients" if key == "max_recipients" else f"{key.replace('_', '-')} limit"
        error = (limits.limit_mode_error(value) if key == "limit_mode" else
                 observe.observe_error(value, None) if key == "observe" else
                 limits.limit_error(value, what, "to leave it unchanged"))
        if error:
            raise InvalidInput(error)
        valid[key] = value
    new = save_server_limits(ctx.conn, valid) if valid else load_server_limits(ctx.conn)
    if valid:
        audit.record(ctx, caller, "server sender limits", detail=dict(sorted(valid.items())))
    return new


# -- whitelisting -----------------------------------------------------------------

def is_whitelisted(ctx: Context, row) -> bool:
    return settings.load_whitelist(ctx.conn, ctx.clock()).covers(row["type"], row["name"])


def whitelisted_until(ctx: Context, row) -> Optional[float]:
    """When a whitelisted object's entry ends (None: for good)."""
    return settings.load_whitelist(ctx.conn, ctx.clock()).ends(row["type"], row["name"])


def _whitelist_entry(ctx: Context, object_id: Optional[str]):
    row = get_object(ctx, object_id)
    if row["type"] not in limits.WHITELISTABLE:
        raise Forbidden(f"{NOUNS[row['type']]} cannot be whitelisted: only domain and sender_email objects can")
    account = ctx.activity.get(row["account_id"])["name"]
    if not account_rules.is_verified(account):
        raise Forbidden(f'"{row["name"]}" under {account}: that mail\'s sender is not verified, and no whitelist '
                        f'applies to it (whitelist it under the account that owns it)')
    return row, (_KINDS[row["type"]], row["name"])


def whitelist_object(ctx: Context, caller: Caller, object_id: Optional[str]) -> str:
    """Tier 3: put a domain or sender email object on the sender whitelist
    (its mail then bypasses scanning and limits); returns its name."""
    require_admin(caller, "whitelist senders")
    row, entry = _whitelist_entry(ctx, object_id)
    settings.whitelist_add(ctx.conn, "sender", [entry])
    audit.record(ctx, caller, "whitelist add", account=_account_of(ctx, row), ids=[row["id"]],
                 detail={"list": "sender", "values": [entry[1]]})
    return entry[1]


def unwhitelist_object(ctx: Context, caller: Caller, object_id: Optional[str]) -> str:
    require_admin(caller, "whitelist senders")
    row, entry = _whitelist_entry(ctx, object_id)
    if settings.whitelist_remove(ctx.conn, "sender", [entry[1]]):
        raise NotFoundError(f'{row["type"].replace("_", " ")} "{entry[1]}" is not in the sender whitelist')
    audit.record(ctx, caller, "whitelist remove", account=_account_of(ctx, row), ids=[row["id"]],
                 detail={"list": "sender", "values": [entry[1]]})
    return entry[1]
