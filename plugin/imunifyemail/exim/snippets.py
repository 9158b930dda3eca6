"""The Exim snippets of ``exim_conf/``, filled in from the configuration.

Placeholders are ``{{NAME}}``; each value is checked before it is put into
Exim's syntax, so a bad ``config.yaml`` is a one-line error, never a broken
mail server. Which file goes into which ``exim.conf.local`` section is
decided here, once.
"""
import re
from pathlib import Path
from typing import Dict, Tuple

from .. import config, paths
from ..errors import ActionError

# block name -> (file in exim_conf/, exim.conf.local section)
BLOCKS = {
    "router": ("router.conf", "POSTMAILCOUNT"),
}
# the incoming filter's block (ie-config enable-incoming), added to BLOCKS when it is on
INCOMING_BLOCKS = {
    "incoming": ("incoming.conf", "PREVIRTUALUSER"),
}
ROUTER_NAME = "imunifyemail_scan"
INCOMING_ROUTER_NAME = "imunifyemail_incoming"
# The Maildir folder spam goes to (a +detail address: Dovecot's LMTP saves it there, as cPanel's Spam
# Box does with "spam").
JUNK_FOLDER = "Junk"
# Where the snippets live: the checkout (development, tests) or the package's share directory.
_CANDIDATES = (Path(__file__).resolve().parents[3] / "exim_conf", Path("/usr/share/imunifyemail/exim_conf"))
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+-]+$")
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


class SnippetError(ActionError):
    pass


def snippet_dir() -> Path:
    for candidate in _CANDIDATES:
        if (candidate / "router.conf").is_file():
            return candidate
    raise SnippetError(f"Exim snippets not found (looked in {', '.join(str(c) for c in _CANDIDATES)})")


def values(cfg: config.Config) -> Dict[str, str]:
    socket_path = str(paths.system_path(cfg["exim"]["socket"]))
    if not _SAFE_PATH.match(socket_path):
        raise SnippetError(f"exim.socket: {socket_path!r} cannot be used in Exim's configuration "
                           "(letters, digits and ._/+- only)")
    timeout = cfg["exim"]["timeout"]
    root = str(paths.root()).rstrip("/")   # "" on a real server: paths are the system's own
    userdomains = str(paths.system_path(paths.USERDOMAINS))
    for what, value in (("the root", root), ("/etc/userdomains", userdomains)):
        if value and not _SAFE_PATH.match(value):
            raise SnippetError(f"{what}: {value!r} cannot be used in Exim's configuration")
    return {"SOCKET": socket_path, "TIMEOUT": str(int(timeout) if float(timeout).is_integer() else timeout),
            "ROOT": root, "USERDOMAINS": userdomains, "FOLDER": JUNK_FOLDER}


def render(cfg: config.Config, incoming: bool = False) -> Dict[str, Tuple[str, str]]:
    """block name -> (section, text) for :func:`.localconf.insert` (``incoming``: with the incoming
    filter's block)."""
    vals = values(cfg)
    base = snippet_dir()
    out = {}
    for name, (filename, section) in {**BLOCKS, **(INCOMING_BLOCKS if incoming else {})}.items():
        text = (base / filename).read_text()

        def fill(m: "re.Match[str]") -> str:
            if m.group(1) not in vals:
                raise SnippetError(f"{filename}: unknown placeholder {m.group(0)}")
            return vals[m.group(1)]
        out[name] = (section, _PLACEHOLDER.sub(fill, text))
    return out
