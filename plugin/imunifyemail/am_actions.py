"""Activity Monitor operations, shared by ``ie-cli am`` and the web app.

Statistics, per-object limit overrides, the server's default limits and the
whitelisting of sender objects. As in :mod:`imunifyemail.actions`, every
refusal is an :class:`~imunifyemail.actions.ActionError` with a one-line
message, and everything is validated before anything is changed.

Whitelisting a sender object is not a list of its own: a domain or sender
email object is added to (removed from) the one sender whitelist that
``ie-cli whitelist sender`` manages, which bypasses scanning and limits.
"""
import logging
import sqlite3
import uuid
from typing import Dict, Optional

from .actions import Forbidden, InvalidInput, NotFoundError
from .core import limits
from .core.addresses import normalize_domain, normalize_email
from .core.limits import ServerLimits
from .store import am_stats, settings
from .store.activity import Activity, ObjectNotFound, load_server_limits, save_server_limits

log = logging.getLogger(__name__)

DEFAULT_SINCE = 3600
DEFAULT_PAGE = 25
MAX_PAGE = 1000
MAX_OFFSET = 2**62
MAX_LIMIT = 2**31 - 1          # far above any hourly limit, well inside SQLite's integers
DAY = 86400

# How a sender object type reads in a sentence ("an account", "a sender email").
_NOUNS = {limits.ACCOUNT: "an account", limits.DOMAIN: "a domain", limits.SENDER_EMAIL: "a sender email",
          limits.SCRIPT: "a script"}
_KINDS = {limits.DOMAIN: "domain", limits.SENDER_EMAIL: "email"}   # whitelist entry kind of an object


# -- statistics ---------------------------------------------------------------

def _filter(value: Optional[str]) -> Optional[str]:
    """An empty filter is no filter (as an unset flag)."""
    if value is None or not value.strip():
        return None
    return value.strip()


def stats_query(retention_days: int, account_name: Optional[str] = None, domain: Optional[str] = None,
                sender_email: Optional[str] = None, script_name: Optional[str] = None,
                since: int = DEFAULT_SINCE, limit: int = DEFAULT_PAGE, offset: int = 0) -> am_stats.StatsQuery:
    """A validated query: ``since`` within the retention, a sane page, domain and
    email filters normalized (lower case), names matched exactly."""
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


def stats(conn: sqlite3.Connection, query: am_stats.StatsQuery, now: float) -> dict:
    """The nested view of ``am stats`` with the current limits and whitelist."""
    return am_stats.stats(conn, query, load_server_limits(conn), settings.load_whitelist(conn), now)


# -- sender objects -------------------------------------------------------------

def validate_object_id(object_id: Optional[str]) -> str:
    """The canonical (lower-case, hyphenated) UUID of a sender object."""
    value = (object_id or "").strip()
    if not value:
        raise InvalidInput("no sender object id given (the ids are in am stats)")
    try:
        canonical = str(uuid.UUID(value))
    except ValueError:
        canonical = ""
    if canonical != value.lower():
        raise InvalidInput(f'invalid sender object id "{object_id}": must be a UUID (see am stats)')
    return canonical


def validate_so_type(so_type: Optional[str]) -> str:
    if so_type not in limits.TYPES:
        given = f' "{so_type}"' if so_type else ""
        raise InvalidInput(f"invalid sender object type{given}: use one of {', '.join(limits.TYPES)}")
    return so_type


def get_object(conn: sqlite3.Connection, object_id: Optional[str]) -> sqlite3.Row:
    canonical = validate_object_id(object_id)
    try:
        return Activity(conn).get(canonical)
    except ObjectNotFound:
        raise NotFoundError(f'sender object "{canonical}" not found') from None


def validate_limit(limit: int, what: str, minus_one: str) -> None:
    if limit < limits.NO_OVERRIDE or limit > MAX_LIMIT:
        raise InvalidInput(f"invalid {what} {limit}: use 0 (unlimited) to {MAX_LIMIT}, or -1 {minus_one}")


def set_limit(conn: sqlite3.Connection, object_id: Optional[str], so_type: Optional[str], limit: int) -> None:
    """Tier 2: the object's own hourly limit; 0 = unlimited, -1 = remove it (the
    server default applies again). The object must be of type ``so_type``."""
    so_type = validate_so_type(so_type)
    canonical = validate_object_id(object_id)
    validate_limit(limit, "limit", "to remove the override")
    row = get_object(conn, canonical)
    if row["type"] != so_type:
        raise InvalidInput(f'sender object "{canonical}" is {_NOUNS[row["type"]]}, not {_NOUNS[so_type]}')
    try:
        Activity(conn).set_override(canonical, so_type, limit)
    except ObjectNotFound:   # removed meanwhile
        raise NotFoundError(f'sender object "{canonical}" not found') from None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    log.info("sender limit of %s %s (%s): %s", so_type, row["name"], canonical,
             "override removed" if limit == limits.NO_OVERRIDE else limit)


# -- server settings ------------------------------------------------------------

SERVER_KEYS = ("account", "domain", "limit_mode", "script", "sender_email")


def server_settings(conn: sqlite3.Connection) -> Dict[str, int]:
    return load_server_limits(conn).as_dict()


def set_server_settings(conn: sqlite3.Connection, changes: Dict[str, Optional[int]]) -> Dict[str, int]:
    """Tier 1: the default hourly limit per object type and the limit mode;
    -1 (or None) leaves a value unchanged. All values are checked first."""
    unknown = sorted(set(changes) - set(SERVER_KEYS))
    if unknown:
        raise InvalidInput(f"unknown server setting: {unknown[0]}")
    for key in limits.TYPES:
        value = changes.get(key)
        if value is not None:
            validate_limit(value, f"{key.replace('_', '-')} limit", "to leave it unchanged")
    try:
        new: ServerLimits = save_server_limits(conn, changes)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    changed = {k: v for k, v in changes.items() if v is not None and v != -1}
    if changed:
        log.info("server sender limits changed: %s",
                 ", ".join(f"{k}={v}" for k, v in sorted(changed.items())))
    return new.as_dict()


# -- whitelisting -----------------------------------------------------------------

def _whitelist_entry(conn: sqlite3.Connection, object_id: Optional[str]):
    row = get_object(conn, object_id)
    if row["type"] not in limits.WHITELISTABLE:
        raise Forbidden(f"{_NOUNS[row['type']]} cannot be whitelisted: only domain and sender_email objects can")
    return row, (_KINDS[row["type"]], row["name"])


def whitelist_object(conn: sqlite3.Connection, object_id: Optional[str]) -> str:
    """Tier 3: put a domain or sender email object on the sender whitelist
    (its mail then bypasses scanning and limits); returns its name."""
    row, entry = _whitelist_entry(conn, object_id)
    settings.whitelist_add(conn, "sender", [entry])
    log.info("sender whitelist: added %s (%s %s)", entry[1], row["type"], row["id"])
    return entry[1]


def unwhitelist_object(conn: sqlite3.Connection, object_id: Optional[str]) -> str:
    row, entry = _whitelist_entry(conn, object_id)
    if settings.whitelist_remove(conn, "sender", [entry[1]]):
        raise NotFoundError(f'{row["type"].replace("_", " ")} "{entry[1]}" is not in the sender whitelist')
    log.info("sender whitelist: removed %s (%s %s)", entry[1], row["type"], row["id"])
    return entry[1]
