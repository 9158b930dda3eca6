"""The WHM and cPanel entries run as CGIs — with the environment WHM and cPanel give them — against the
live sockets: a GET lists held mail, a POST with the page's token releases, every link keeps the
cpsess prefix; run as a hosted user (real su), the cPanel entry shows that user's mail only."""
import os
import pwd
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple
from urllib.parse import urlencode

from .conftest import EXIM_USER, Page, ids_in

REPO = Path(__file__).resolve().parents[2]
WHM_CGI = REPO / "whm/cgi/index.cgi"
CPANEL_CGI = REPO / "cpanel/index.live.cgi"
TOKEN = "/cpsess0123456789"
WHM_PREFIX = f"{TOKEN}/cgi/imunifyemail/index.cgi"
CPANEL_PREFIX = f"{TOKEN}/frontend/jupiter/imunifyemail/index.live.cgi"


def cgi_env(site, method: str, query: str = "", body: bytes = b"", **extra) -> Dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method,
           "QUERY_STRING": query, "CONTENT_LENGTH": str(len(body)) if body else "", "cp_security_token": TOKEN,
           "IMUNIFYEMAIL_ROOT": str(site.root.path), "SERVER_SOFTWARE": "cpsrvd/11.120"}
    if body:
        env["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    env.update(extra)
    return env


def parse(out: bytes) -> Tuple[int, Dict[str, str], str]:
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("Status: "), lines[0]
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body.decode()


def whm(site, method: str = "GET", query: str = "", body: bytes = b"", **extra):
    env = cgi_env(site, method, query, body, REMOTE_USER="root", SCRIPT_NAME="/cgi/imunifyemail/index.cgi", **extra)
    proc = subprocess.run([sys.executable, str(WHM_CGI)], input=body, env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return parse(proc.stdout)


def cpanel_as(site, user: str, method: str = "GET", query: str = "", body: bytes = b""):
    """The cPanel entry run as the hosted user, the way cPanel runs it (here through su)."""
    env = cgi_env(site, method, query, body, REMOTE_USER=user, CPANEL="1",
                  SCRIPT_NAME="/frontend/jupiter/imunifyemail/index.live.cgi")
    command = "exec env -i " + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + \
        f" {shlex.quote(sys.executable)} {shlex.quote(str(CPANEL_CGI))}"
    proc = subprocess.run(["su", user, "-s", "/bin/sh", "-c", command], input=body, capture_output=True,
                          timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr
    return parse(proc.stdout)


def assert_prefixed(html: str, prefix: str) -> Page:
    page = Page(html)
    targets = page.links + page.actions
    assert targets, "no links on the page"
    for target in targets:
        assert target.startswith(prefix), target
    return page


def test_whm_get_lists_held_mail_and_every_link_keeps_the_cpsess_prefix(site):
    ids = site.hold("demo1", "cgiwhm", 2)
    status, headers, html = whm(site)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert set(ids) <= set(ids_in(html))
    page = assert_prefixed(html, WHM_PREFIX)
    assert f"{WHM_PREFIX}?route=/static/style.css" in html
    assert "WHM · root" in page.all_text
    # the route travels in the query (the form the app's own links take), or in PATH_INFO
    status, _, html = whm(site, query=urlencode({"route": f"/admin/email/{ids[0]}", "view": "header"}))
    assert status == 200 and "Message-ID" in html
    status, _, html = whm(site, PATH_INFO="/admin/activity")
    assert status == 200 and "Activity Monitor" in html
    assert_prefixed(html, WHM_PREFIX)
    status, _, html = whm(site, query="route=/admin/../../etc/passwd")
    assert status == 200 and "Quarantine" in html   # an odd route falls back to the home page


def test_whm_post_with_the_pages_token_releases_and_redirects_within_whm(site):
    [email_id] = site.hold("demo2", "cgipost", 1)
    _, _, html = whm(site)
    token = Page(html).csrf()
    body = urlencode({"csrf_token": token, "action": "release", "ids": email_id}).encode()
    status, _, confirm = whm(site, "POST", "route=/admin/emails", body)
    assert status == 200 and "Yes, release" in confirm
    assert_prefixed(confirm, WHM_PREFIX)
    body = urlencode({"csrf_token": Page(confirm).csrf(), "action": "release", "ids": email_id,
                      "confirm": "yes"}).encode()
    status, headers, _ = whm(site, "POST", "route=/admin/emails", body)
    assert status == 303 and headers["location"].startswith(f"{WHM_PREFIX}?route=/admin/quarantine")
    [sent] = site.released("cgipost")
    assert sent.uid == pwd.getpwnam(EXIM_USER).pw_uid   # re-injected as the Exim user, by the daemon
    assert sent.argv[:3] == ["-oi", "-oMr", "imunifyemail-released"]
    assert site.root.held(subject="cgipost") == []
    # without the token nothing happens
    [kept] = site.hold("demo2", "cginotoken", 1)
    body = urlencode({"action": "delete", "ids": kept, "confirm": "yes"}).encode()
    assert whm(site, "POST", "route=/admin/emails", body)[0] == 403
    assert [m.email_id for m in site.root.held(subject="cginotoken")] == [kept]


def test_the_cpanel_entry_run_as_the_hosted_user_shows_only_their_mail(site):
    mine = site.hold("demo1", "cgicp1", 1)
    theirs = site.hold("demo2", "cgicp2", 1)
    status, _, html = cpanel_as(site, "demo1")
    assert status == 200
    shown = set(ids_in(html))
    assert set(mine) <= shown and not set(theirs) & shown
    page = assert_prefixed(html, CPANEL_PREFIX)
    assert "cPanel · demo1" in page.all_text
    status, _, html = cpanel_as(site, "demo1", query=urlencode({"route": f"/user/email/{theirs[0]}"}))
    assert status == 404
    status, _, html = cpanel_as(site, "demo1", query="route=/admin/quarantine")
    assert status == 403
    # a delete through the cPanel entry, with the token of the user's own page
    body = urlencode({"csrf_token": page.csrf(), "action": "delete", "ids": mine[0], "confirm": "yes"}).encode()
    status, headers, _ = cpanel_as(site, "demo1", "POST", "route=/user/emails", body)
    assert status == 303 and headers["location"].startswith(f"{CPANEL_PREFIX}?route=/user/quarantine")
    assert site.root.held(subject="cgicp1") == []


def test_the_entry_says_so_when_the_web_service_is_down(site, tmp_path):
    env_root = tmp_path / "root"
    (env_root / "var/run/imunifyemail").mkdir(parents=True)
    env = cgi_env(site, "GET", REMOTE_USER="root")
    env["IMUNIFYEMAIL_ROOT"] = str(env_root)
    proc = subprocess.run([sys.executable, str(WHM_CGI)], env=env, capture_output=True, timeout=60)
    status, _, body = parse(proc.stdout)
    assert status == 503 and "systemctl start imunifyemail-web" in body
    assert os.access(WHM_CGI, os.X_OK) and os.access(CPANEL_CGI, os.X_OK)
