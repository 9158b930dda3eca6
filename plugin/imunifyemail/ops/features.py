"""The server's features (notifications, webhook, automatic release, containment, metrics):
read them, change them (the administrator only, all or nothing, recorded in the audit trail)."""
from typing import Any, Dict

from ..context import Context
from ..core import features as rules
from ..core.features import Features
from ..errors import InvalidInput
from ..store import settings
from . import audit
from .caller import Caller, require_admin


def current(ctx: Context) -> Features:
    return settings.load_features(ctx.conn)


def change(ctx: Context, caller: Caller, changes: Dict[str, Any]) -> Features:
    require_admin(caller, "change the server settings")
    try:
        checked = rules.check(changes)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    before = current(ctx).as_dict()
    after = settings.save_features(ctx.conn, checked)
    # The webhook's URL is recorded redacted (the entry also goes to the log): it may carry a token.
    audit.record(ctx, caller, "server settings", detail={
        k: {"from": rules.redacted(k, before[k]), "to": rules.redacted(k, v)}
        for k, v in sorted(checked.items()) if before[k] != v})
    return after
