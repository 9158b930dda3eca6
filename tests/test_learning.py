"""Learning from the administrator without the mail stack: the rules (core/learning.py), what ie-cli
does and says when Rspamd cannot learn (nothing is lost), and the files ie-config rspamd-learning
writes for Rspamd, the Sentinel form checked by Rspamd itself (rspamadm configtest)."""
import grp
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from devtools import cpanel_standins, samples
from devtools.rspamd import SYSTEM_CONFDIR, RspamdProcess, layered_confdir
from imunifyemail import config, rspamd_learning
from imunifyemail.cli import ie_cli, ie_config
from imunifyemail.context import Context
from imunifyemail.core import learning
from imunifyemail.core.learning import LEARN_HAM, LEARN_SPAM
from imunifyemail.ops import caller as callers
from imunifyemail.ops import learning as learning_ops
from imunifyemail.store import audit as audit_rows


# -- the rules ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,reasons,why", [
    (LEARN_SPAM, ["spam"], ""),
    (LEARN_SPAM, ["winexec"], ""),
    (LEARN_SPAM, ["blocked"], ""),
    (LEARN_SPAM, ["spam", "ratelimit"], ""),
    (LEARN_SPAM, ["ratelimit"], learning.ONLY_RATELIMIT),
    (LEARN_SPAM, [], learning.ONLY_RATELIMIT),
    (LEARN_HAM, ["spam"], ""),
    (LEARN_HAM, ["spam", "ratelimit"], ""),
    (LEARN_HAM, ["ratelimit"], learning.NOT_HELD_AS_SPAM),
    (LEARN_HAM, ["winexec"], learning.NOT_HELD_AS_SPAM),
])
def test_what_the_administrator_may_teach(kind, reasons, why):
    assert learning.refusal(kind, True, reasons) == why
    assert learning.offered(kind, True, reasons) == (why == "")


@pytest.mark.parametrize("kind", [LEARN_SPAM, LEARN_HAM])
def test_a_hosted_users_decision_never_teaches(kind):
    assert learning.refusal(kind, False, ["spam"]) == learning.ONLY_ADMIN
    assert not learning.offered(kind, False, ["spam"])


def test_a_test_message_is_never_learned():
    assert learning.content_refusal(samples.gtube()) == learning.TEST_MESSAGE
    assert learning.content_refusal(samples.campaign()) == ""


@pytest.mark.parametrize("status,error,ok", [
    (200, "", True),
    (208, "<x@y> has been already learned as spam, ignore it", True),
    (404, "<x@y> has been already learned as spam, ignore it", True),   # Rspamd 3.4's learn cache
    (404, "no classifiers defined", False),
    (403, "process fuzzy error", False),                                 # its fuzzy storage refusing
    (500, "", False),
])
def test_what_counts_as_learned(status, error, ok):
    assert learning.answered_ok(status, error) == ok


def test_ham_takes_the_hashes_off_the_spam_list_before_whitelisting_them():
    paths = [p for p, _ in learning.REQUESTS[LEARN_HAM]]
    assert paths == ["/fuzzydel", "/fuzzyadd", "/learnham"]
    assert learning.REQUESTS[LEARN_HAM][0][1]["Flag"] == str(learning.SPAM_FLAG)
    assert learning.REQUESTS[LEARN_HAM][1][1]["Flag"] == str(learning.HAM_FLAG)
    assert [p for p, _ in learning.REQUESTS[LEARN_SPAM]] == ["/fuzzyadd", "/learnspam"]


def test_the_flags_are_those_of_the_shipped_rule():
    rule = (Path(__file__).resolve().parent.parent / "rpm/rspamd/local.d/fuzzy_check.conf").read_text()
    assert f"IMUNIFYEMAIL_FUZZY_SPAM {{ max_score = 1.0; flag = {learning.SPAM_FLAG}; }}" in rule
    assert f"IMUNIFYEMAIL_FUZZY_HAM {{ max_score = 1.0; flag = {learning.HAM_FLAG}; }}" in rule


