"""Filter settings: whether Windows executables pass, whether spam is held."""
import logging
from typing import Dict

from ..context import Context
from ..core.verdict import FILTER_SETTINGS, FilterSettings
from ..errors import InvalidInput
from ..store import settings
from . import audit
from .caller import Caller, require_admin

log = logging.getLogger(__name__)


def current(ctx: Context) -> FilterSettings:
    return settings.load_filter_settings(ctx.conn, ctx.config["filter"]["spam_actions"])


def change(ctx: Context, caller: Caller, changes: Dict[str, bool]) -> FilterSettings:
    require_admin(caller, "change the filter settings")
    unknown = sorted(set(changes) - set(FILTER_SETTINGS))
    if unknown:
        raise InvalidInput(f"unknown filter setting: {unknown[0]}")
    if any(not isinstance(v, bool) for v in changes.values()):
        raise InvalidInput("filter settings are switches: on or off")
    if changes:
        settings.save_filter_settings(ctx.conn, changes)
        audit.record(ctx, caller, "filter settings", detail=dict(sorted(changes.items())))
    return current(ctx)
