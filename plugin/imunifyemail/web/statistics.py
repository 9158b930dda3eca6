"""The Statistics view (WHM): the incoming filter's daily spam/ham counts per account, whether the
filter is on in Exim, and each account's switch (the same operations as ``ie-cli incoming``)."""
from flask import Blueprint, g, redirect, render_template, request

from ..exim import patcher
from ..ops import incoming as incoming_ops
from . import context, forms
from .links import link
from .notices import notice

PERIODS = {"week": 7 * 86400, "month": 30 * 86400, "quarter": 90 * 86400}


def page():
    ctx = context()
    period = forms.choice(request.args, "period", "Period", tuple(PERIODS), "month")
    account = forms.text(request.args, "account", "Account", 64)
    found = incoming_ops.stats(ctx, g.caller, PERIODS[period], account)
    totals = {}
    for item in found["items"]:
        spam, ham = totals.get(item["account"], (0, 0))
        totals[item["account"]] = (spam + item["spam"], ham + item["ham"])
    return render_template("statistics.html", area="admin", found=found, totals=sorted(totals.items()),
                           period=period, periods=PERIODS, account=account or "",
                           accounts=incoming_ops.accounts(ctx),
                           filter_on=patcher.incoming_wanted() and patcher.incoming_active(),
                           notice=notice(), space=ctx.space.report())


def switch(name: str):
    ctx = context()
    incoming_ops.set_account(ctx, g.caller, name, forms.choice(request.form, "state", "State", ("on", "off")) == "on")
    return redirect(link("admin.statistics", notice="saved"), 303)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/statistics", "statistics", page)
    bp.add_url_rule("/statistics/account/<name>", "incoming_switch", switch, methods=["POST"])