# -- Rspamd down: the delete and the release happen, the failure is said and audited ---------------

def audit(ie, action):
    return [e for e in audit_rows.entries(ie.conn, limit=100)[0] if e.action == action]


def test_remove_as_spam_with_rspamd_down_deletes_and_says_why_nothing_was_learned(ie):
    msg = ie.add("demo1", reasons=("spam",))
    result = ie.invoke("emails", "remove", "--ids", msg.email_id, "--as-spam")
    assert result.exit_code == 0 and result.stdout == "OK\n", result
    assert re.fullmatch(rf"warning: {msg.email_id} not learned: Rspamd's controller at \S+controller.sock did "
                        r"not answer \(No such file or directory\)\n", result.stderr), result.stderr
    assert ie.ids() == []
    [entry] = audit(ie, "learn_spam")
    assert entry.ids == (msg.email_id,) and entry.outcome.startswith("failed: Rspamd's controller")
    assert [e.outcome for e in audit(ie, "delete")] == ["ok"]


@pytest.mark.parametrize("path,status,error,starting", [
    ("/fuzzyadd", 403, "process fuzzy error", True),      # its writers map not read yet
    ("/fuzzydel", 403, "process fuzzy error", True),
    ("/fuzzyadd", 500, "IO timeout with fuzzy storage", True),   # not listening yet
    ("/fuzzyadd", 403, "fuzzy hash is skipped", False),
    ("/fuzzyadd", 200, "", False),
    ("/learnspam", 403, "process fuzzy error", False),    # only the fuzzy storage starts like that
    ("/learnspam", 500, "IO timeout with fuzzy storage", False),
])
def test_which_answers_may_be_the_fuzzy_storage_starting(path, status, error, starting):
    assert learning.storage_starting(path, status, error) is starting


def test_release_not_spam_with_rspamd_down_releases_and_says_why(ie):
    msg = ie.add("demo2", sender="x@demo2.test", reasons=("spam",))
    result = ie.invoke("emails", "release", "--ids", msg.email_id, "--not-spam")
    assert result.exit_code == 0 and result.stdout == "OK\n", result
    assert "not learned: Rspamd's controller" in result.stderr
    assert ie.ids() == [] and len(ie.sent()) == 1
    [entry] = audit(ie, "learn_ham")
    assert entry.outcome.startswith("failed: ") and entry.account == "demo2"


def test_one_unreachable_controller_is_asked_once_for_many(ie):
    ids = [ie.add("demo1", subject=f"n{i}", reasons=("spam",)).email_id for i in range(3)]
    result = ie.invoke("emails", "remove", "--ids", ",".join(ids), "--as-spam")
    assert result.exit_code == 0 and ie.ids() == []
    assert len(result.stderr.splitlines()) == 3
    [entry] = audit(ie, "learn_spam")
    assert set(entry.detail["not_learned"]) == set(ids)


class RefusingRspamd(RspamdProcess):
    """A real Rspamd whose fuzzy storage lets another key write, not our rule's: it refuses every lesson
    (403), as a storage whose writers map and our rule's key disagree would (Redis is not needed for it
    to answer: the storage queues writes)."""

    def _prepare_dirs(self) -> None:
        super()._prepare_dirs()
        writers = self.confdir / rspamd_learning.WRITERS_FILE
        ours = rspamd_learning.parse_keypair((self.confdir / rspamd_learning.STORAGE_FILE).read_text()).id
        writers.write_text(writers.read_text().replace(ours, rspamd_learning.new_keypair().id))


