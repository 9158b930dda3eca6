"""Handing a digest to the local MTA: one ``sendmail`` run as root with the received protocol
``imunifyemail-notice``.

The router skips that protocol (``exim_conf/router.conf``): our own notice is never scanned, held
or counted against an account's limit. Only root and the Exim user may set a received protocol (a
hosted user's ``-oMr`` is ignored), so nobody else can pass mail off as a notice; and cPanel's own
counting routers leave root's mail alone (its ``$authenticated_id`` is root).
"""
from email.message import EmailMessage
from typing import Sequence

from ..core.digest import POLICY
from ..reinject import ReinjectError, reinject_sync

NOTICE = "imunifyemail-notice"


class MailError(Exception):
    """The MTA did not take the digest; it is sent again at the next run."""


def send(sendmail: str, msg: EmailMessage, sender: str, recipients: Sequence[str], timeout: float) -> None:
    """As root (no ``user``): a notice is the server's own mail, not the Exim user's re-injection."""
    try:   # LF line ends, as sendmail reads a local message
        reinject_sync(sendmail, msg.as_bytes(policy=POLICY), sender, recipients, NOTICE, timeout)
    except ReinjectError as exc:
        raise MailError(str(exc)) from None
