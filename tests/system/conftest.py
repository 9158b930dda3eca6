"""End-to-end on the real mail stack: Exim 4.96 (cPanel-shaped config, our blocks put in by
``ie-config enable``), imunifyemaild (root, dropping to ``_imunifyemail``, re-injecting as the Exim
user), Rspamd, a local SMTP sink — all inside one private mount + network namespace (EXIM.md):
only loopback exists, nothing can leave the machine, no DNS lookup can stall a test.

Hosted users are real OS users (``demo1``, ``demo2``) submitting through ``/usr/sbin/sendmail``.
The stack is shared by the tests of a session; each test tells its mail apart by a unique token in
the subject and restores any setting it changes.
"""
import json
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import List, Optional

import pytest

from devtools.clocked_daemon import set_offset
from devtools.stack import MailStack
from devtools.testroot import remove_unless_kept
from imunifyemail.store import db


def pytest_collection_modifyitems(items):
    """Every test here runs on the real mail stack (``-m "not system"`` leaves them out)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.system)


def make_stack(prefix: str, **options) -> MailStack:
    """A stack built and started in a directory of its own (``options``: :class:`MailStack`'s, such as
    ``config_extra``); :func:`drop_stack` stops and removes it."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    base.chmod(0o755)   # Exim, the daemon and the hosted users must reach their parts
    stack = MailStack(base, net=True, **options)
    stack.build()
    try:
        stack.start()
    except BaseException:
        stack.stop()   # whatever did start: no namespace or daemon left behind
        raise
    return stack


# What Exim writes to its panic log when a test makes it on purpose: `sendmail -t` with a malformed
# To: (tests/system/test_bounces.py) is logged there as it is answered with a failure report.
EXPECTED_PANIC = re.compile(r"^\S+ \S+ (\S+ )?\S+ bad addresses found in headers$")


def drop_stack(stack: MailStack) -> None:
    """Stop and remove; Exim's panic log must be empty but for what a test caused on purpose."""
    panic = stack.exim.panic() if stack.exim is not None else ""
    unexpected = [line for line in panic.splitlines()
                  if line.strip() and not line.startswith("--- ") and not EXPECTED_PANIC.match(line)]
    panic = panic if unexpected else ""
    stack.stop()
    if not panic:
        remove_unless_kept(stack.base)
    assert not panic, f"Exim wrote to its panic log ({stack.base} kept):{panic}"


@pytest.fixture(scope="session")
def stack(daemon_user):
    # The metrics file rewritten every second, not every 30: tests wait for it.
    s = make_stack("ie-system-", config_extra={"metrics": {"interval": 1}})
    yield s
    drop_stack(s)


@pytest.fixture(scope="module")
def clocked(daemon_user):
    """A stack of its own per module whose daemon's clock the test moves (devtools/clocked_daemon.py):
    ``stack.move_clock(t)``."""
    base = Path(tempfile.mkdtemp(prefix="ie-clocked-", dir="/tmp"))
    base.chmod(0o755)
    offset = base / "clock-offset"
    set_offset(offset, 0)
    stack = MailStack(base, net=True, daemon_argv=("-m", "devtools.clocked_daemon", str(offset)))
    stack.build()
    try:
        stack.start()
        stack.offset = 0.0

        def move(to: float) -> None:
            """The daemon's clock reads ``to`` now (and runs on from there)."""
            stack.offset = to - time.time()
            set_offset(offset, stack.offset)
        stack.move_clock = move
        yield stack
    finally:
        drop_stack(stack)


@pytest.fixture
def token() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


# -- what the sink and the quarantine hold ------------------------------------

def sunk(stack: MailStack, token: str):
    return [m for m in stack.delivered() if token in m.header("Subject")]


def wait_sunk(stack: MailStack, token: str, count: int = 1):
    found = stack.wait_for(lambda: len(sunk(stack, token)) >= count and sunk(stack, token),
                           f"{count} message(s) with {token} at the sink")
    return found


def held(stack: MailStack, token: str) -> List[dict]:
    out = stack.ie_cli("emails", "list", "-a", "root", "--subject", token, "--limit", "1000", "--json")
    return json.loads(out.stdout)["items"]


def wait_held(stack: MailStack, token: str, count: int = 1) -> List[dict]:
    return stack.wait_for(lambda: len(held(stack, token)) >= count and held(stack, token),
                          f"{count} message(s) with {token} in the quarantine")


def settle(stack: MailStack) -> None:
    """Until Exim has nothing left to deliver (second passes included)."""
    stack.wait_for(lambda: not stack.exim.queue(), "an empty Exim queue")


def sender_counts(stack: MailStack, sender: str) -> Optional[dict]:
    """The Activity Monitor's sender-email object for ``sender`` (``ie-cli am stats``)."""
    out = json.loads(stack.ie_cli("am", "stats", "--sender-email", sender, "--since", "3600").stdout)
    for account in out.get("accounts") or []:
        for domain in account.get("domains") or []:
            for item in domain.get("sender_emails") or []:
                if item["name"] == sender:
                    return {"account": account["name"], "domain": domain["name"], **item}
    return None


def query(stack, sql: str, *args) -> list:
    """Rows of the stack's database, read-only (what the daemon stored)."""
    conn = db.connect(stack.root / "var/imunifyemail/quarantine/storage/quarantine.db", readonly=True)
    try:
        return [tuple(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()