@pytest.fixture(scope="module")
def refusing_rspamd():
    base = Path(tempfile.mkdtemp(prefix="ie-learning-refusing-", dir="/tmp"))
    base.chmod(0o755)
    proc = RefusingRspamd(base / "rspamd", redis=redis_section(servers=[str(base / "no-redis.sock")]))
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_a_fuzzy_storage_refusing_the_lesson_is_reported_and_the_release_happens(ie, refusing_rspamd):
    link = ie.root / "var/run/rspamd/controller.sock"   # where the default rspamd.controller points
    link.parent.mkdir(parents=True)
    link.symlink_to(refusing_rspamd.controller_socket)
    msg = ie.add("demo1", reasons=("spam",), raw=samples.campaign(sender="user@demo1.test"))
    result = ie.invoke("emails", "release", "--ids", msg.email_id, "--not-spam")
    assert result.exit_code == 0 and result.stdout == "OK\n", result
    # asked again for a while (a storage just started refuses too: core/learning.py), then given up; on a
    # busy machine the storage's last answer may be Rspamd's own timeout instead of its refusal
    refused = r"Rspamd's /fuzzy(add|del) answered (403: process fuzzy error|500: IO timeout with fuzzy storage)"
    assert re.fullmatch(f"warning: {msg.email_id} not learned: {refused}\n", result.stderr), result.stderr
    assert ie.ids() == [] and len(ie.sent()) == 1
    [entry] = audit(ie, "learn_ham")
    assert re.fullmatch(f"failed: {refused}", entry.outcome), entry.outcome


def test_mail_held_only_for_a_sender_limit_is_deleted_but_never_learned(ie):
    msg = ie.add("demo1", reasons=("ratelimit",))
    result = ie.invoke("emails", "remove", "--ids", msg.email_id, "--as-spam")
    assert result.exit_code == 0 and ie.ids() == []
    assert result.stderr == f"warning: {msg.email_id} not learned: {learning.ONLY_RATELIMIT}\n"
    assert audit(ie, "learn_spam") == []   # nothing was taught: nothing to audit but the delete


def test_a_hosted_user_teaches_nothing_and_rspamd_is_never_asked(ie):
    msg = ie.add("demo1", reasons=("spam",))
    ctx = Context()
    try:
        [stored] = [ctx.quarantine.get(msg.email_id, "demo1")]
        report = learning_ops.teach(ctx, callers.hosted_user("demo1"), [stored], LEARN_SPAM)
    finally:
        ctx.close()
    assert report.skipped == {msg.email_id: learning.ONLY_ADMIN} and not report.failed and not report.learned
    assert audit(ie, "learn_spam") == []


# -- the files for Rspamd -----------------------------------------------------------------------

SENTINELS = {"servers": ["10.0.0.1:6379"], "sentinels": ["10.0.0.5:26379", "10.0.0.6:26379"],
             "master_name": "ie-fleet.1", "sentinel_watch_time": 30}


def redis_section(**values):
    return config.validate({"rspamd": {"redis": values}}, "test")["rspamd"]["redis"]


def test_the_redis_file_names_rspamds_own_options():
    assert rspamd_learning.render_redis(redis_section()).splitlines()[-1] == \
        'servers = "/var/run/redis/redis.sock";'
    text = rspamd_learning.render_redis(redis_section(**SENTINELS, db=3))
    assert text.splitlines()[-5:] == ['servers = "10.0.0.1:6379";', 'sentinels = "10.0.0.5:26379,10.0.0.6:26379";',
                                      'sentinel_masters_pattern = "^ie%-fleet%.1$";', "sentinel_watch_time = 30;",
                                      'db = "3";']


def test_install_writes_the_secrets_for_rspamd_only_and_keeps_the_keypair(tmp_path):
    etc = tmp_path / "rspamd"
    etc.mkdir()
    changed = rspamd_learning.install(redis_section(), etc)
    assert sorted(p.name for p in changed) == sorted([rspamd_learning.REDIS_FILE, rspamd_learning.STORAGE_FILE,
                                                      rspamd_learning.WRITERS_FILE, rspamd_learning.RULE_FILE])
    rspamd_gid = grp.getgrnam("_rspamd").gr_gid
    for name in (rspamd_learning.STORAGE_FILE, rspamd_learning.WRITERS_FILE, rspamd_learning.RULE_FILE):
        st = os.stat(etc / name)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, rspamd_gid, 0o640), name
    pair = rspamd_learning.parse_keypair((etc / rspamd_learning.STORAGE_FILE).read_text())
    assert f'encryption_key = "{pair.pubkey}";' in (etc / rspamd_learning.RULE_FILE).read_text()
    assert pair.id in (etc / rspamd_learning.WRITERS_FILE).read_text()
    assert rspamd_learning.install(redis_section(), etc) == []          # current: nothing written
    changed = rspamd_learning.install(redis_section(**SENTINELS), etc)  # a new setting: that file alone
    assert [p.name for p in changed] == [rspamd_learning.REDIS_FILE]
    assert rspamd_learning.parse_keypair((etc / rspamd_learning.STORAGE_FILE).read_text()) == pair
    (etc / "local.d").mkdir()
    assert sorted(p.name for p in rspamd_learning.remove(etc)) == sorted(p.name for p in changed + [
        etc / rspamd_learning.STORAGE_FILE, etc / rspamd_learning.WRITERS_FILE, etc / rspamd_learning.RULE_FILE])
    assert [p.name for p in etc.iterdir()] == ["local.d"] and rspamd_learning.remove(etc) == []


