"""The WHM and cPanel entries: a CGI that hands the request to the web app's unix socket.

Standard library only (and outside the web package, so no Flask is loaded): it runs for every page view, as root under WHM
(after WHM authenticated ``REMOTE_USER``) or as the hosted user under
cPanel. It passes the method, the route, the query, the body and, for WHM,
the WHM user; it tells the app where the browser sees it (the
``cp_security_token`` prefix plus the script's path) so that every link,
form action and redirect the app makes keeps ``/cpsess…``. The route comes
from ``PATH_INFO`` when the server gives one, else from the ``route`` query
field (the app's links use that form). The app, not this script, decides
who the caller is: from the socket's peer credentials.
"""
import http.client
import os
import re
import socket
import sys
from typing import BinaryIO, Dict, List, Mapping, Tuple
from urllib.parse import parse_qsl, urlencode

MAX_BODY = 1 << 20
TIMEOUT = 300   # a release waits for the mail server
_ROUTE = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_TOKEN = re.compile(r"^/cpsess[0-9]+$")
_SCRIPT = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")
_PASS_HEADERS = ("content-type", "content-length", "location", "cache-control", "content-security-policy",
                 "x-frame-options", "x-content-type-options", "referrer-policy", "set-cookie")
REASONS = {200: "OK", 303: "See Other", 302: "Found", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable"}


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=TIMEOUT)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def _page(status: int, text: str) -> Tuple[int, List[Tuple[str, str]], bytes]:
    body = ("<!doctype html><meta charset=utf-8><title>Imunify Email</title>"
            f"<p>{text}</p>").encode()
    return status, [("Content-Type", "text/html; charset=utf-8")], body


def script_url(env: Mapping[str, str], default_script: str) -> str:
    """Where the browser sees this script: ``/cpsess…`` + its path."""
    token = env.get("cp_security_token", "")
    script = env.get("SCRIPT_NAME") or default_script
    if not _SCRIPT.match(script):
        script = default_script
    if _TOKEN.match(token) and not script.startswith(token + "/"):
        script = token + script
    return script


def target(env: Mapping[str, str], home: str) -> str:
    """The app's path and query for this request (the ``route`` field taken out of the query)."""
    fields = parse_qsl(env.get("QUERY_STRING", ""), keep_blank_values=True)
    route = env.get("PATH_INFO") or next((v for k, v in fields if k == "route"), "") or home
    if not _ROUTE.match(route) or "/../" in route + "/" or "//" in route:
        route = home
    query = urlencode([(k, v) for k, v in fields if k != "route"])
    return route + (f"?{query}" if query else "")


def forward(env: Mapping[str, str], stdin: BinaryIO, socket_path: str, home: str, default_script: str,
            pass_user: bool) -> Tuple[int, List[Tuple[str, str]], bytes]:
    method = env.get("REQUEST_METHOD", "GET").upper()
    if method not in ("GET", "HEAD", "POST"):
        return _page(405, "Only GET and POST are used here.")
    try:
        length = int(env.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _page(400, "Bad Content-Length.")
    if length < 0 or length > MAX_BODY:
        return _page(413, "The request is too large.")
    body = stdin.read(length) if length else b""
    headers: Dict[str, str] = {"Host": "localhost", "X-IE-Script-Name": script_url(env, default_script),
                               "X-IE-Link-Style": "query", "Content-Length": str(len(body))}
    if env.get("CONTENT_TYPE"):
        headers["Content-Type"] = env["CONTENT_TYPE"]
    if env.get("HTTP_COOKIE"):
        headers["Cookie"] = env["HTTP_COOKIE"]
    if pass_user and env.get("REMOTE_USER"):
        headers["X-Remote-User"] = env["REMOTE_USER"]
    conn = _UnixConnection(socket_path)
    try:
        conn.request(method, target(env, home), body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        kept = [(k, v) for k, v in resp.getheaders() if k.lower() in _PASS_HEADERS]
        return resp.status, kept, data
    except OSError:
        return _page(503, "The Imunify Email web service is not answering. As root: "
                          "<code>systemctl start imunifyemail-web</code>, then reload this page.")
    finally:
        conn.close()


def write_cgi(out: BinaryIO, status: int, headers: List[Tuple[str, str]], body: bytes) -> None:
    lines = [f"Status: {status} {REASONS.get(status, 'Status')}"] + [f"{k}: {v}" for k, v in headers]
    out.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body)
    out.flush()


def main(socket_path: str, home: str, default_script: str, pass_user: bool) -> int:
    root = os.environ.get("IMUNIFYEMAIL_ROOT", "/").rstrip("/")
    status, headers, body = forward(os.environ, sys.stdin.buffer, root + socket_path, home, default_script,
                                    pass_user)
    write_cgi(sys.stdout.buffer, status, headers, body)
    return 0
