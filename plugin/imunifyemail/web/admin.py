"""The administrator's pages (WHM → Plugins → Imunify Email): Quarantine, Activity Monitor, Settings, Audit,
Statistics."""
from flask import Blueprint, redirect

from . import activity, audit, quarantine, settings, statistics, trust
from .links import link

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def administrator_only():
    quarantine.require(admin=True)


@bp.get("/")
def home():
    return redirect(link("admin.quarantine"), 303)


quarantine.register(bp, "admin")
activity.register(bp)
settings.register(bp)
audit.register(bp, "admin")
trust.register(bp)
statistics.register(bp)
