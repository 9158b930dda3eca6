"""A sender's own X-ImunifyEmail-* fields on the pages and in a release from them: the Header and Plain
views show the filter's verdict only, a release (handed to the daemon) sends only the filter's, and the
held copy stays byte for byte as received."""
from devtools import samples

from .conftest import Page, as_user, form_body

FORGED = (("X-ImunifyEmail-Filter-Action", "no action"), ("X-ImunifyEmail-Filter-Score", "-5.00"),
          ("X-ImunifyEmail-Filter-Info", "Zm9yZ2VkIGJ5IHRoZSBzZW5kZXI="))


def test_pages_and_a_release_carry_the_filters_verdict_never_the_senders(site):
    def raw_of(n):
        return samples.ham(sender="forger@demo1.test", subject=f"forgedverdict {n}", extra_headers=FORGED)
    [email_id] = site.hold("demo1", "forgedverdict", 1, raw_of=raw_of)
    [held] = site.root.held(subject="forgedverdict")
    stored = site.root.quarantine().read(held)
    assert b"X-ImunifyEmail-Filter-Info: Zm9yZ2Vk" in stored   # the evidence, as received

    for socket, user, area in ((site.web.admin_socket, "root", "admin"), (site.web.user_socket, "demo1", "user")):
        header = Page(as_user(user, socket, "GET", f"/{area}/email/{email_id}?view=header")["body"]).all_text
        plain = as_user(user, socket, "GET", f"/{area}/email/{email_id}?view=plain")["body"]
        # held while the account was blocked: the filter's verdict is "blocked", without a score
        assert "X-ImunifyEmail-Filter-Action blocked" in header
        for text in (header, plain):
            assert "no action" not in text and "-5.00" not in text and "Zm9yZ2Vk" not in text
            assert "X-ImunifyEmail-Filter-Info" not in text and "X-ImunifyEmail-Filter-Score" not in text
        assert "X-ImunifyEmail-Filter-Action: blocked" in plain and "Subject: forgedverdict 0" in plain

    token = Page(as_user("demo1", site.web.user_socket, "GET", "/user/quarantine")["body"]).csrf()
    answer = as_user("demo1", site.web.user_socket, "POST", "/user/emails",
                     form_body([("csrf_token", token), ("action", "release"), ("ids", email_id), ("confirm", "yes")]),
                     {"Content-Type": "application/x-www-form-urlencoded"})
    assert answer["status"] == 303, answer
    [sent] = site.released("forgedverdict")
    ours = [line for line in sent.message.split(b"\n\n")[0].splitlines() if line.lower().startswith(b"x-imunifyemail")]
    assert ours == [b"X-ImunifyEmail-Filter-Action: blocked"]
    without = b"".join(line for line in stored.splitlines(keepends=True)
                       if not line.lower().startswith(b"x-imunifyemail"))
    assert sent.message == without.replace(b"\n\n", b"\nX-ImunifyEmail-Filter-Action: blocked\n\n", 1)
