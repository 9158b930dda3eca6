"""A held message's "Release and whitelist this sender" and "Release and raise this limit" (WHM),
each for a while: the message page's form, a confirmation page, then the deed — the same operation
as ``ie-cli emails release --whitelist-sender|--raise-limit`` (:mod:`..ops.trust`)."""
import re

from flask import Blueprint, g, redirect, render_template, request

from ..core import limits
from ..core import trust as trust_rules
from ..errors import InvalidInput
from ..ops import emails as email_ops
from ..ops import trust as trust_ops
from . import context, forms
from .links import link

# What the form offers: the usual whiles, or an end time of one's own ("").
FOR_CHOICES = (("1h", "1 hour"), ("12h", "12 hours"), ("1d", "1 day"), ("7d", "7 days"), ("30d", "30 days"),
               ("", "until the time below"))
_NO_OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?")
GRANTS = {"whitelist": "Release and whitelist this sender", "raise": "Release and raise this limit"}


def _grant(now: float) -> trust_ops.Grant:
    form = request.form
    what = forms.choice(form, "grant", "Action", tuple(GRANTS))
    if what is None:
        raise InvalidInput("Choose whether to whitelist the sender or to raise the limit.")
    for_text = forms.choice(form, "for", "For", tuple(k for k, _ in FOR_CHOICES if k))
    until_text = forms.text(form, "until", "Until", 40)
    if for_text is not None:
        until_text = None   # a while chosen: the time field is for "until the time below" only
    elif until_text is not None and _NO_OFFSET.fullmatch(until_text):
        until_text += "Z"   # the pages say every time in UTC (a browser's datetime-local has no zone)
    elif until_text is None:
        raise InvalidInput("For: choose how long, or give the time it ends under Until.")
    limit = forms.integer(form, "limit", "Raise to", None, 1, limits.MAX_LIMIT) if what == "raise" else None
    if what == "raise" and limit is None:
        raise InvalidInput("Raise to: give the new limit an hour.")
    return trust_ops.grant_of(what == "whitelist", limit, for_text, until_text, now)


def trust(email_id: str):
    """The confirmation page first (what is granted, until when), then the deed."""
    ctx = context()
    msg = email_ops.get_messages(ctx, g.caller, [email_id])[0]
    grant = _grant(ctx.clock())
    if not forms.switch(request.form, "confirm"):
        offer = trust_ops.offer(ctx, g.caller, msg)
        return render_template("trust_confirm.html", area="admin", msg=msg, grant=grant, offer=offer,
                               label=GRANTS["whitelist" if grant.what == trust_ops.WHITELIST_SENDER else "raise"],
                               until_iso=trust_rules.iso(grant.until), space=ctx.space.report())
    granted = trust_ops.release(ctx, g.caller, [msg.email_id], grant)
    what = "trusted_sender" if grant.what == trust_ops.WHITELIST_SENDER else "trusted_limit"
    return redirect(link("admin.quarantine", notice=what, n=len(granted.released)), 303)


def page_parts(ctx, caller, msg) -> dict:
    """What the message page's "Trust this sender for a while" shows (templates/_trust.html)."""
    return {"trust": trust_ops.offer(ctx, caller, msg), "trust_for": FOR_CHOICES, "trust_now": int(ctx.clock())}


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/email/<email_id>/trust", "trust", trust, methods=["POST"])
