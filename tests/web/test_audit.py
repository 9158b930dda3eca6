"""The audit trail through every door: ie-cli, the WHM pages, the cPanel pages (real OS users on the
real sockets). Each action is recorded once, with the right actor, role and door; a hosted user reads
the entries about their own account only; nothing on the pages edits an entry."""
import pytest

from .conftest import Page, as_user, form_body

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def admin_post(site, target, fields):
    token = Page(as_user("root", site.web.admin_socket, "GET", "/admin/quarantine")["body"]).csrf()
    return as_user("root", site.web.admin_socket, "POST", target, form_body([("csrf_token", token), *fields]),
                   {**FORM, "X-Remote-User": "root"})


def user_post(site, user, target, fields):
    token = Page(as_user(user, site.web.user_socket, "GET", "/user/quarantine")["body"]).csrf()
    return as_user(user, site.web.user_socket, "POST", target, form_body([("csrf_token", token), *fields]), FORM)


def trail(site, *args):
    return site.root.cli_json("audit", "list", "--limit", "1000", *args)["items"]


def about(entries, email_id):
    return [(e["action"], e["actor"], e["role"], e["via"], e["account"], e["outcome"])
            for e in entries if email_id in e["ids"]]


@pytest.fixture(scope="module")
def held(site):
    return site.hold("demo1", "audA", 4) + site.hold("demo2", "audB", 1)


def test_each_mail_action_is_recorded_once_with_who_and_from_where(site, held):
    by_cli, by_whm, by_user, deleted_by_user, theirs = held
    site.root.cli("emails", "release", "--ids", by_cli)
    assert admin_post(site, "/admin/emails", [("action", "release"), ("ids", by_whm), ("confirm", "yes")])[
        "status"] == 303
    assert user_post(site, "demo1", "/user/emails", [("action", "release"), ("ids", by_user), ("confirm", "yes")])[
        "status"] == 303
    assert user_post(site, "demo1", "/user/emails", [("action", "delete"), ("ids", deleted_by_user),
                                                     ("confirm", "yes")])["status"] == 303
    entries = trail(site)
    assert about(entries, by_cli) == [("release", "root", "root", "cli", "demo1", "ok")]
    assert about(entries, by_whm) == [("release", "root", "root", "whm", "demo1", "ok")]
    assert about(entries, by_user) == [("release", "demo1", "hosted user", "cpanel", "demo1", "ok")]
    assert about(entries, deleted_by_user) == [("delete", "demo1", "hosted user", "cpanel", "demo1", "ok")]
    assert about(entries, theirs) == []


def test_settings_changes_from_the_cli_and_whm_are_recorded_with_what_changed(site):
    before = len(trail(site))
    site.root.cli("settings", "--notify-period", "7200")
    answer = admin_post(site, "/admin/settings/features", [
        ("notify_admin", "on"), ("notify_period", "3600"), ("webhook_url", ""), ("webhook_timeout", "5"),
        ("webhook_retries", "3"), ("containment_threshold", "50"), ("metrics", "on")])
    assert answer["status"] == 303, answer
    site.root.cli("whitelist", "sender", "add", "audit-ok.example")
    site.root.cli("whitelist", "sender", "remove", "audit-ok.example")
    site.root.cli("filter-settings", "--spam-filter")
    entries = trail(site)[: len(trail(site)) - before]
    summary = [(e["action"], e["via"], e["detail"]) for e in reversed(entries)]
    assert summary == [
        ("server settings", "cli", {"notify_period": {"from": 3600, "to": 7200}}),
        ("server settings", "whm", {"notify_period": {"from": 7200, "to": 3600}}),
        ("whitelist add", "cli", {"list": "sender", "values": ["audit-ok.example"]}),
        ("whitelist remove", "cli", {"list": "sender", "values": ["audit-ok.example"]}),
        ("filter settings", "cli", {"spam_filter": True}),
    ]


