"""Operations on the quarantine and the settings, shared by ``ie-cli`` and the web app.

Each rule lives here once: which account names exist, what a valid email id
is, who may release what, how a release re-injects, what a whitelist accepts.
Every refusal is an :class:`ActionError` whose message is one line fit to
show to the person who asked (the CLI prints it after ``Error:``, the web app
maps the subclass to a status). Validation always happens before anything is
changed or sent.
"""
import base64
import logging
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from . import cpanel
from .core import headers
from .core.addresses import classify, normalize_email
from .core.message import decode_words
from .reinject import RELEASED, ReinjectError, reinject_sync
from .store import settings
from .store.quarantine import ALL_ACCOUNTS, STATES, AccountInfo, Freed, NotFound, Quarantine, StoredMessage

log = logging.getLogger(__name__)

ROOT = "root"   # as an account argument: every account (the administrator's view)


class ActionError(Exception):
    """A refused or failed operation; ``str()`` is one line for the user."""


class InvalidInput(ActionError):
    pass


class NotFoundError(ActionError):
    pass


class Forbidden(ActionError):
    pass


class ReleaseFailed(ActionError):
    pass


# -- accounts ---------------------------------------------------------------

def account_exists(quarantine: Quarantine, name: str) -> bool:
    """``root``, an account with a quarantine subspace, or a cPanel account."""
    return name == ROOT or quarantine.account(name) is not None or name in cpanel.known_accounts()


def _require_account(quarantine: Quarantine, name: str) -> None:
    if not account_exists(quarantine, name):
        raise NotFoundError(f'account "{name}" not found')


def account_scope(quarantine: Quarantine, name: str) -> Optional[str]:
    """The messages ``name`` may see: all of them for ``root``, else its own."""
    _require_account(quarantine, name)
    return ALL_ACCOUNTS if name == ROOT else name


def edit_account(quarantine: Quarantine, name: str, state: Optional[str] = None,
                 limit_bytes: Optional[int] = None) -> AccountInfo:
    """Change an account's state and/or quarantine limit (creating the
    subspace of a cPanel account that has none yet)."""
    if state is not None and state not in STATES:
        raise InvalidInput(f'invalid state "{state}": use {" or ".join(STATES)}')
    if limit_bytes is not None and limit_bytes < 0:
        raise InvalidInput(f"invalid limit {limit_bytes}: must be 0 or more bytes")
    if state is None and limit_bytes is None:
        raise InvalidInput("nothing to change")
    _require_account(quarantine, name)
    info = quarantine.edit_account(name, state=state, limit_bytes=limit_bytes)
    log.info("account %s edited: state=%s limit_bytes=%s", name, info.state, info.limit_bytes)
    return info


def purge_account(quarantine: Quarantine, name: str) -> Freed:
    """Delete every message of an account (of all accounts for ``root``)."""
    freed = quarantine.purge_account(account_scope(quarantine, name))
    log.info("quarantine of %s purged: %d message(s), %d bytes freed", name, freed.count, freed.bytes)
    return freed


# -- emails -----------------------------------------------------------------

def validate_ids(email_ids: Sequence[str]) -> List[str]:
    """Canonical (lower-case, hyphenated) UUIDs, duplicates dropped."""
    out: List[str] = []
    for value in email_ids:
        try:
            canonical = str(uuid.UUID(value))
        except (ValueError, TypeError, AttributeError):
            canonical = ""
        if canonical != value.strip().lower():
            raise InvalidInput(f'invalid email id "{value}"')
        if canonical not in out:
            out.append(canonical)
    if not out:
        raise InvalidInput("no email id given")
    return out


def get_messages(quarantine: Quarantine, email_ids: Sequence[str], account: str) -> List[StoredMessage]:
    """All the messages or an error naming the first id that is invalid or not
    visible to ``account`` (a message of another account is "not found")."""
    ids = validate_ids(email_ids)
    scope = account_scope(quarantine, account)
    found = []
    for email_id in ids:
        try:
            found.append(quarantine.get(email_id, scope))
        except NotFound:
            raise NotFoundError(f'email "{email_id}" not found') from None
    return found


def read_raw(quarantine: Quarantine, msg: StoredMessage) -> bytes:
    try:
        return quarantine.read(msg)
    except OSError as exc:
        raise ActionError(f'cannot read email "{msg.email_id}": {exc.strerror}') from None


