"""Who may see and do what on the web app's sockets, with real OS users: the identity is the socket
peer's, nothing a client sends changes it, and a hosted user reaches their own quarantine only."""
import re

import pytest

from .conftest import Page, admin_get, as_user, form_body, ids_in


@pytest.fixture(scope="module")
def mail(site):
    """Two messages held for demo1, two for demo2."""
    return {"demo1": site.hold("demo1", "isoA", 2), "demo2": site.hold("demo2", "isoB", 2)}


def user_get(site, user, target, **headers):
    return as_user(user, site.web.user_socket, "GET", target, headers=headers)


def user_post(site, user, target, fields, **headers):
    return as_user(user, site.web.user_socket, "POST", target, form_body(fields),
                   {"Content-Type": "application/x-www-form-urlencoded", **headers})


def token_of(site, user) -> str:
    return Page(user_get(site, user, "/user/quarantine")["body"]).csrf()


def test_a_non_root_user_cannot_connect_to_the_admin_socket(site):
    assert as_user("demo1", site.web.admin_socket, "GET", "/admin/quarantine")["status"] == "EACCES"
    assert as_user("_imunifyemail", site.web.admin_socket, "GET", "/healthz")["status"] == "EACCES"


def test_a_hosted_user_lists_only_their_own_mail(site, mail):
    page = user_get(site, "demo1", "/user/quarantine")
    assert page["status"] == 200
    shown = ids_in(page["body"])
    assert set(mail["demo1"]) <= set(shown) and not set(mail["demo2"]) & set(shown)
    assert "cPanel · demo1" in Page(page["body"]).all_text


@pytest.mark.parametrize("target", ["/user/quarantine?account=demo2", "/user/quarantine?account=root",
                                    "/user/quarantine?unattributed=1", "/user/quarantine?q=isoB&in=subject"])
def test_query_parameters_do_not_widen_a_users_view(site, mail, target):
    page = user_get(site, "demo1", target)
    assert page["status"] in (200, 404)
    assert not set(mail["demo2"]) & set(ids_in(page["body"]))


def test_forged_identity_headers_and_cookies_change_nothing(site, mail):
    forged = {"X-Remote-User": "root", "Cookie": "imunifyemail_sandbox=eyJkZXZfaWRlbnRpdHkiOiJkZW1vMiJ9",
              "X-IE-Script-Name": "/evil\"><script>", "REMOTE_USER": "demo2", "X-Forwarded-For": "127.0.0.1"}
    page = user_get(site, "demo1", "/user/quarantine", **forged)
    assert page["status"] == 200 and not set(mail["demo2"]) & set(ids_in(page["body"]))
    assert "<script>" not in page["body"]
    for target in ("/admin/quarantine", "/admin/settings", "/admin/activity", "/"):
        assert user_get(site, "demo1", target, **forged)["status"] in (403, 404), target


def test_another_accounts_email_is_not_found_by_any_route(site, mail):
    token = token_of(site, "demo1")
    theirs = mail["demo2"][0]
    for view in ("body", "header", "plain"):
        assert user_get(site, "demo1", f"/user/email/{theirs}?view={view}")["status"] == 404
    assert user_get(site, "demo1", f"/user/email/{theirs.upper()}")["status"] == 404
    assert user_get(site, "demo1", f"/user/email/..%2F..%2Fadmin%2Femail%2F{theirs}")["status"] in (400, 404)
    for action in ("release", "delete"):
        for extra in ([], [("confirm", "yes")]):
            answer = user_post(site, "demo1", "/user/emails",
                               [("csrf_token", token), ("action", action), ("ids", theirs), *extra])
            assert answer["status"] == 404, answer
            assert "not found" in Page(answer["body"]).all_text
        mixed = user_post(site, "demo1", "/user/emails", [("csrf_token", token), ("action", action),
                                                          ("ids", f"{mail['demo1'][0]},{theirs}"), ("confirm", "yes")])
        assert mixed["status"] == 404   # one foreign id: nothing at all is done
    assert sorted(m.email_id for m in site.root.held(subject="isoB")) == sorted(mail["demo2"])
    assert sorted(m.email_id for m in site.root.held(subject="isoA")) == sorted(mail["demo1"])
    assert site.released("iso") == []


