"""Who is asking — taken from the connection, never from anything the client sends.

* ``admin.sock`` (root only by its mode): the peer must be uid 0 (WHM's CGI);
  the administrator. WHM's user name, passed by the CGI, is only for the log.
* ``user.sock`` (every local user): the peer's uid names the Unix user, who
  must be a cPanel account (``/var/cpanel/users/<name>``); that account only.
* the sandbox's loopback listener (``make run`` only): whoever the identity
  chooser put in the signed session cookie.

Anything else — another socket, a non-loopback peer, an unknown uid — is refused.
"""
import ipaddress
import pwd
import re
import socket
from typing import Optional

from flask import current_app, request, session

from .. import cpanel, paths
from ..errors import Forbidden
from ..ops import caller as callers
from ..ops.caller import Caller
from ..peer import peer_credentials

ADMIN, USER, DEV = "admin", "user", "dev"
_LOGIN = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
DEV_SESSION_KEY = "dev_identity"


def _listener(sock: socket.socket) -> str:
    if sock.family == socket.AF_UNIX:
        name = sock.getsockname()
        if name == str(paths.system_path(paths.ADMIN_SOCKET)):
            return ADMIN
        if name == str(paths.system_path(paths.USER_SOCKET)):
            return USER
        raise Forbidden("unknown listener")
    if current_app.config.get("DEV_LISTENER"):
        host = sock.getpeername()[0]
        if ipaddress.ip_address(host.split("%", 1)[0]).is_loopback:
            return DEV
    raise Forbidden("this listener is not for you")


def _hosted_user(uid: int) -> Caller:
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        raise Forbidden("your Unix user is unknown") from None
    if not cpanel.is_cpanel_account(name):
        raise Forbidden(f'"{name}" is not a cPanel account')
    return callers.hosted_user(name)


def _socket() -> socket.socket:
    sock = request.environ.get("gunicorn.socket")
    if sock is None:
        raise Forbidden("not served through imunifyemail-web")
    return sock


def check_listener() -> str:
    """For pages without a caller (health, stylesheet, the sandbox chooser): a listener of ours."""
    kind = _listener(_socket())
    request.environ["imunifyemail.listener"] = kind
    return kind


def resolve() -> Caller:
    """The caller of the current request."""
    sock = _socket()
    kind = check_listener()
    if kind == ADMIN:
        _, uid, _ = peer_credentials(sock)
        if uid != 0:
            raise Forbidden("the administrator's socket is for root only")
        login = request.headers.get("X-Remote-User", "root")
        return callers.admin(callers.WHM, login if _LOGIN.match(login) else "root")
    if kind == USER:
        _, uid, _ = peer_credentials(sock)
        return _hosted_user(uid)
    chosen = session.get(DEV_SESSION_KEY)
    if chosen == "root":
        return callers.admin(callers.WHM, "root")
    if isinstance(chosen, str) and cpanel.is_cpanel_account(chosen):
        return callers.hosted_user(chosen)
    raise Forbidden("choose who you are first")


def listener() -> Optional[str]:
    return request.environ.get("imunifyemail.listener")
