"""Rspamd's controller, where the administrator's decisions are learned (``rspamd.controller``).

Only on its unix socket: ``unix:/var/run/rspamd/controller.sock``, 0660 ``_rspamd:_imunifyemail``
(rpm/rspamd/override.d/worker-controller.inc), which root and the product's user (``ie-cli``, the web
app) may open and no hosted user can. Rspamd 3.4 trusts any peer of that socket without a password;
the socket's mode is the whole check, so no TCP controller is ever accepted here.
"""
import http.client
import json
from typing import Dict, Tuple

from . import paths
from .unix_http import UnixHTTPConnection

UNIX_PREFIX = "unix:"


class ControllerError(Exception):
    """The controller could not be asked (not running, refused, timed out): the message says why."""


class Controller:
    def __init__(self, url: str, timeout: float):
        if not url.startswith(UNIX_PREFIX + "/"):
            raise ValueError(f"unsupported Rspamd controller {url!r}: use unix:/path/to/socket")
        self.socket_path = str(paths.system_path(url[len(UNIX_PREFIX):]))
        self.timeout = timeout

    @classmethod
    def from_config(cls, cfg) -> "Controller":
        return cls(cfg["rspamd"]["controller"], cfg["rspamd"]["timeout"])

    def post(self, path: str, body: bytes, headers: Dict[str, str]) -> Tuple[int, str]:
        """POST ``body`` to ``path``: (HTTP status, Rspamd's error text or "" when it succeeded)."""
        conn = UnixHTTPConnection(self.socket_path, self.timeout)
        try:
            conn.putrequest("POST", path, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read(1 << 20)
        except (OSError, http.client.HTTPException) as exc:
            raise ControllerError(f"Rspamd's controller at {self.socket_path} did not answer "
                                  f"({getattr(exc, 'strerror', None) or exc or type(exc).__name__})") from None
        finally:
            conn.close()
        return resp.status, "" if resp.status == 200 else _error_text(data)


def _error_text(data: bytes) -> str:
    try:
        reply = json.loads(data)
        if isinstance(reply, dict) and reply.get("error"):
            return str(reply["error"])[:300]
    except ValueError:
        pass
    return data[:300].decode("utf-8", "replace").strip()