def test_paging_after_another_accounts_email_is_not_found_as_an_unknown_one(site, mail):
    """A page "after" an id is a position: for another account's id it would tell when that email was
    received (and that it exists). Out of the caller's scope it is not found, exactly as an unknown id."""
    theirs, unknown = mail["demo2"][0], "00000000-0000-4000-8000-000000000000"
    answers = {}
    for name, email_id in (("theirs", theirs), ("unknown", unknown)):
        for key in ("after", "before"):
            for extra in ("", "&q=iso&in=subject", "&order=asc"):
                page = user_get(site, "demo1", f"/user/quarantine?{key}={email_id}{extra}")
                answers[(name, key, extra)] = (page["status"], Page(page["body"]).all_text.replace(email_id, "ID"))
                assert page["status"] == 404 and f'email "{email_id}" not found' in Page(page["body"]).all_text
                assert not set(mail["demo1"]) & set(ids_in(page["body"]))   # no page of theirs either
    assert all(answers[("theirs",) + k[1:]] == v for k, v in answers.items() if k[0] == "unknown")
    mine = user_get(site, "demo1", f"/user/quarantine?after={mail['demo1'][1]}")   # newest first: the older one
    assert mine["status"] == 200 and mail["demo1"][0] in ids_in(mine["body"])
    # The administrator's list of one account is scoped the same way.
    status, _, _ = admin_get(site, f"/admin/quarantine?account=demo1&after={theirs}")
    assert status == 404
    assert admin_get(site, f"/admin/quarantine?after={theirs}")[0] == 200


def test_a_hosted_users_decisions_teach_the_filter_nothing(site):
    """"Release as not spam" is the administrator's action only; a user's "as spam" is ignored: their
    delete teaches nothing (a spammer who owns the account must not train the filter; issue 19)."""
    ids = site.hold("demo1", "userlearn", 2)
    token = token_of(site, "demo1")
    refused = user_post(site, "demo1", "/user/emails", [("csrf_token", token), ("action", "release_ham"),
                                                        ("ids", ids[0]), ("confirm", "yes")])
    assert refused["status"] == 400 and sorted(m.email_id for m in site.root.held(subject="userlearn")) == sorted(ids)
    confirm = user_post(site, "demo1", "/user/emails", [("csrf_token", token), ("action", "delete"), ("ids", ids[0])])
    assert confirm["status"] == 200 and "Delete as spam" not in Page(confirm["body"]).all_text
    done = user_post(site, "demo1", "/user/emails", [("csrf_token", token), ("action", "delete"), ("ids", ids[0]),
                                                     ("as_spam", "on"), ("confirm", "yes")])
    assert done["status"] == 303 and [m.email_id for m in site.root.held(subject="userlearn")] == [ids[1]]
    entries = site.root.cli_json("audit", "list")["items"]
    assert [e["action"] for e in entries if ids[0] in e["ids"]] == ["delete"]   # no lesson


def test_state_changes_need_this_callers_token(site, mail):
    mine = mail["demo1"][0]
    fields = [("action", "delete"), ("ids", mine), ("confirm", "yes")]
    assert user_post(site, "demo1", "/user/emails", fields)["status"] == 403
    assert user_post(site, "demo1", "/user/emails", [("csrf_token", "1.abc"), *fields])["status"] == 403
    theirs_token = token_of(site, "demo2")   # a real token, but for another user
    assert user_post(site, "demo1", "/user/emails", [("csrf_token", theirs_token), *fields])["status"] == 403
    assert user_get(site, "demo1", f"/user/emails?action=delete&ids={mine}&confirm=yes")["status"] == 405
    assert mine in [m.email_id for m in site.root.held(subject="isoA")]


def test_the_sixth_release_in_an_hour_is_refused(site):
    ids = site.hold("demo1", "sixth", 6)
    token = token_of(site, "demo1")
    for email_id in ids[:5]:
        answer = user_post(site, "demo1", "/user/emails", [("csrf_token", token), ("action", "release"),
                                                           ("ids", email_id), ("confirm", "yes")])
        assert answer["status"] == 303, answer
    refused = user_post(site, "demo1", "/user/emails", [("csrf_token", token), ("action", "release"),
                                                        ("ids", ids[5]), ("confirm", "yes")])
    assert refused["status"] == 403
    assert re.search(r"release limit reached: 5 recipient\(s\) per hour, 0 left now \(asked for 1\)", Page(refused["body"]).all_text)
    assert len(site.released("sixth")) == 5 and [m.email_id for m in site.root.held(subject="sixth")] == ids[5:]
    # The administrator has no such limit.
    answer = as_user("root", site.web.admin_socket, "POST", "/admin/emails",
                     form_body([("csrf_token", Page(as_user("root", site.web.admin_socket, "GET",
                                                            "/admin/quarantine")["body"]).csrf()),
                                ("action", "release"), ("ids", ids[5]), ("confirm", "yes")]),
                     {"Content-Type": "application/x-www-form-urlencoded"})
    assert answer["status"] == 303 and len(site.released("sixth")) == 6


