"""The sandbox's identity chooser (``make run`` only): on its loopback listener, be "WHM (root)" or
any sandbox account. Not registered unless gunicorn was started with the development listener."""
from flask import Blueprint, abort, redirect, render_template, request, session

from .. import cpanel
from . import identity, security
from .links import link

bp = Blueprint("dev", __name__)


@bp.get("/")
def choose():
    accounts = sorted(cpanel.known_accounts())
    return render_template("choose.html", accounts=accounts, current=session.get(identity.DEV_SESSION_KEY))


@bp.post("/")
def chosen():
    security.check_csrf()
    who = request.form.get("who", "")
    if who != "root" and not cpanel.is_cpanel_account(who):
        abort(400, "Choose WHM (root) or a sandbox account.")
    session[identity.DEV_SESSION_KEY] = who
    return redirect(link("admin.quarantine" if who == "root" else "user.quarantine"), 303)
