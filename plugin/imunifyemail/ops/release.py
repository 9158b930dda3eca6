"""The one way a held message leaves the quarantine to be delivered.

:func:`perform` claims the messages (so two releases cannot both send one),
hands each to the mail server as the Exim user, and removes it, noted as
released, only once the server accepted it. Who runs it depends on the
process, never what it does:

* :class:`OneShotReleaser` — ``ie-cli`` (root) runs ``sendmail`` as the Exim
  user itself;
* :class:`DaemonReleaser` — the web app (``_imunifyemail``, which cannot become
  the Exim user) hands the whole request to the daemon's control socket; the
  daemon checks it again and performs it through its spawner, which already
  runs the Exim user's ``sendmail``;
* the daemon's own releaser (``daemon/control.py``) — the same :func:`perform`
  with the spawner as the sender.
"""
import logging
from typing import Callable, List, Optional, Sequence

from ..context import Context
from ..core import view
from ..errors import ActionError, Conflict, ReleaseFailed
from ..protocol import clients, control
from ..reinject import RELEASED, ReinjectError, reinject_sync
from ..store.listing import ALL_ACCOUNTS, NotFound, StoredMessage
from . import audit
from .caller import Caller

log = logging.getLogger(__name__)

# send(raw, envelope sender, recipients): returns once the MTA has it, ReinjectError otherwise
Sender = Callable[[bytes, str, Sequence[str]], None]


def perform(ctx: Context, caller: Caller, messages: Sequence[StoredMessage], send: Sender,
            timeout: float) -> List[str]:
    """Release ``messages`` (already checked for ``caller``) in order, each as the filter lets mail
    out (:func:`..core.view.judged`: a sender's ``X-ImunifyEmail-*`` fields never leave; released
    mail skips Exim's router, which strips them from passed mail). The held copy is not changed.

    A failed re-injection stops there, keeps that message and raises
    :class:`ReleaseFailed` with the reason; messages released before it stay released."""
    quarantine = ctx.quarantine
    ids = [msg.email_id for msg in messages]
    # A claim outlives a stuck sendmail by a margin; a crashed release frees it then.
    busy = quarantine.claim(ids, ttl=2 * timeout + 60)
    if busy:
        raise Conflict(f'email "{busy[0]}" is being released by another request')
    released: List[str] = []
    failure = ""
    try:
        for msg in messages:
            try:
                raw = quarantine.read(msg)
            except OSError as exc:
                raise ActionError(f'cannot read email "{msg.email_id}": {exc.strerror}') from None
            try:
                send(view.judged(raw, msg.filter_action, msg.filter_score), msg.sender, msg.recipients)
            except ReinjectError as exc:
                done = f" (released before it: {', '.join(released)})" if released else ""
                log.error("release of %s failed: %s", msg.email_id, exc)
                failure = f"failed: {exc}"
                raise ReleaseFailed(f'email "{msg.email_id}" not released, it stays in the quarantine: '
                                    f"{exc}{done}") from None
            try:
                quarantine.remove([msg.email_id], ALL_ACCOUNTS, released_by=(caller.login, caller.via))
            except NotFound:   # evicted or removed meanwhile: it is sent all the same
                pass
            released.append(msg.email_id)
    finally:
        left = [e for e in ids if e not in released]
        if left:
            quarantine.unclaim(left)
        audit.record_mail(ctx, caller, "release", messages, released, failure or "failed")
    return released


class OneShotReleaser:
    """``sendmail -oi -oMr imunifyemail-released -f S -- R...`` per message, run by this process
    as the Exim user (``reinject.user``; possible only as root)."""

    def __init__(self, sendmail: str, timeout: float, exim_user: Optional[str]):
        self.sendmail, self.timeout, self.exim_user = sendmail, timeout, exim_user

    @classmethod
    def from_config(cls, cfg) -> "OneShotReleaser":
        r = cfg["reinject"]
        return cls(r["sendmail"], r["timeout"], r["user"])

    def send(self, raw: bytes, sender: str, recipients: Sequence[str]) -> None:
        reinject_sync(self.sendmail, raw, sender, recipients, RELEASED, self.timeout, self.exim_user)

    def release(self, ctx: Context, caller: Caller, messages: Sequence[StoredMessage]) -> List[str]:
        return perform(ctx, caller, messages, self.send, self.timeout)


class DaemonReleaser:
    """Hands a release to the daemon (the web app's way: it cannot act as the Exim user)."""

    def __init__(self, socket_path: str, timeout: float):
        self.socket_path, self.timeout = socket_path, timeout

    def release(self, ctx: Context, caller: Caller, messages: Sequence[StoredMessage]) -> List[str]:
        answer = clients.call(self.socket_path, control.release_request(caller, [m.email_id for m in messages]),
                              self.timeout)
        if not answer.get("ok"):
            raise control.answer_error(answer)
        return [str(i) for i in answer.get("released", [])]
