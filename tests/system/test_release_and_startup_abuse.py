"""A compromised account's own tools against the product: the cPanel page's release (its quota counts
recipients, not messages), and the daemon user's files (root's start-up never follows a link the
service user planted). Through the whole stack: real Exim, Rspamd, gunicorn, OS users
(docs/security.md)."""
import os
import stat
import subprocess

import pytest

from devtools import samples
from devtools.stack import PYTHON
from tests.web.conftest import Page, as_user, form_body

from .conftest import held, settle, sunk, wait_held, wait_sunk


@pytest.fixture(scope="module")
def web(stack):
    server = stack.start_web()
    yield server
    stack.stop_web()


def user_post(web, user: str, target: str, fields):
    return as_user(user, web.user_socket, "POST", target, form_body(fields),
                   {"Content-Type": "application/x-www-form-urlencoded"})


def test_one_release_of_a_message_to_fifty_costs_fifty_of_the_hourly_quota(stack, web, token):
    sender = f"{token}@demo1.test"
    rcpts = [f"{token}-{n}@remote.example" for n in range(50)]
    stack.sendmail(samples.gtube(sender=sender, to=rcpts[:1], subject=f"Wide {token}"), "-f", sender, *rcpts,
                   user="demo1")
    [item] = wait_held(stack, f"Wide {token}")
    assert len(item["recipients"]) == 50
    # demo1's own processes (its hacked PHP included) use the cPanel page's actions over the user socket
    csrf = Page(as_user("demo1", web.user_socket, "GET", "/user/quarantine")["body"]).csrf()
    refused = user_post(web, "demo1", "/user/emails", [("csrf_token", csrf), ("action", "release"),
                                                       ("ids", item["email_id"]), ("confirm", "yes")])
    assert refused["status"] == 403
    assert "more than your release limit of 5 recipient(s) per hour" in Page(refused["body"]).all_text
    settle(stack)
    assert sunk(stack, f"Wide {token}") == [] and len(held(stack, f"Wide {token}")) == 1
    # the administrator has no quota: the same message leaves, to all fifty
    stack.ie_cli("emails", "release", "--ids", item["email_id"])
    [msg] = wait_sunk(stack, f"Wide {token}")
    assert sorted(msg.rcpt_to) == sorted(rcpts)


def _as_daemon_user(stack, code: str) -> None:
    subprocess.run(["setpriv", "--reuid=_imunifyemail", "--regid=_imunifyemail", "--clear-groups", PYTHON, "-c",
                    code], check=True, cwd="/")


def test_root_start_up_does_not_chown_what_the_daemon_user_links_the_database_to(stack, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("root's own file\n")
    victim.chmod(0o600)
    tmp_path.chmod(0o755)
    before = victim.stat()
    shm = stack.root / "var/imunifyemail/quarantine/storage/quarantine.db-shm"
    stack.stop_daemon()   # a clean stop removes -wal and -shm: the service user plants its link
    try:
        _as_daemon_user(stack, f"import os; os.path.lexists({str(shm)!r}) and os.unlink({str(shm)!r}); "
                               f"os.symlink({str(victim)!r}, {str(shm)!r})")
        with pytest.raises(RuntimeError) as refused:
            stack.start_daemon()
        assert "symbolic link" in str(refused.value)
        after = victim.stat()
        assert (after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode)) == \
            (before.st_uid, before.st_gid, stat.S_IMODE(before.st_mode))
        assert victim.read_text() == "root's own file\n"
    finally:
        if os.path.islink(shm):
            os.unlink(shm)
        stack.start_daemon()
