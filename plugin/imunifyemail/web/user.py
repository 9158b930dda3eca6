"""A hosted user's page (cPanel → Security → Imunify Email): their own account's quarantine and audit entries only."""
from flask import Blueprint, redirect

from . import audit, quarantine
from .links import link

bp = Blueprint("user", __name__, url_prefix="/user")


@bp.before_request
def hosted_users_only():
    quarantine.require(admin=False)


@bp.get("/")
def home():
    return redirect(link("user.quarantine"), 303)


quarantine.register(bp, "user")
audit.register(bp, "user")
