"""Accounts: which exist, which mail a request covers, their quarantine space, state and release quota."""
import logging
from dataclasses import dataclass
from typing import List, Optional, Tuple

from .. import cpanel, paths
from ..context import Context
from ..core import accounts as rules
from ..core.accounts import ROOT
from ..errors import Conflict, InvalidInput, NotFoundError
from ..store import accounts as account_rows
from ..store import activity as activity_rows
from ..store.accounts import AccountInfo, QuarantineDefaults
from ..store.listing import ALL_ACCOUNTS
from ..store.quarantine import Freed
from . import audit
from .caller import Caller, own_account, require_admin
from .paging import MAX_PAGE

log = logging.getLogger(__name__)


def exists(ctx: Context, name: str) -> bool:
    """``root``, an account with a quarantine subspace, or a cPanel account."""
    return name == ROOT or ctx.quarantine.account(name) is not None or cpanel.is_cpanel_account(name)


def require(ctx: Context, name: str) -> None:
    if not exists(ctx, name):
        raise NotFoundError(f'account "{name}" not found')


def scope(ctx: Context, caller: Caller, account: Optional[str] = None, unattributed: bool = False) -> Optional[str]:
    """The messages a request covers: ``ALL_ACCOUNTS``, or one account's own.

    The administrator names an account (``root``: every account; ``root`` with
    ``unattributed``: only the mail held under root itself). A hosted user
    always gets their own (:func:`.caller.own_account`)."""
    if not caller.is_admin:
        if unattributed:
            raise NotFoundError(f'account "{account or ROOT}" not found')
        return own_account(caller, account)
    name = account or ROOT
    if unattributed:
        if name != ROOT:
            raise InvalidInput("unattributed mail is held under root: use it with the root account only")
        return ROOT
    require(ctx, name)
    return ALL_ACCOUNTS if name == ROOT else name


def info(ctx: Context, caller: Caller, name: Optional[str] = None) -> Optional[AccountInfo]:
    """An account's quarantine subspace (None: it has none yet): any existing account's for the
    administrator, their own for a hosted user."""
    name = name if caller.is_admin else own_account(caller, name)
    if caller.is_admin:
        require(ctx, name)
    return ctx.quarantine.account(name)


def list_accounts(ctx: Context, caller: Caller) -> List[AccountInfo]:
    if caller.is_admin:
        return ctx.quarantine.accounts()
    own = ctx.quarantine.account(caller.account)
    return [own] if own is not None else []


def page(ctx: Context, caller: Caller, name_contains: Optional[str] = None, offset: int = 0,
         limit: int = 100) -> Tuple[List[AccountInfo], int]:
    """A page of the accounts table (Settings), with how many there are in all."""
    require_admin(caller, "see every account's quarantine")
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("invalid page of accounts")
    return (account_rows.list_accounts(ctx.conn, ctx.now(), name_contains, offset, limit),
            account_rows.count_accounts(ctx.conn, name_contains))


def edit(ctx: Context, caller: Caller, name: str, state: Optional[str] = None, limit_bytes: Optional[int] = None,
         releases_limit: Optional[int] = None) -> AccountInfo:
    """Change an account's state, quarantine space limit and/or hourly release quota
    (creating the subspace of a cPanel account that has none yet). A limit given becomes the
    account's own; ``rules.FOLLOW_DEFAULT`` (-1) makes it follow the server's default again.
    Setting the state ends a containment (``--state active`` is the one action that restores a
    contained account)."""
    require_admin(caller, "change an account's quarantine settings")
    errors = [e for e in (state is not None and rules.state_error(state),
                          limit_bytes is not None and rules.limit_bytes_error(limit_bytes, may_follow=True),
                          releases_limit is not None and rules.releases_limit_error(releases_limit, may_follow=True))
              if e]
    if errors:
        raise InvalidInput(errors[0])
    if state is None and limit_bytes is None and releases_limit is None:
        raise InvalidInput("nothing to change")
    require(ctx, name)
    before = ctx.quarantine.account(name)
    info = account_rows.update_account(ctx.conn, name, _fallback_limit(ctx), ctx.now(),
                                       state=state, limit_bytes=limit_bytes, releases_limit=releases_limit)
    detail = {k: ("default" if v == rules.FOLLOW_DEFAULT else v)
              for k, v in (("state", state), ("limit_bytes", limit_bytes), ("releases_limit", releases_limit))
              if v is not None}
    if state is not None and before is not None and before.contained:
        detail["contained_at"] = before.contained_at   # the containment this ended
    audit.record(ctx, caller, "account edit", account=name, detail=detail)
    return info


# -- the server's quarantine defaults (what accounts without their own value get) ------------

