"""Activity Monitor pages: sender objects with their counts, limits and suggested limits, the hourly
chart, what observe mode passed, and the object actions (Go to quarantine, Update sender limit, Apply
the suggested limit, Whitelist sender)."""
from flask import Blueprint, g, redirect, render_template, request

from .. import shapes
from ..core import limits, observe
from ..core.window import HOUR
from ..ops import activity as am_ops
from . import chart, context, forms
from .links import link
from .notices import notice

TIMEFRAMES = ((HOUR, "Last hour"), (86400, "Last 24 hours"), (7 * 86400, "Last 7 days"), (30 * 86400, "Last 30 days"))
PAGE = 25


_SAMPLE_ID = "00000000-0000-4000-8000-000000000000"
_OBJECT_LINKS = (("quarantine", "admin.quarantine", "object"), ("limit", "admin.sender_limit", "object_id"),
                 ("apply", "admin.apply_suggested", "object_id"), ("whitelist", "admin.whitelist", "object_id"))


def _object_links(object_id: str, templates: dict) -> dict:
    return {name: text.replace(_SAMPLE_ID, object_id) for name, text in templates.items()}


def _rows(tree: dict) -> list:
    """The nested objects as table rows with their depth and their actions' links: account, its domains
    and their senders, its scripts."""
    # Each action's link built once per page, not per row (a page has some 1,000): object ids are
    # canonical UUIDs, which paths and queries carry unchanged, so putting one in is the same link.
    templates = {name: link(endpoint, **{arg: _SAMPLE_ID}) for name, endpoint, arg in _OBJECT_LINKS}
    rows = []

    def add(depth: int, kind: str, obj: dict) -> None:
        rows.append((depth, kind, obj, _object_links(obj["id"], templates)))
    for account in tree["accounts"]:
        add(0, "account", account)
        for domain in account.get("domains") or []:
            add(1, "domain", domain)
            for s in domain.get("sender_emails") or []:
                add(2, "sender_email", s)
        for s in account.get("scripts") or []:
            add(1, "script", s)
    return rows


def monitor():
    ctx = context()
    args = request.args
    retention = ctx.config["activity_monitor"]["retention_days"] * 86400
    frames = [(s, label) for s, label in TIMEFRAMES if s <= retention]
    since = forms.integer(args, "since", "Timeframe", HOUR)
    if since not in [s for s, _ in frames]:
        since = HOUR
    offset = forms.integer(args, "offset", "Page", 0, 0)
    search = {name: forms.text(args, name, label, 255) for name, label in
              (("account", "Account"), ("domain", "Domain"), ("sender", "Sender email"), ("script", "Script"))}
    query = am_ops.stats_query(ctx, account_name=search["account"], domain=search["domain"],
                               sender_email=search["sender"], script_name=search["script"], since=since,
                               limit=PAGE, offset=offset)
    tree = shapes.am_stats(am_ops.stats(ctx, g.caller, query))
    series = am_ops.hourly(ctx, g.caller, since, search["account"])
    title = f"Sent and quarantined per hour, {dict(frames)[since].lower()}" + \
        (f", account {search['account']}" if search["account"] else ", whole server")
    keep = {k: v for k, v in args.items() if k in ("since", "account", "domain", "sender", "script") and v}
    pages = {"previous": link("admin.activity", offset=max(offset - PAGE, 0), **keep) if offset else None,
             "next": link("admin.activity", offset=offset + PAGE, **keep) if len(tree["accounts"]) == PAGE else None}
    would_be, would_be_total = am_ops.would_be_holds(ctx, g.caller, since, PAGE)
    return render_template("activity.html", area="admin", rows=_rows(tree), frames=frames, since=since, search=search,
                           chart=chart.hourly_svg(series, title), chart_title=title, pages=pages,
                           totals=(sum(s for _, s, _ in series), sum(q for _, _, q in series)), notice=notice(),
                           server_observe=am_ops.server_settings(ctx).observe, would_be=would_be,
                           would_be_total=would_be_total, max_recipients=am_ops.server_settings(ctx).max_recipients,
                           space=ctx.space.report())


def sender_limit(object_id: str):
    """Update sender limit: switch the object's own hourly and daily limits on (and set them) or off (the
    server default); and its observe mode (follow the server, observe, enforce)."""
    ctx = context()
    obj = am_ops.get_object(ctx, object_id)
    server = am_ops.server_settings(ctx)
    own_observe = observe.FOLLOW_SERVER if obj["observe"] is None else obj["observe"]
    if request.method == "POST":
        hourly = _own("override", "limit", "Limit")
        daily = _own("daily_override", "daily_limit", "Daily limit")
        wanted = int(forms.choice(request.form, "observe", "Observe mode", ("-1", "0", "1"), str(own_observe)))
        am_ops.validate_object_settings(hourly, wanted, daily)   # all, before any changes
        if wanted != own_observe:
            am_ops.set_observe(ctx, g.caller, obj["id"], obj["type"], wanted)
        am_ops.set_limit(ctx, g.caller, obj["id"], obj["type"], hourly, daily)
        return redirect(link("admin.activity", notice="limit"), 303)
    return render_template("sender_limit.html", area="admin", obj=obj, noun=am_ops.NOUNS[obj["type"]],
                           server_limit=server.for_type(obj["type"]), server_daily=server.daily_for_type(obj["type"]),
                           own_observe=own_observe, server_observe=server.observe, space=ctx.space.report())


def _own(switch: str, field: str, label: str) -> int:
    """A limit of the object's own from the form (empty: 0, unlimited), or -1: the server default."""
    if not forms.switch(request.form, switch):
        return limits.NO_OVERRIDE
    value = forms.integer(request.form, field, label, None)
    return 0 if value is None else value


def apply_suggested(object_id: str):
    """The one action beside a suggested limit: make it the object's own limit (hourly, and daily when
    there is a daily suggestion)."""
    ctx = context()
    am_ops.apply_suggested(ctx, g.caller, object_id)
    return redirect(link("admin.activity", notice="suggested"), 303)


def whitelist(object_id: str):
    """Whitelist sender: a confirmation ("Yes, add to whitelist"), then the change; also removal."""
    ctx = context()
    obj = am_ops.get_object(ctx, object_id)
    listed = am_ops.is_whitelisted(ctx, obj)
    if request.method == "POST":
        what = forms.choice(request.form, "action", "Action", ("add", "remove"))
        if what == "add":
            am_ops.whitelist_object(ctx, g.caller, obj["id"])
            return redirect(link("admin.activity", notice="whitelisted"), 303)
        if what == "remove":
            am_ops.unwhitelist_object(ctx, g.caller, obj["id"])
            return redirect(link("admin.activity", notice="unwhitelisted"), 303)
    until = am_ops.whitelisted_until(ctx, obj) if listed else None   # issue 19: for a while
    return render_template("whitelist.html", area="admin", obj=obj, listed=listed, until=until,
                           noun=am_ops.NOUNS[obj["type"]],
                           whitelistable=obj["type"] in limits.WHITELISTABLE, space=ctx.space.report())


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/activity", "activity", monitor)
    bp.add_url_rule("/activity/limit/<object_id>", "sender_limit", sender_limit, methods=["GET", "POST"])
    bp.add_url_rule("/activity/suggested/<object_id>", "apply_suggested", apply_suggested, methods=["POST"])
    bp.add_url_rule("/activity/whitelist/<object_id>", "whitelist", whitelist, methods=["GET", "POST"])
