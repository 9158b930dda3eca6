"""The incoming filter's operations: each account's switch, and the daily spam/ham counts
(``ie-cli incoming``, WHM → Statistics). Turning the filter itself on and off is Exim's
configuration: ``ie-config enable-incoming`` (:mod:`imunifyemail.exim.patcher`)."""
from typing import Dict, List, Optional

from .. import cpanel
from ..context import Context
from ..errors import InvalidInput, NotFoundError
from ..store import incoming as stored
from . import audit
from .caller import Caller, require_admin

DEFAULT_SINCE = 30 * 86400   # seconds: the last 30 days


def _known(name: str) -> None:
    if not cpanel.is_cpanel_account(name):
        raise NotFoundError(f'account "{name}" not found')


def set_account(ctx: Context, caller: Caller, account: str, on: bool) -> Dict[str, object]:
    require_admin(caller, "switch the incoming filter of an account")
    _known(account)
    before = stored.account_enabled(ctx.conn, account)
    stored.set_account(ctx.conn, account, on)
    if before != on:
        audit.record(ctx, caller, "incoming filter", account=account, detail={"incoming": "on" if on else "off"})
    return {"account": account, "incoming": on}


def accounts(ctx: Context) -> List[Dict[str, object]]:
    """Every hosted account with its switch (on unless turned off)."""
    off = set(stored.accounts_off(ctx.conn))
    return [{"account": name, "incoming": name not in off} for name in sorted(cpanel.known_accounts())]


def stats(ctx: Context, caller: Caller, seconds: int = DEFAULT_SINCE, account: Optional[str] = None) -> Dict:
    """Daily spam/ham counts from the day ``seconds`` ago (UTC days), newest first, with their totals."""
    require_admin(caller, "see the incoming filter's statistics")
    if seconds < 0:
        raise InvalidInput(f"invalid since {seconds}: must be 0 or more seconds")
    if account is not None:
        _known(account)
    first_day = stored.day_of(ctx.now() - seconds)
    items = stored.daily(ctx.conn, first_day, account)
    return {"since": first_day, "items": items,
            "totals": {"spam": sum(i["spam"] for i in items), "ham": sum(i["ham"] for i in items)}}