def _fallback_limit(ctx: Context) -> int:
    # config.yaml's key: the default space limit until one is stored (store/accounts.load_defaults)
    return ctx.config["quarantine"]["default_limit_bytes"]


def defaults(ctx: Context, caller: Caller) -> QuarantineDefaults:
    require_admin(caller, "see the quarantine defaults")
    return account_rows.load_defaults(ctx.conn, _fallback_limit(ctx))


def set_defaults(ctx: Context, caller: Caller, limit_bytes: Optional[int] = None,
                 releases_limit: Optional[int] = None) -> QuarantineDefaults:
    """Change the server's default space limit and/or releases limit: every account that follows
    them (never given its own value, or given -1) changes with them, in one transaction."""
    require_admin(caller, "change the quarantine defaults")
    errors = [e for e in (limit_bytes is not None and rules.limit_bytes_error(limit_bytes),
                          releases_limit is not None and rules.releases_limit_error(releases_limit)) if e]
    if errors:
        raise InvalidInput(errors[0])
    if limit_bytes is None and releases_limit is None:
        raise InvalidInput("nothing to change")
    new = account_rows.save_defaults(ctx.conn, _fallback_limit(ctx), limit_bytes, releases_limit)
    audit.record(ctx, caller, "quarantine defaults", detail={
        k: v for k, v in (("limit_bytes", limit_bytes), ("releases_limit", releases_limit)) if v is not None})
    return new


def purge(ctx: Context, caller: Caller, name: str) -> Freed:
    """Delete every message of an account (of every account for ``root``)."""
    require_admin(caller, "purge a quarantine")
    freed = ctx.quarantine.purge_account(scope(ctx, caller, name))
    audit.record(ctx, caller, "purge", account=None if name == ROOT else name,
                 detail={"emails": freed.count, "bytes": freed.bytes})
    return freed


# -- a cPanel account removed or renamed (the cPanel hooks) ---------------------------------

@dataclass(frozen=True)
class Removed:
    freed: Freed
    objects: int       # Activity Monitor sender objects deleted


@dataclass(frozen=True)
class Renamed:
    quarantine: bool   # the quarantine subspace followed
    objects: bool      # the Activity Monitor account object followed


def _valid_name(name: object) -> str:
    error = rules.account_name_error(name)
    if error:
        raise InvalidInput(error)
    return name


def remove_account(ctx: Context, caller: Caller, name: str) -> Removed:
    """An account cPanel removed: its held mail (files and rows), its subspace and its
    Activity Monitor objects with their counters go. Refused while cPanel still knows it."""
    require_admin(caller, "remove an account's data")
    _valid_name(name)
    if cpanel.is_cpanel_account(name):
        raise Conflict(f'account "{name}" still exists in cPanel ({paths.USERDOMAINS} or '
                       f'/var/cpanel/users): its quarantine is kept')
    freed = ctx.quarantine.purge_account(name) if ctx.quarantine.account(name) is not None else Freed(0, 0)
    try:
        account_id, objects = account_rows.delete_with_objects(ctx.conn, name)
    except account_rows.AccountNotEmpty:
        raise Conflict(f'mail was held for "{name}" while it was removed: run the removal again') from None
    if account_id is not None:
        ctx.quarantine.remove_account_dirs(account_id)
    audit.record(ctx, caller, "account remove", account=name,
                 detail={"emails": freed.count, "bytes": freed.bytes, "objects": objects})
    return Removed(freed, objects)


def rename_account(ctx: Context, caller: Caller, old: str, new: str) -> Renamed:
    """An account cPanel renamed: its subspace and Activity Monitor account object take the
    new name (messages and objects keep their ids, so nothing moves on disk). cPanel's map
    must already say so: the new name owns domains, the old one none."""
    require_admin(caller, "rename an account's data")
    _valid_name(old)
    _valid_name(new)
    if old == new:
        raise InvalidInput(f'"{old}" is renamed to itself')
    if not cpanel.domains_of(new):
        raise Conflict(f'{paths.USERDOMAINS} gives no domain to "{new}": not renamed')
    if cpanel.domains_of(old):
        raise Conflict(f'{paths.USERDOMAINS} still gives domains to "{old}": not renamed')
    if ctx.quarantine.account(new) is not None or activity_rows.account_object_id(ctx.conn, new) is not None:
        raise Conflict(f'"{new}" already has a quarantine or Activity Monitor objects (of an earlier account '
                       f'of that name): "{old}" not renamed, nothing changed')
    quarantine, objects = account_rows.rename_with_objects(ctx.conn, old, new)
    audit.record(ctx, caller, "account rename", account=new,
                 detail={"from": old, "quarantine": quarantine, "objects": objects})
    return Renamed(quarantine, objects)
