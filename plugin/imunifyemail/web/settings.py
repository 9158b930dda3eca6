"""Settings pages: the server's sender limits (hourly, daily, recipients in one message), limit mode and
observe mode, the filter settings, the quarantine defaults, and each account's quarantine (space limit,
used space, state, releases per hour, purge; restoring a contained one)."""
from flask import Blueprint, g, redirect, render_template, request

from ..core import limits
from ..core.features import SETTINGS
from ..core.accounts import ACTIVE, FOLLOW_DEFAULT, MAX_LIMIT_BYTES, STATES
from ..core.verdict import FILTER_SETTINGS
from ..ops import accounts as account_ops
from ..ops import activity as am_ops
from ..ops import features as feature_ops
from ..ops import filter_settings as filter_ops
from . import context, forms
from .links import link
from .notices import notice

MB = 1024 * 1024
PAGE = 100


def page():
    ctx = context()
    search = forms.text(request.args, "account", "Account", 64)
    offset = forms.integer(request.args, "offset", "Page", 0, 0)
    accounts, total = account_ops.page(ctx, g.caller, search, offset, PAGE)
    keep = {"account": search} if search else {}
    pages = {"previous": link("admin.settings", offset=max(offset - PAGE, 0), **keep) if offset else None,
             "next": link("admin.settings", offset=offset + PAGE, **keep) if offset + PAGE < total else None}
    return render_template("settings.html", area="admin", server=am_ops.server_settings(ctx),
                           filters=filter_ops.current(ctx), filter_help=FILTER_SETTINGS, types=limits.TYPES,
                           features=feature_ops.current(ctx).as_dict(), feature_settings=SETTINGS,
                           accounts=accounts, total=total, search=search or "", pages=pages, mb=MB,
                           defaults=account_ops.defaults(ctx, g.caller), notice=notice(), space=ctx.space.report())


def save_limits():
    """The hourly and daily defaults, the limit mode and the recipient cap; a field left out is unchanged."""
    ctx = context()
    changes = {t: forms.integer(request.form, t, f"{t.replace('_', ' ').capitalize()} limit", -1)
               for t in limits.TYPES}
    changes.update({f"daily_{t}": forms.integer(request.form, f"daily_{t}",
                                                f"{t.replace('_', ' ').capitalize()} daily limit", -1)
                    for t in limits.TYPES})
    changes["max_recipients"] = forms.integer(request.form, "max_recipients", "Recipients in one message", -1)
    changes["limit_mode"] = forms.integer(request.form, "limit_mode", "Limit mode", -1)
    changes["observe"] = 1 if forms.switch(request.form, "observe") else 0
    am_ops.set_server_settings(ctx, g.caller, changes)
    return redirect(link("admin.settings", notice="saved"), 303)


def save_filters():
    ctx = context()
    filter_ops.change(ctx, g.caller, {name: forms.switch(request.form, name) for name in FILTER_SETTINGS})
    return redirect(link("admin.settings", notice="saved"), 303)


def _feature_value(setting):
    if setting.kind == "switch":
        return forms.switch(request.form, setting.name)
    label = setting.name.replace("_", " ").capitalize()
    if setting.kind == "url":
        return forms.text(request.form, setting.name, label, setting.maximum) or ""
    return forms.integer(request.form, setting.name, label, None)


def save_features():
    """Every feature setting at once (the form shows them all); checked by the same rules as ie-cli."""
    ctx = context()
    changes = {s.name: _feature_value(s) for s in SETTINGS}
    feature_ops.change(ctx, g.caller, {k: v for k, v in changes.items() if v is not None})
    return redirect(link("admin.settings", notice="saved"), 303)


def save_quarantine_defaults():
    """The default space limit (MB) and releases limit: every account without its own follows them."""
    ctx = context()
    limit_mb = forms.integer(request.form, "storage_capacity", "Default storage capacity (MB)", None, 0,
                             MAX_LIMIT_BYTES // MB)
    releases = forms.integer(request.form, "default_releases_limit", "Default releases limit", None)
    account_ops.set_defaults(ctx, g.caller, limit_bytes=None if limit_mb is None else limit_mb * MB,
                             releases_limit=releases)
    return redirect(link("admin.settings", notice="saved"), 303)


def account(name: str):
    """Change an account's quarantine: space limit (MB), state, a hosted user's releases per hour (recipients).
    An empty field keeps its value; -1 makes the account follow the server's default again."""
    ctx = context()
    if request.method == "POST":
        limit_mb = forms.integer(request.form, "limit_mb", "Storage Capacity (MB)", None, FOLLOW_DEFAULT,
                                 MAX_LIMIT_BYTES // MB)
        releases = forms.integer(request.form, "releases_limit", "Releases per hour (recipients)", None)
        account_ops.edit(ctx, g.caller, name,
                         state=forms.choice(request.form, "state", "State", STATES),
                         limit_bytes=limit_mb if limit_mb in (None, FOLLOW_DEFAULT) else limit_mb * MB,
                         releases_limit=releases)
        return redirect(link("admin.settings", notice="saved", account=name), 303)
    info = account_ops.info(ctx, g.caller, name)
    return render_template("account.html", area="admin", name=name, info=info, states=STATES, mb=MB,
                           defaults=account_ops.defaults(ctx, g.caller), space=ctx.space.report())


def restore(name: str):
    """One action for a contained account: state active (the same edit as ie-cli accounts edit --state active)."""
    ctx = context()
    account_ops.edit(ctx, g.caller, name, state=ACTIVE)
    return redirect(link("admin.settings", notice="restored", account=name), 303)


def purge(name: str):
    ctx = context()
    info = account_ops.info(ctx, g.caller, name)
    if request.method == "POST" and forms.switch(request.form, "confirm"):
        freed = account_ops.purge(ctx, g.caller, name)
        return redirect(link("admin.settings", notice="purged", n=freed.count), 303)
    return render_template("purge.html", area="admin", name=name, info=info,
                           space=ctx.space.report())


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/settings", "settings", page)
    bp.add_url_rule("/settings/limits", "save_limits", save_limits, methods=["POST"])
    bp.add_url_rule("/settings/filters", "save_filters", save_filters, methods=["POST"])
    bp.add_url_rule("/settings/features", "save_features", save_features, methods=["POST"])
    bp.add_url_rule("/settings/quarantine-defaults", "save_quarantine_defaults", save_quarantine_defaults,
                    methods=["POST"])
    bp.add_url_rule("/settings/account/<name>", "account", account, methods=["GET", "POST"])
    bp.add_url_rule("/settings/purge/<name>", "purge", purge, methods=["GET", "POST"])
    bp.add_url_rule("/settings/restore/<name>", "restore", restore, methods=["POST"])
