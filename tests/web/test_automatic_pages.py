"""The pages of automatic release and containment, on the real web app and daemon: when held
rate-limited mail is expected to leave (Quarantine), a contained account's badge and its one-click
restore (Settings, a POST with the caller's CSRF token), and what its own user is told."""
import time

from devtools import samples

from .conftest import Page, admin_get, as_user, form_body

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def admin_page(site, target: str) -> str:
    status, _, body = admin_get(site, target)
    assert status == 200, body[:500]
    return body.decode()


def admin_post(site, target: str, fields) -> dict:
    return as_user("root", site.web.admin_socket, "POST", target, form_body(fields), FORM)


def account(site, name: str) -> dict:
    [found] = [a for a in site.root.cli_json("accounts", "list")["items"] if a["name"] == name]
    return found


def test_the_quarantine_shows_when_rate_limited_mail_is_expected_to_leave(site, token):
    sender = f"{token}@demo1.test"
    site.root.cli("am", "server-settings", "set", "--sender-email=1")
    try:
        for n in range(2):
            site.root.send(samples.ham(sender=sender, subject=f"{token} {n}"), sender=sender)
        [item] = [i for i in site.root.cli_json("emails", "list", "--subject", token)["items"]]
        assert item["reasons"] == ["ratelimit"] and item["expected_release"] is None   # off: none
        assert "Expected to Leave" not in admin_page(site, f"/admin/quarantine?q={token}")

        site.root.cli("settings", "--auto-release", "on")
        [item] = site.root.cli_json("emails", "list", "--subject", token)["items"]
        shown = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(item["expected_release"]))
        page = Page(admin_page(site, f"/admin/quarantine?q={token}"))
        assert "Expected to Leave" in page.all_text and shown in page.all_text
        mine = Page(as_user("demo1", site.web.user_socket, "GET", f"/user/quarantine?q={token}")["body"])
        assert shown in mine.all_text   # the hosted user sees it for their own mail too
    finally:
        site.root.cli("settings", "--auto-release", "off")
        site.root.cli("am", "server-settings", "set", "--sender-email=0")


def test_a_contained_account_is_badged_and_one_post_restores_it(site, token):
    site.root.cli("settings", "--containment-threshold", "1")
    try:
        for n in range(2):
            sent = site.root.send(samples.gtube(sender=f"{token}@demo2.test", subject=f"{token} {n}"),
                                  sender=f"{token}@demo2.test")
            assert sent.verdict == "hold"
    finally:
        site.root.cli("settings", "--containment-threshold", "50")
    demo2 = account(site, "demo2")
    assert demo2["state"] == "block" and demo2["contained_at"] is not None
    user = Page(as_user("demo2", site.web.user_socket, "GET", "/user/quarantine")["body"])
    assert "blocked automatically" in user.all_text

    settings = Page(admin_page(site, "/admin/settings?account=demo2"))
    assert "Contained" in settings.all_text and "Restore" in settings.all_text
    action = next(a for a in settings.actions if a.endswith("/settings/restore/demo2"))
    assert "Contained" in Page(admin_page(site, "/admin/settings/account/demo2")).all_text
    assert admin_post(site, action, [])["status"] == 403   # no token: nothing changes
    assert account(site, "demo2")["state"] == "block"

    answer = admin_post(site, action, [("csrf_token", settings.csrf())])
    assert answer["status"] == 303, answer
    demo2 = account(site, "demo2")
    assert (demo2["state"], demo2["contained_at"]) == ("active", None)
    [entry] = [e for e in site.root.cli_json("audit", "list")["items"] if e["action"] == "account edit"
               and e["account"] == "demo2"]
    assert (entry["actor"], entry["via"], entry["detail"]["state"]) == ("root", "whm", "active")
    assert "contained_at" in entry["detail"]
    contain = [e for e in site.root.cli_json("audit", "list")["items"] if e["action"] == "contain"]
    assert [(e["actor"], e["role"], e["account"]) for e in contain] == [("imunifyemaild", "daemon", "demo2")]
    sent = site.root.send(samples.ham(sender=f"{token}@demo2.test", subject=f"{token} after"),
                          sender=f"{token}@demo2.test")
    assert sent.verdict == "pass"
