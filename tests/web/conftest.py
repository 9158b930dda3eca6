"""The web app for real: the filter daemon (re-injecting as the Exim user through its spawner), the
real gunicorn on its two unix sockets plus the sandbox's loopback listener, real OS users for the
hosted accounts. One site per test module; each test tells its mail apart by a token."""
import json
import os
import pwd
import re
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from devtools import samples
from devtools.testroot import TestRoot
from devtools.users import ensure_hosted_user
from devtools.web import WebServer, unix_request
from devtools.rspamd import free_port

EXIM_USER = "Debian-exim"
SCREENSHOTS = Path(os.environ.get("IE_SCREENSHOTS", "/tmp/ie-screenshots"))


def pytest_collection_modifyitems(items):
    """Every test here starts the web service and the daemon (``-m "not service"`` leaves them out)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.service)


@dataclass
class Site:
    root: TestRoot
    web: WebServer

    def hold(self, account: str, token: str, count: int = 1, raw_of=None, recipients: int = 1) -> List[str]:
        """``count`` messages of ``account`` (each to ``recipients`` recipients) held (blocked meanwhile);
        their email ids, oldest first."""
        sender = f"{token}@{account}.test"
        self.root.cli("accounts", "edit", "-a", account, "--state", "block")
        try:
            for n in range(count):
                raw = raw_of(n) if raw_of else samples.ham(sender=sender, subject=f"{token} {n}")
                to = tuple(f"{token}-{n}-{r}@remote.example" if r else f"{token}-{n}@remote.example"
                           for r in range(recipients))
                sent = self.root.send(raw, sender=sender, recipients=to)
                assert sent.verdict == "hold", sent
        finally:
            self.root.cli("accounts", "edit", "-a", account, "--state", "active")
        return [m.email_id for m in sorted(self.root.held(subject=token), key=lambda m: m.subject)]

    def released(self, token: str):
        return [m for m in self.root.reinjected() if token in (m.header("Subject") or "")]


@pytest.fixture(scope="module")
def site(daemon_user, rspamd):
    for name in ("demo1", "demo2"):
        ensure_hosted_user(name)
    r = TestRoot.create(rspamd_url=rspamd.url, daemon_user=daemon_user, reinject={"user": EXIM_USER})
    r.outbox.chmod(0o777)   # the Exim user's sendmail (the recorder) writes there
    old = os.environ.get("IMUNIFYEMAIL_ROOT")
    os.environ["IMUNIFYEMAIL_ROOT"] = str(r.path)
    web = None
    try:
        r.start()
        web = WebServer(r.path, dev_port=free_port()).start()
        yield Site(r, web)
    finally:
        if web is not None:
            web.stop()
        r.discard()
        if old is None:
            os.environ.pop("IMUNIFYEMAIL_ROOT", None)
        else:
            os.environ["IMUNIFYEMAIL_ROOT"] = old


# -- talking to the sockets -------------------------------------------------------------------

class Page(HTMLParser):
    """What a test needs from a page: its links, forms' actions and fields, and its text."""

    def __init__(self, html: str):
        super().__init__()
        self.links: List[str] = []
        self.actions: List[str] = []
        self.inputs: List[Dict[str, str]] = []
        self.text: List[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "form":
            self.actions.append(a.get("action", ""))
        if tag == "input":
            self.inputs.append(a)

    def handle_data(self, data):
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())

    def csrf(self) -> str:
        return next(i["value"] for i in self.inputs if i.get("name") == "csrf_token")


def admin_get(site: Site, target: str) -> Tuple[int, Dict[str, str], bytes]:
    return unix_request(site.web.admin_socket, "GET", target)


def form_body(fields: List[Tuple[str, str]]) -> bytes:
    from urllib.parse import urlencode
    return urlencode(fields).encode()


_CLIENT = r"""
import http.client, json, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.settimeout(60); self.sock.connect(sys.argv[1])
req = json.loads(sys.stdin.read())
try:
    c = C("localhost", timeout=60)
    c.request(req["method"], req["target"], body=req["body"].encode() or None, headers=req["headers"])
    r = c.getresponse()
    print(json.dumps({"status": r.status, "headers": dict((k.lower(), v) for k, v in r.getheaders()),
                      "body": r.read().decode("utf-8", "replace")}))
except PermissionError:
    print(json.dumps({"status": "EACCES"}))
"""


def as_user(user: str, socket_path: str, method: str, target: str, body: bytes = b"",
            headers: Optional[Dict[str, str]] = None) -> dict:
    """One HTTP request over a unix socket, made by a process of the real OS user ``user``."""
    request = json.dumps({"method": method, "target": target, "body": body.decode(), "headers": headers or {}})
    gid = pwd.getpwnam(user).pw_gid
    proc = subprocess.run(["setpriv", f"--reuid={user}", f"--regid={gid}", "--init-groups", sys.executable, "-I",
                           "-c", _CLIENT, socket_path], input=request, capture_output=True, text=True, cwd="/",
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def ids_in(html: str) -> List[str]:
    return sorted(set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", html)))
