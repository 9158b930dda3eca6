"""Handing a digest to the local MTA: one ``sendmail`` run as root with the received protocol
``imunifyemail-notice``.

The router skips that protocol (``exim_conf/router.conf``): our own notice is never scanned, held
or counted against an account's limit. Only root and the Exim user may set a received protocol (a
hosted user's ``-oMr`` is ignored), so nobody else can pass mail off as a notice; and cPanel's own
counting routers leave root's mail alone (its ``$authenticated_id`` is root).
"""
import os
import subprocess
from email.message import EmailMessage
from typing import Sequence

from ..core.digest import POLICY
from ..reinject import command, describe_failure, message_fd

NOTICE = "imunifyemail-notice"


class MailError(Exception):
    """The MTA did not take the digest; it is sent again at the next run."""


def send(sendmail: str, msg: EmailMessage, sender: str, recipients: Sequence[str], timeout: float) -> None:
    fd = message_fd(msg.as_bytes(policy=POLICY))   # LF line ends, as sendmail reads a local message
    try:
        proc = subprocess.run(command(sendmail, sender, recipients, NOTICE), stdin=fd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=timeout, cwd="/")
    except OSError as exc:
        raise MailError(f"cannot run {sendmail}: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise MailError(f"{sendmail} did not finish within {timeout:g}s") from None
    finally:
        os.close(fd)
    if proc.returncode != 0:
        raise MailError(f"{sendmail}: {describe_failure(proc.returncode, proc.stderr)}")