def release(quarantine: Quarantine, email_ids: Sequence[str], account: str, sendmail: str,
            timeout: float, as_user: bool = False, exim_user: Optional[str] = None) -> List[str]:
    """Send held messages to their original envelope recipients, from their
    original envelope sender, and remove each one only once Exim accepted it
    (``sendmail`` runs as ``exim_user``, the configured ``reinject.user``).

    Every id is checked first: one unknown id sends nothing. ``as_user`` is a
    hosted user acting on their own account: a blocked account's user may not
    release (the administrator may). A failed re-injection stops there, keeps
    that message and raises :class:`ReleaseFailed` with the reason; messages
    released before it stay released (they are gone from the quarantine).
    """
    messages = get_messages(quarantine, email_ids, account)
    if as_user:
        for msg in messages:
            if quarantine.blocked(msg.account):
                raise Forbidden(f'account "{msg.account}" is blocked: only the administrator can release '
                                "its emails")
    ids = [msg.email_id for msg in messages]
    # A claim outlives a stuck sendmail by a margin; a crashed release frees it then.
    busy = quarantine.claim(ids, ttl=2 * timeout + 60)
    if busy:
        raise ReleaseFailed(f'email "{busy[0]}" is being released by another request')
    released: List[str] = []
    try:
        for msg in messages:
            raw = read_raw(quarantine, msg)
            try:
                reinject_sync(sendmail, raw, msg.sender, msg.recipients, RELEASED, timeout, exim_user)
            except ReinjectError as exc:
                done = f" (released before it: {', '.join(released)})" if released else ""
                log.error("release of %s failed: %s", msg.email_id, exc)
                raise ReleaseFailed(f'email "{msg.email_id}" not released, it stays in the quarantine: '
                                    f"{exc}{done}") from None
            try:
                quarantine.remove([msg.email_id], ALL_ACCOUNTS)
            except NotFound:   # evicted or removed meanwhile: it is sent all the same
                pass
            log.info("released %s of %s to %d recipient(s)", msg.email_id, msg.account, len(msg.recipients))
            released.append(msg.email_id)
    finally:
        left = [e for e in ids if e not in released]
        if left:
            quarantine.unclaim(left)
    return released


def remove(quarantine: Quarantine, email_ids: Sequence[str], account: str) -> List[str]:
    """Delete messages; one invalid or unknown id deletes nothing."""
    ids = validate_ids(email_ids)
    scope = account_scope(quarantine, account)
    try:
        quarantine.remove(ids, scope)
    except NotFound as exc:
        raise NotFoundError(f'email "{exc.args[0]}" not found') from None
    log.info("removed %d email(s): %s", len(ids), ", ".join(ids))
    return ids


@dataclass(frozen=True)
class MessageView:
    """A held message as shown: metadata, header fields, body bytes."""
    message: StoredMessage
    headers: List[Tuple[str, str]]     # (name as written, unfolded RFC 2047-decoded value)
    body: bytes

    def body_base64(self) -> str:
        return base64.b64encode(self.body).decode("ascii")

    def header_groups(self) -> Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]:
        """(ordinary fields, X- fields), each sorted by name (repeats keep their order)."""
        ordered = sorted(self.headers, key=lambda h: h[0].lower())
        return ([h for h in ordered if not h[0].lower().startswith("x-")],
                [h for h in ordered if h[0].lower().startswith("x-")])

    def header_dict(self) -> Dict[str, str]:
        """Name -> value in display order; repeated fields joined with a newline."""
        out: Dict[str, str] = {}
        spelling: Dict[str, str] = {}
        regular, extra = self.header_groups()
        for name, value in regular + extra:
            key = spelling.setdefault(name.lower(), name)
            out[key] = f"{out[key]}\n{value}" if key in out else value
        return out


def parse_view(msg: StoredMessage, raw: bytes) -> MessageView:
    """Never raises on malformed mail: what is not a header is body."""
    fields, rest = headers.split(raw)
    parsed = []
    for field in fields:
        name = headers.field_name(field)
        parsed.append((field[:len(name)].decode("ascii"), decode_words(headers.field_value(field))))
    if rest.startswith(b"\r\n"):
        rest = rest[2:]
    elif rest.startswith(b"\n"):
        rest = rest[1:]
    return MessageView(msg, parsed, rest)


def show(quarantine: Quarantine, email_id: str, account: str) -> MessageView:
    msg = get_messages(quarantine, [email_id], account)[0]
    return parse_view(msg, read_raw(quarantine, msg))


# -- whitelist --------------------------------------------------------------

WHITELIST_NAMES = {"authuser": "authenticated user", "sender": "sender"}


def parse_whitelist_values(list_name: str, values: Sequence[str]) -> List[Tuple[str, str]]:
    """(kind, normalized value) for each value, duplicates dropped; the
    authenticated-user list takes email addresses only."""
    if list_name not in settings.LISTS:
        raise InvalidInput(f'unknown whitelist "{list_name}"')
    if not values:
        raise InvalidInput("no value given: name one or more email addresses"
                           + (" or domains" if list_name == "sender" else ""))
    out: List[Tuple[str, str]] = []
    for value in values:
        try:
            entry = ("email", normalize_email(value)) if list_name == "authuser" else classify(value)
        except ValueError as exc:
            if list_name == "authuser" and "@" not in value:
                raise InvalidInput(f'invalid authenticated user "{value}": must be an email address') \
                    from None
            raise InvalidInput(str(exc)) from None
        if entry not in out:
            out.append(entry)
    return out


def whitelist_add(conn: sqlite3.Connection, list_name: str, values: Sequence[str]) -> List[Tuple[str, str]]:
    entries = parse_whitelist_values(list_name, values)
    settings.whitelist_add(conn, list_name, entries)
    log.info("%s whitelist: added %s", list_name, ", ".join(v for _, v in entries))
    return entries


def whitelist_remove(conn: sqlite3.Connection, list_name: str, values: Sequence[str]) -> List[Tuple[str, str]]:
    entries = parse_whitelist_values(list_name, values)
    missing = settings.whitelist_remove(conn, list_name, [v for _, v in entries])
    if missing:
        raise NotFoundError(f"not in the {WHITELIST_NAMES[list_name]} whitelist: {', '.join(missing)}")
    log.info("%s whitelist: removed %s", list_name, ", ".join(v for _, v in entries))
    return entries
