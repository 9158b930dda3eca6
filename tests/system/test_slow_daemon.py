"""A daemon slower than the router's timeout (here: stopped for a while): Exim defers the addresses and
keeps the messages; the daemon finishes its work, and the messages leave — once — without waiting for
Exim's next retry time. Its own stack: the router's timeout is 2 s here."""
import os
import signal

import pytest

from devtools import samples

from .conftest import drop_stack, held, make_stack, sender_counts, settle, sunk, wait_held, wait_sunk

CONFIG = {"rspamd": {"timeout": 1}, "exim": {"timeout": 2}}


@pytest.fixture
def slow_stack(daemon_user):
    stack = make_stack("ie-slow-", config_extra=CONFIG)
    yield stack
    drop_stack(stack)


def test_answers_after_the_timeout_defer_then_the_mail_leaves_once(slow_stack, token):
    stack = slow_stack
    ham_sender, spam_sender = f"{token}-h@demo1.test", f"{token}-s@demo2.test"
    os.kill(stack.daemon.pid, signal.SIGSTOP)
    try:
        stack.sendmail(samples.ham(sender=ham_sender, subject=f"Slow ham {token}"), "-f", ham_sender,
                       "slow@remote.example", user="demo1")
        stack.sendmail(samples.gtube(sender=spam_sender, subject=f"Slow spam {token}"), "-f", spam_sender,
                       "slow2@remote.example", user="demo2")
        deferred = [line for line in stack.exim_log().splitlines() if "R=imunifyemail_scan defer" in line
                    and "slow" in line]
        assert len(deferred) == 2, stack.exim_log()[-2000:]
        # Both deferred: sendmail -odi returns once its delivery is done, Exim has stopped waiting.
        assert len(stack.exim.queue()) >= 2 and sunk(stack, token) == []
    finally:
        os.kill(stack.daemon.pid, signal.SIGCONT)
    # No queue run by the test: the daemon, having answered late, asks Exim for them again.
    [msg] = wait_sunk(stack, token)
    [item] = wait_held(stack, token)
    settle(stack)
    assert msg.mail_from == ham_sender and msg.header("X-ImunifyEmail-Filter-Action") == "no action"
    assert item["account_name"] == "demo2" and len(held(stack, token)) == 1 and len(sunk(stack, token)) == 1
    assert sender_counts(stack, ham_sender)["messages"] == 1 and sender_counts(stack, spam_sender)["quarantined"] == 1
    assert "decided after the router's 2s" in stack.daemon_log()
    assert "bounce" not in stack.exim_log()
