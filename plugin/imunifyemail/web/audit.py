"""The Audit view: the administrator reads every entry (WHM), a hosted user those about their own
account (cPanel). Read-only: the pages have no form that changes an entry."""
from flask import Blueprint, g, render_template, request

from ..core.window import HOUR
from ..ops import audit as audit_ops
from . import context, forms
from .links import link

PAGE = 50
PERIODS = {"hour": HOUR, "day": 86400, "week": 7 * 86400, "month": 30 * 86400, "all": None}


def page(area: str):
    ctx = context()
    period = forms.choice(request.args, "period", "Period", tuple(PERIODS), "week")
    account = forms.text(request.args, "account", "Account", 64) if area == "admin" else None
    offset = forms.integer(request.args, "offset", "Page", 0, 0)
    items, total = audit_ops.entries(ctx, g.caller, PERIODS[period], account, PAGE, offset)
    keep = {k: v for k, v in (("period", period), ("account", account)) if v}
    endpoint = f"{area}.audit"
    pages = {"previous": link(endpoint, offset=max(offset - PAGE, 0), **keep) if offset else None,
             "next": link(endpoint, offset=offset + PAGE, **keep) if offset + PAGE < total else None}
    return render_template("audit.html", area=area, items=items, total=total, period=period, periods=PERIODS,
                           account=account or "", pages=pages, space=ctx.space.report())


def register(bp: Blueprint, area: str) -> None:
    bp.add_url_rule("/audit", "audit", lambda: page(area))
