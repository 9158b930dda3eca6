"""CSRF tokens, response headers and the per-install secret.

State changes are POST only, each with a token bound to the caller: an HMAC
(the per-install secret) over the caller and the time it was issued, valid
for a working day. Stateless, so it survives the CGI proxies and any worker;
a page from another site cannot know it. Every response carries a strict
Content-Security-Policy: nothing but this origin's own stylesheet and images,
no script at all, framed only by the same origin (WHM's own frame).
"""
import hashlib
import hmac
import time

from flask import Flask, current_app, g, request

from ..errors import Forbidden

TOKEN_FIELD = "csrf_token"
TOKEN_LIFETIME = 12 * 3600
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'self'")


def _identity() -> str:
    caller = g.get("caller")
    if caller is None:   # the sandbox's identity chooser, before anyone is chosen
        return "\0chooser"
    return f"{caller.account or ''}\0{caller.login}\0{caller.via}"


def _mac(issued: int, identity: str) -> str:
    key = current_app.config["SECRET_KEY"]
    key = key if isinstance(key, bytes) else key.encode()
    return hmac.new(key, f"csrf\0{issued}\0{identity}".encode(), hashlib.sha256).hexdigest()


def csrf_token() -> str:
    issued = int(time.time())
    return f"{issued}.{_mac(issued, _identity())}"


def check_csrf() -> None:
    token = request.form.get(TOKEN_FIELD, "")
    issued_text, _, mac = token.partition(".")
    try:
        issued = int(issued_text)
    except ValueError:
        raise Forbidden("the form has expired or was not sent by this page: reload it and try again") from None
    fresh = 0 <= time.time() - issued <= TOKEN_LIFETIME
    if not fresh or not hmac.compare_digest(mac, _mac(issued, _identity())):
        raise Forbidden("the form has expired or was not sent by this page: reload it and try again")


def add_headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def init(app: Flask) -> None:
    app.after_request(add_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
