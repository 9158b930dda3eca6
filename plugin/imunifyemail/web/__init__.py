"""The web app: WHM's pages for the administrator, cPanel's quarantine page for a hosted user.

A Flask app factory; gunicorn serves it (``gunicorn.conf.py``, command
``imunifyemail-web``) on two unix sockets, reached by the WHM and cPanel CGI
entries (:mod:`imunifyemail.cgiproxy`). Who asks comes from the socket
(:mod:`.identity`); every rule comes from :mod:`imunifyemail.ops`, the same
calls ``ie-cli`` makes — the pages add none of their own. Pages are rendered
on the server and need no JavaScript.
"""
import logging
import time
import uuid
from typing import Optional

from flask import Flask, abort, g, render_template, request
from werkzeug.exceptions import HTTPException

from .. import __version__
from ..context import Context
from ..core import accounts
from ..errors import ActionError
from ..ops.release import DaemonReleaser
from ..shapes import human_size
from . import identity, links, security, serving

log = logging.getLogger(__name__)

_context: Optional[Context] = None
PUBLIC_ENDPOINTS = {"healthz", "static"}


def context() -> Context:
    """This worker's configuration and store (a sync worker serves one request at a time)."""
    global _context
    if _context is None:
        from .. import paths
        control = str(paths.system_path(paths.CONTROL_SOCKET))
        _context = Context(releaser=lambda cfg: DaemonReleaser(control, 2 * cfg["reinject"]["timeout"] + 30),
                           create=False)   # the daemon (or the RPM) makes the store, not a web worker
    return _context


def _area() -> str:
    """Which tabs an error page shows: the caller's own (none when we do not know who asks)."""
    caller = getattr(g, "caller", None)
    return "" if caller is None else "admin" if caller.is_admin else "user"


def _when(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def create_app(test_config: Optional[dict] = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=serving.read_secret(),
        DEV_LISTENER=serving.dev_listener() is not None,
        MAX_CONTENT_LENGTH=1 << 20,
        SESSION_COOKIE_NAME="imunifyemail_sandbox",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    if test_config:
        app.config.update(test_config)
    security.init(app)
    app.jinja_env.globals.update(links.jinja_globals(), human_size=human_size, when=_when, version=__version__,
                                 claimed_account=accounts.claimed_account)

    from . import admin, dev, user
    app.register_blueprint(admin.bp)
    app.register_blueprint(user.bp)
    if app.config["DEV_LISTENER"]:
        app.register_blueprint(dev.bp)

    @app.before_request
    def identify():
        g.caller = None
        if request.endpoint in PUBLIC_ENDPOINTS:
            identity.check_listener()
            return
        if request.blueprint == "dev":   # the sandbox's chooser: on its loopback listener only
            if identity.check_listener() != identity.DEV:
                abort(404)
            return
        g.caller = identity.resolve()
        if request.method not in ("GET", "HEAD"):
            security.check_csrf()

    @app.get("/healthz")
    def healthz():
        return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"}

    @app.errorhandler(ActionError)
    def refused(exc: ActionError):
        return render_template("error.html", message=str(exc), status=exc.status, area=_area()), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return render_template("error.html", message=exc.description, status=exc.code, area=_area()), exc.code

    @app.errorhandler(Exception)
    def failed(exc: Exception):
        ref = uuid.uuid4().hex[:12]
        log.exception("request %s %s failed (ref %s)", request.method, request.path, ref)
        return render_template("error.html", status=500, area=_area(),
                               message=f"Something went wrong. The details are in the log (reference {ref})."), 500

    return app
