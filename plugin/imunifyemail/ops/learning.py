"""Teaching Rspamd what the administrator decided about held messages (rules: ``core/learning.py``).

Called before the release or delete it goes with, while the message is still held (its bytes are
read from the quarantine): a lesson that fails — Rspamd down, the controller refusing — is reported
and audited, and never stops the release or delete. Rspamd's controller is asked on its unix socket
(:mod:`..rspamd_controller`), which this process may open as root (``ie-cli``) or as the product's user
(the web app).
"""
import logging
import time
from typing import Dict, List, Optional, Sequence

from ..context import Context
from ..core import learning
from ..rspamd_controller import Controller, ControllerError
from ..store.listing import StoredMessage
from . import audit
from .caller import Caller

log = logging.getLogger(__name__)

AUDIT_ACTIONS = {learning.LEARN_SPAM: "learn_spam", learning.LEARN_HAM: "learn_ham"}


def teach(ctx: Context, caller: Caller, messages: Sequence[StoredMessage], kind: str,
          controller: Optional[Controller] = None) -> learning.Report:
    """Teach Rspamd ``messages`` as ``kind`` (what the rules allow); what was learned, skipped and failed.
    Never raises for Rspamd's sake: the caller goes on with its release or delete."""
    report = learning.Report(kind)
    controller = controller or Controller.from_config(ctx.config)
    patience = _Patience(learning.STORAGE_START_PATIENCE)
    unreachable = ""
    for msg in messages:
        why = learning.refusal(kind, caller.is_admin, msg.reasons)
        if why:
            report.skipped[msg.email_id] = why
        elif unreachable:   # one timeout is enough: the rest would each wait as long
            report.failed[msg.email_id] = unreachable
        else:
            try:
                raw = ctx.quarantine.read(msg)
            except OSError as exc:
                report.failed[msg.email_id] = f"cannot read it ({exc.strerror})"
                continue
            why = learning.content_refusal(raw)
            if why:
                report.skipped[msg.email_id] = why
                continue
            try:
                failure = _lesson(controller, raw, kind, patience)
            except ControllerError as exc:
                unreachable = failure = str(exc)
            if failure:
                report.failed[msg.email_id] = failure
            else:
                report.learned.append(msg.email_id)
    if report.failed:
        log.warning("lessons not learned (%s): %s", kind, report.summary())
    _record(ctx, caller, messages, report)
    return report


class _Patience:
    """The time one decision may still spend asking Rspamd's fuzzy storage again while it starts."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline: Optional[float] = None   # the clock runs from the first wait

    def wait(self) -> bool:
        """Sleep one poll interval; False (at once) when the time is spent."""
        if self.deadline is None:
            self.deadline = time.monotonic() + self.seconds
        left = self.deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(learning.STORAGE_START_POLL, left))
        return True


def _lesson(controller: Controller, raw: bytes, kind: str, patience: _Patience) -> str:
    """"" when Rspamd learned ``raw`` as ``kind``; else what went wrong."""
    for path, headers in learning.REQUESTS[kind]:
        status, error = controller.post(path, raw, headers)
        # a fuzzy storage just (re)started refuses for a moment (core/learning.py STORAGE_STARTING)
        while learning.storage_starting(path, status, error) and patience.wait():
            status, error = controller.post(path, raw, headers)
        if path == "/fuzzydel" and status != 200:
            continue   # nothing to take off the spam list
        if not learning.answered_ok(status, error):
            return f"Rspamd's {path} answered {status}: {error}"
    return ""


def _record(ctx: Context, caller: Caller, messages: Sequence[StoredMessage], report: learning.Report) -> None:
    """One entry per account whose messages were learned or failed to be (a skipped one teaches nothing)."""
    by_account: Dict[str, List[str]] = {}
    for msg in messages:
        if msg.email_id not in report.skipped:
            by_account.setdefault(msg.account, []).append(msg.email_id)
    for account, ids in by_account.items():
        failed = {i: report.failed[i] for i in ids if i in report.failed}
        audit.record(ctx, caller, AUDIT_ACTIONS[report.kind], account=account, ids=ids,
                     detail={"not_learned": failed} if failed else None,
                     outcome="failed: " + next(iter(failed.values())) if failed else audit.OK)