def test_the_release_quota_counts_recipients_not_messages(site):
    """One release of a message to fifty addresses is fifty releases' worth: more than the quota is the
    administrator's to release, and several messages add up their recipients."""
    [wide] = site.hold("demo2", "wide", 1, recipients=50)
    narrow = site.hold("demo2", "narrow", 2, recipients=3)

    def release(email_id):
        return user_post(site, "demo2", "/user/emails", [("csrf_token", token_of(site, "demo2")),
                                                         ("action", "release"), ("ids", email_id), ("confirm", "yes")])
    refused = release(wide)
    assert refused["status"] == 403
    assert (f'email "{wide}" has 50 recipients, more than your release limit of 5 recipient(s) per hour: '
            "only the administrator can release it") in Page(refused["body"]).all_text
    assert site.released("wide") == []
    assert "You can release mail to 5 more recipient(s) this hour" in Page(user_get(site, "demo2",
                                                                                   "/user/quarantine")["body"]).all_text
    confirm = user_post(site, "demo2", "/user/emails", [("csrf_token", token_of(site, "demo2")),
                                                        ("action", "release"), ("ids", narrow[0])])
    assert "This counts 3 recipient(s) against your limit of 5 per hour (5 left now)" in Page(confirm["body"]).all_text
    assert release(narrow[0])["status"] == 303
    assert len(site.released("narrow")[0].recipients) == 3
    assert "You can release mail to 2 more recipient(s) this hour" in Page(user_get(site, "demo2",
                                                                                   "/user/quarantine")["body"]).all_text
    refused = release(narrow[1])
    assert refused["status"] == 403
    assert "release limit reached: 5 recipient(s) per hour, 2 left now (asked for 3)" in Page(refused["body"]).all_text
    assert [m.email_id for m in site.root.held(subject="narrow")] == narrow[1:]
    # The administrator has no quota: the fifty go out.
    token = Page(as_user("root", site.web.admin_socket, "GET", "/admin/quarantine")["body"]).csrf()
    answer = as_user("root", site.web.admin_socket, "POST", "/admin/emails",
                     form_body([("csrf_token", token), ("action", "release"), ("ids", wide), ("confirm", "yes")]),
                     {"Content-Type": "application/x-www-form-urlencoded"})
    assert answer["status"] == 303 and len(site.released("wide")[0].recipients) == 50


def test_a_blocked_accounts_user_cannot_release(site):
    [email_id] = site.hold("demo2", "blockedrel", 1)
    site.root.cli("accounts", "edit", "-a", "demo2", "--state", "block")
    try:
        answer = user_post(site, "demo2", "/user/emails", [("csrf_token", token_of(site, "demo2")),
                                                           ("action", "release"), ("ids", email_id),
                                                           ("confirm", "yes")])
        assert answer["status"] == 403 and "only the administrator can release" in Page(answer["body"]).all_text
    finally:
        site.root.cli("accounts", "edit", "-a", "demo2", "--state", "active")
    assert site.released("blockedrel") == []


def test_a_unix_user_who_is_no_cpanel_account_is_refused(site):
    answer = as_user("nobody", site.web.user_socket, "GET", "/user/quarantine")
    assert answer["status"] == 403 and "not a cPanel account" in answer["body"]
    # root has no cPanel account either: the user socket is not the administrator's way in
    assert as_user("root", site.web.user_socket, "GET", "/user/quarantine")["status"] == 403


def test_pages_carry_a_strict_policy_and_errors_no_exception_text(site, mail):
    page = user_get(site, "demo1", "/user/quarantine?limit=lots")
    assert page["status"] == 400 and "Per page" in page["body"] and "Traceback" not in page["body"]
    headers = user_get(site, "demo1", "/user/quarantine")["headers"]
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'self'" in csp
    assert headers["x-frame-options"] == "SAMEORIGIN" and headers["x-content-type-options"] == "nosniff"
