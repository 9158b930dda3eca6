"""Links that keep working behind WHM's and cPanel's CGI entries.

The CGIs (:mod:`imunifyemail.cgiproxy`) reach the app on a unix socket and say where
the browser sees it: ``X-IE-Script-Name`` (e.g.
``/cpsess0123456789/cgi/imunifyemail/index.cgi``) and ``X-IE-Link-Style:
query``, in which style a link is ``<script>?route=/admin/x&a=b``. Every
link, form action and redirect goes through :func:`link`, so none loses the
``cpsess`` prefix. Served directly (the sandbox), links are plain paths.
"""
import re
from typing import Dict, List, Tuple
from urllib.parse import quote

from flask import request, url_for

ROUTE_FIELD = "route"
_SCRIPT = re.compile(r"^(/[A-Za-z0-9._~-]+)*/?$")


def _settings() -> Tuple[str, str]:
    prefix = request.headers.get("X-IE-Script-Name", "")
    style = request.headers.get("X-IE-Link-Style", "path")
    if not _SCRIPT.match(prefix) or len(prefix) > 256:
        prefix = ""
    return prefix.rstrip("/") if style != "query" else prefix, style if style in ("path", "query") else "path"


def link(endpoint: str, **values) -> str:
    path = url_for(endpoint, **values)
    prefix, style = _settings()
    if style == "path":
        return prefix + path
    route, _, query = path.partition("?")
    return f"{prefix}?{ROUTE_FIELD}={quote(route, safe='/')}" + (f"&{query}" if query else "")


def get_form(endpoint: str, **values) -> Tuple[str, List[Tuple[str, str]]]:
    """(action, hidden fields) of a GET form: a GET form's fields replace the action's query."""
    prefix, style = _settings()
    path = url_for(endpoint, **values)
    if style == "path":
        return prefix + path, []
    return prefix, [(ROUTE_FIELD, path)]


def static(filename: str) -> str:
    return link("static", filename=filename)


def jinja_globals() -> Dict[str, object]:
    return {"link": link, "get_form": get_form, "static_link": static}
