"""An LMTP client that reads one reply per accepted recipient after DATA.

stdlib ``smtplib.LMTP.sendmail`` reads only the first reply, which would hide
exactly the behaviour RFC 2033 requires, so the DATA step is done here.
"""
import os
import smtplib
from typing import List, Sequence, Tuple

Reply = Tuple[int, str]


class LMTPClient(smtplib.LMTP):
    def deliver(self, sender: str, recipients: Sequence[str], raw: bytes) -> List[Reply]:
        """Send one message; returns one (code, text) per recipient accepted at RCPT,
        in RCPT order (refused recipients are left out)."""
        self.ehlo_or_helo_if_needed()
        code, resp = self.mail(sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, resp, sender)
        accepted = 0
        for rcpt in recipients:
            code, _ = self.rcpt(rcpt)
            if code == 250:
                accepted += 1
        if not accepted:
            self.rset()
            return []
        code, resp = self.docmd("DATA")
        if code != 354:
            raise smtplib.SMTPDataError(code, resp)
        data = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        data = smtplib._quote_periods(data)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        self.send(data + b".\r\n")
        return [(code, resp.decode("utf-8", "replace")) for code, resp in
                (self.getreply() for _ in range(accepted))]


def send(socket_path: str, sender: str, recipients: Sequence[str], raw: bytes) -> List[Reply]:
    client = LMTPClient(os.path.abspath(socket_path))  # smtplib: a unix socket must start with "/"
    try:
        return client.deliver(sender, recipients, raw)
    finally:
        client.close()