def test_ie_config_rspamd_learning_writes_the_files_from_config_yaml_and_restarts_rspamd(ie, capsys):
    etc = ie.root / "etc/rspamd"
    etc.mkdir()
    cpanel_standins.install(ie.root, 2525, ie.root / "var/log/exim_mainlog")
    ie.write_config("rspamd:\n  redis:\n    servers: ['10.0.0.1:6379']\n")
    assert ie_cli.run(["rspamd-learning"], group=ie_config.cli, prog="ie-config") == 0
    out = capsys.readouterr().out.splitlines()
    assert f"{etc}/{rspamd_learning.REDIS_FILE}: written" in out and out[-1] == "Rspamd restarted"
    assert 'servers = "10.0.0.1:6379";' in (etc / rspamd_learning.REDIS_FILE).read_text()
    assert [c["argv"] for c in cpanel_standins.calls(ie.root, "systemctl")] == [["try-restart", "rspamd.service"]]
    assert ie_cli.run(["rspamd-learning"], group=ie_config.cli, prog="ie-config") == 0
    assert capsys.readouterr().out == "Rspamd's learning settings are current: nothing to change\n"
    assert len(cpanel_standins.calls(ie.root, "systemctl")) == 1   # nothing changed: no restart


@pytest.fixture(scope="module")
def confdir():
    base = Path(tempfile.mkdtemp(prefix="ie-learning-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def rspamadm(confdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["rspamadm", f"--var=LOCAL_CONFDIR={confdir}", "--var=RUNDIR=/run/rspamd", *args],
                          capture_output=True, text=True, timeout=300)


def test_rspamd_takes_the_sentinel_form_for_fuzzy_storage_and_bayes(confdir):
    """The production set over the stock rspamd.conf, with the files for a fleet behind Sentinels:
    rspamadm configtest accepts it, and both the fuzzy storage worker and Bayes read them."""
    target = layered_confdir(confdir / "etc", layers=())
    rspamd_learning.install(redis_section(**SENTINELS), target)
    proc = rspamadm(target, "configtest", "-c", str(SYSTEM_CONFDIR / "rspamd.conf"))
    assert proc.returncode == 0 and "syntax OK" in proc.stdout, proc.stdout + proc.stderr
    fuzzy = rspamadm(target, "configdump", "-c", str(SYSTEM_CONFDIR / "rspamd.conf"), "worker").stdout
    section = re.search(r"^fuzzy \{\n(.*?)^\}", fuzzy, re.MULTILINE | re.DOTALL).group(1)
    assert 'sentinels = "10.0.0.5:26379,10.0.0.6:26379";' in section
    assert 'sentinel_masters_pattern = "^ie%-fleet%.1$";' in section
    assert "encrypted_only = true;" in section
    bayes = rspamadm(target, "configdump", "-c", str(SYSTEM_CONFDIR / "rspamd.conf"), "classifier").stdout
    assert 'sentinels = "10.0.0.5:26379,10.0.0.6:26379";' in bayes and 'servers = "10.0.0.1:6379";' in bayes
    assert "autolearn = false;" in bayes