def test_a_refused_change_records_nothing_and_changes_nothing(site):
    before = trail(site)
    answer = admin_post(site, "/admin/settings/features", [("notify_period", "5"), ("webhook_url", "ftp://x")])
    assert answer["status"] == 400 and "notify_period" in Page(answer["body"]).all_text
    assert site.root.cli("settings", "--webhook-url", "nope", check=False).returncode == 1
    assert trail(site) == before
    assert site.root.cli_json("settings", "--json")["webhook_url"] == ""


def test_a_hosted_user_reads_only_the_entries_about_their_own_account(site, held):
    theirs = held[4]
    site.root.cli("emails", "remove", "--ids", theirs)
    mine = as_user("demo1", site.web.user_socket, "GET", "/user/audit?period=all")
    assert mine["status"] == 200
    text = Page(mine["body"]).all_text
    assert held[2] in mine["body"] and held[3] in mine["body"] and theirs not in mine["body"]
    assert "hosted user" in text
    # Asking for another account (a field only the administrator's page has) changes nothing.
    widened = as_user("demo1", site.web.user_socket, "GET", "/user/audit?period=all&account=demo2")
    assert theirs not in widened["body"]
    assert theirs in as_user("demo2", site.web.user_socket, "GET", "/user/audit?period=all")["body"]
    everything = as_user("root", site.web.admin_socket, "GET", "/admin/audit?period=all")["body"]
    assert theirs in everything and held[2] in everything
    # Read-only: no form that posts on the audit pages, and no route takes a POST there.
    assert 'method="post"' not in mine["body"].lower() and 'method="post"' not in everything.lower()
    assert user_post(site, "demo1", "/user/audit", [("period", "all")])["status"] == 405


def test_the_cli_filters_by_account_and_age(site, held):
    only = trail(site, "-a", "demo2")
    assert only and all(e["account"] == "demo2" for e in only)
    assert trail(site, "--since", "3600") == trail(site)   # all of this module's entries are recent
    assert trail(site, "-a", "gone-account") == []          # a removed account's entries stay readable by name
    text = site.root.cli("audit", "list", "-a", "demo2").stdout
    assert text.splitlines()[0].split() == ["Time", "Actor", "Role", "Via", "Account", "Action", "Ids", "Outcome"]
    assert text.rstrip().endswith(f"Max Count {len(only)}")
    assert site.root.cli("audit", "list", "--since", "-5", check=False).returncode == 1


SECRET_URL = "https://bot:pa55@hooks.example.com/services/T000/B000/s3cr3tpath?token=t0ken"


def test_a_webhook_url_is_recorded_and_logged_with_its_scheme_and_host_only(site):
    """The URL may carry a token (its path, its query, a password): the audit trail (and its pages)
    say only where it goes; the setting itself stays the whole URL, so the webhook still works. (The
    log line of the same entry: tests/test_cli.py.)"""
    answer = admin_post(site, "/admin/settings/features", [
        ("notify_admin", "on"), ("notify_period", "3600"), ("webhook_url", SECRET_URL), ("webhook_timeout", "5"),
        ("webhook_retries", "3"), ("containment_threshold", "50"), ("metrics", "on")])
    assert answer["status"] == 303, answer
    site.root.cli("settings", "--webhook-url", "http://[2001:db8::1]:8080/hook/s3cr3tpath")
    try:
        assert site.root.cli_json("settings", "--json")["webhook_url"] == "http://[2001:db8::1]:8080/hook/s3cr3tpath"
        changes = [(e["via"], e["detail"]) for e in reversed(trail(site)) if e["action"] == "server settings"][-2:]
        assert changes == [
            ("whm", {"webhook_url": {"from": "", "to": "https://hooks.example.com/…"}}),
            ("cli", {"webhook_url": {"from": "https://hooks.example.com/…", "to": "http://[2001:db8::1]/…"}})]
        page = as_user("root", site.web.admin_socket, "GET", "/admin/audit?period=all")["body"]
        assert "webhook url: (none) → https://hooks.example.com/…" in Page(page).all_text
        for text in (page, site.root.cli("audit", "list", "--json").stdout, site.web.log.read_text()):
            for secret in ("s3cr3tpath", "t0ken", "pa55", "services/T000"):
                assert secret not in text
    finally:
        site.root.cli("settings", "--webhook-url", "")
