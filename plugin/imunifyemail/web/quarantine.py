"""The Quarantine pages, the same for the administrator (every account) and a hosted user (their own).

List with search, filters, sort and keyset pages; View Email in three views;
Release & Send and Delete, one or many, each after a confirmation page (no
JavaScript needed). What the caller may see and do is decided by the
operations: a user's request for another account's email is "not found".
"""
from flask import Blueprint, abort, g, redirect, render_template, request

from ..core import accounts as account_rules
from ..core import autorelease, learning, view
from ..core.verdict import REASONS
from ..ops import accounts as account_ops
from ..ops import activity as am_ops
from ..ops import emails as email_ops
from ..ops import features as feature_ops
from ..ops.emails import NEWEST_FIRST, OLDEST_FIRST
from . import context, forms, trust
from .links import link
from .notices import notice

PAGE_SIZES = (25, 50, 100)
SEARCH_IN = ("subject", "sender", "recipient")
MAX_PLAIN_BYTES = 1 << 20
ACTIONS = {"release": "Release & Send", "delete": "Delete"}
RELEASE_HAM = "release_ham"   # the administrator's: release and teach the filter (core/learning.py)
ADMIN_ACTIONS = {**ACTIONS, RELEASE_HAM: "Release as not spam"}


def _query(area: str) -> email_ops.EmailQuery:
    args = request.args
    f = email_ops.EmailQuery(
        reason=forms.choice(args, "reason", "Reason", REASONS),
        order=forms.choice(args, "order", "Sort", (NEWEST_FIRST, OLDEST_FIRST), NEWEST_FIRST),
        limit=forms.integer(args, "limit", "Per page", 25, 1, max(PAGE_SIZES)),
        after=forms.text(args, "after", "Page", 64),
    )
    q = forms.text(args, "q", "Search")
    where = forms.choice(args, "in", "Search in", SEARCH_IN, "subject")
    if q is not None:
        setattr(f, where, q)
    if area == "admin":
        f.account = forms.text(args, "account", "Account", 64)
        f.unattributed = forms.switch(args, "unattributed")
        f.sender_object = forms.text(args, "object", "Sender object", 64)
    return f


def _page_args() -> dict:
    """The query of this list, to build the links of the pages around it."""
    return {k: v for k, v in request.args.items() if k in ("q", "in", "reason", "order", "limit", "account",
                                                            "unattributed", "object") and v}


def list_page(area: str):
    ctx = context()
    f = _query(area)
    before = forms.text(request.args, "before", "Page", 64)
    if before is not None:   # the page before this one: walk the other way, then turn it round
        f.after, f.order = before, OLDEST_FIRST if f.order == NEWEST_FIRST else NEWEST_FIRST
    items, total = email_ops.list_emails(ctx, g.caller, f)
    if before is not None:
        items.reverse()
        f.order = OLDEST_FIRST if f.order == NEWEST_FIRST else NEWEST_FIRST
    args = _page_args()
    endpoint = f"{area}.quarantine"
    pages = {
        "first": link(endpoint, **args) if (f.after or before) else None,
        "previous": link(endpoint, before=items[0].email_id, **args) if items and (f.after or before) else None,
        "next": link(endpoint, after=items[-1].email_id, **args) if len(items) == f.limit else None,
    }
    sender_object = None
    if area == "admin" and f.sender_object:   # checked by list_emails: it exists
        sender_object = am_ops.get_object(ctx, f.sender_object)
    own = None
    if area == "user":
        own = {"info": account_ops.info(ctx, g.caller), "quota": email_ops.release_quota(ctx, g.caller)}
    expected = email_ops.expected_releases(ctx, items)
    auto_release = feature_ops.current(ctx).auto_release
    return render_template("quarantine.html", area=area, items=items, total=total, f=f, q=request.args.get("q", ""),
                           expected=expected, auto_release=auto_release, waits=autorelease.waits_for_room,
                           search_in=request.args.get("in", "subject"), pages=pages, all_reasons=REASONS,
                           page_sizes=PAGE_SIZES, sender_object=sender_object, own=own, notice=notice(),
                           space=ctx.space.report())


def email_page(area: str, email_id: str):
    ctx = context()
    held = email_ops.show(ctx, g.caller, email_id)
    mode = forms.choice(request.args, "view", "View", ("body", "header", "plain"), "body")
    body, attachments, plain = "", [], ""
    if mode == "body":
        body, attachments = view.body_text(held.raw)
    elif mode == "plain":
        plain = held.judged_raw[:MAX_PLAIN_BYTES].decode("utf-8", "replace")
    trusting = trust.page_parts(ctx, g.caller, held.message) if area == "admin" else {}   # issue 19
    not_spam = learning.offered(learning.LEARN_HAM, g.caller.is_admin, held.message.reasons)
    return render_template("email.html", area=area, held=held, msg=held.message, mode=mode, body=body,
                           not_spam=not_spam,
                           attachments=attachments, plain=plain, truncated=len(held.judged_raw) > MAX_PLAIN_BYTES,
                           headers=held.judged.headers, space=ctx.space.report(), **trusting)


def action(area: str):
    """Release & Send or Delete the selected emails: a confirmation page first, then the deed."""
    ctx = context()
    actions = ADMIN_ACTIONS if g.caller.is_admin else ACTIONS
    what = forms.choice(request.form, "action", "Action", tuple(actions))
    if what is None:
        abort(400, "Choose Release & Send or Delete.")
    ids = forms.id_list(request.form.getlist("ids"))
    messages = email_ops.get_messages(ctx, g.caller, ids)
    back = request.form.get("back") or ""
    if not forms.switch(request.form, "confirm"):
        quota = email_ops.release_quota(ctx, g.caller) if what == "release" and not g.caller.is_admin else None
        as_spam = what == "delete" and any(learning.offered(learning.LEARN_SPAM, g.caller.is_admin, m.reasons)
                                           for m in messages)
        return render_template("confirm_emails.html", area=area, what=what, label=actions[what], messages=messages,
                               quota=quota, cost=sum(account_rules.release_cost(m.recipients) for m in messages),
                               offer_as_spam=as_spam, back=back if back.startswith(("/", "?")) else "",
                               space=ctx.space.report())
    ids = [m.email_id for m in messages]
    if what == RELEASE_HAM:
        done, report = email_ops.release_not_spam(ctx, g.caller, ids)
        return redirect(link(f"{area}.quarantine", notice="released_ham" if not report.failed else "released_unlearned",
                             n=len(done)), 303)
    if what == "release":
        done = email_ops.release(ctx, g.caller, ids)
        return redirect(link(f"{area}.quarantine", notice="released", n=len(done)), 303)
    if g.caller.is_admin and forms.switch(request.form, "as_spam"):
        freed, report = email_ops.remove_as_spam(ctx, g.caller, ids)
        return redirect(link(f"{area}.quarantine", notice="deleted_spam" if not report.failed else "deleted_unlearned",
                             n=freed.count), 303)
    freed = email_ops.remove(ctx, g.caller, ids)
    return redirect(link(f"{area}.quarantine", notice="deleted", n=freed.count), 303)


def register(bp: Blueprint, area: str) -> None:
    bp.add_url_rule("/quarantine", "quarantine", lambda: list_page(area))
    bp.add_url_rule("/email/<email_id>", "email", lambda email_id: email_page(area, email_id))
    bp.add_url_rule("/emails", "emails", lambda: action(area), methods=["POST"])


def require(admin: bool) -> None:
    """A blueprint's gate: the administrator's pages for the administrator, the user's for users."""
    if g.caller is None or g.caller.is_admin != admin:
        abort(403, "These pages are not for you.")
