"""Re-injection of passed mail through persistent ``sendmail -bs`` sessions.

The daemon keeps a few sessions open (SMTP over the command's stdin and
stdout, with the ``imunifyemail-scanned`` received-protocol marker) and
sends each passed message through one: no process per message, and the
MTA's answer per recipient comes back to Exim's first pass through the LMTP
replies. A message counts as re-injected only when the MTA answered 250
after DATA, i.e. has it on its spool.

With a spawner (``reinject.user``) the sessions run as the Exim user. Exim
names a ``-bs`` session's protocol ``local-esmtp`` whatever ``-oMr`` says:
the router knows the second pass by that protocol and the Exim user's uid
(``exim_conf/README.md``).
"""
import asyncio
import logging
import time
from typing import Dict, List, Optional, Sequence

from ..reinject import ReinjectError, session_command
from .spawner import SpawnError, Spawner

log = logging.getLogger(__name__)

# -- SMTP sessions over a sendmail -bs pipe ------------------------------------------------

class SessionLost(Exception):
    """The session died or spoke nonsense; nothing was accepted on it."""


def _stuff(raw: bytes) -> bytes:
    """CRLF line endings, dot-stuffing and the end-of-data line (RFC 5321 4.5.2)."""
    data = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class Session:
    def __init__(self, proc, timeout: float):   # asyncio.subprocess.Process or spawner.PipeProcess
        self.proc = proc
        self.timeout = timeout
        self.sent = 0
        self.last_used = time.monotonic()
        self.extensions: set = set()

    @classmethod
    async def open(cls, argv: List[str], timeout: float, spawner: Optional[Spawner] = None) -> "Session":
        try:
            if spawner is not None:   # as the Exim user, started by the spawner (daemon/spawner.py)
                proc = await spawner.spawn()
            else:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.DEVNULL)
        except SpawnError as exc:
            raise ReinjectError(str(exc)) from None
        except OSError as exc:
            raise ReinjectError(f"cannot run {argv[0]}: {exc.strerror}") from None
        session = cls(proc, timeout)
        try:
            code, _ = await session.reply()
            if code != 220:
                raise SessionLost(f"greeting {code}")
            code, lines = await session.command(b"EHLO imunifyemail")
            if code != 250:
                raise SessionLost(f"EHLO answered {code}")
            session.extensions = {line.split(" ", 1)[0].upper() for line in lines[1:]}
        except BaseException:
            session.kill()
            raise
        return session

    async def reply(self):
        lines = []
        while True:
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), self.timeout)
            except asyncio.TimeoutError:
                raise SessionLost("no answer in time") from None
            if not line.endswith(b"\n") or len(line) < 4 or not line[:3].isdigit():
                raise SessionLost("connection closed" if not line else "malformed reply")
            lines.append(line[4:].decode("utf-8", "replace").strip())
            if line[3:4] != b"-":
                return int(line[:3]), lines

    async def command(self, line: bytes):
        try:
            self.proc.stdin.write(line + b"\r\n")
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise SessionLost("connection closed") from None
        return await self.reply()

    async def transaction(self, raw: bytes, sender: str, recipients: Sequence[str]) -> Dict[str, str]:
        """MAIL, RCPT..., DATA. Returns the final reply per recipient."""
        self.last_used = time.monotonic()
        params = " BODY=8BITMIME" if "8BITMIME" in self.extensions and not raw.isascii() else ""
        code, lines = await self.command(f"MAIL FROM:<{sender}>{params}".encode("utf-8"))
        if code != 250:
            if code == 421:
                raise SessionLost("service closing")
            return {r: f"{code} {' '.join(lines)}" for r in recipients}
        results: Dict[str, str] = {}
        accepted = []
        for rcpt in recipients:
            code, lines = await self.command(f"RCPT TO:<{rcpt}>".encode("utf-8"))
            if code in (250, 251):
                accepted.append(rcpt)
            else:
                results[rcpt] = f"{code} {' '.join(lines)}"
        if not accepted:
            await self.command(b"RSET")
            return results
        code, lines = await self.command(b"DATA")
        if code != 354:
            await self.command(b"RSET")
            return {**results, **{r: f"{code} {' '.join(lines)}" for r in accepted}}
        try:
            self.proc.stdin.write(_stuff(raw))
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise SessionLost("connection closed during DATA") from None
        code, lines = await self.reply()
        self.sent += 1
        final = "250" if code == 250 else f"{code} {' '.join(lines)}"
        return {**results, **{r: final for r in accepted}}

    def alive(self) -> bool:
        return self.proc.returncode is None

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()

    async def quit(self) -> None:
        try:
            self.proc.stdin.write(b"QUIT\r\n")
            await self.proc.stdin.drain()
            self.proc.stdin.close()
            await asyncio.wait_for(self.proc.wait(), 5)
        except (OSError, asyncio.TimeoutError):
            self.kill()


class Reinjector:
    """A small pool of ``sendmail -bs`` sessions shared by concurrent messages."""

    MAX_SESSIONS = 8
    # Exim's smtp_accept_queue_per_connection (default 10, cPanel keeps it) applies to -bs too: from
    # the 11th message of a session on, Exim only queues (delivered when the session ends). Measured.
    MAX_MESSAGES_PER_SESSION = 10
    MAX_IDLE_SECONDS = 30.0          # well below Exim's smtp_receive_timeout (5 min)

    def __init__(self, sendmail: str, protocol: str, timeout: float, spawner: Optional[Spawner] = None):
        self.argv = session_command(sendmail, protocol)
        self.timeout = timeout
        self.spawner = spawner
        self._idle: List[Session] = []
        self._slots = asyncio.Semaphore(self.MAX_SESSIONS)

    async def _take(self) -> Session:
        now = time.monotonic()
        while self._idle:
            session = self._idle.pop()
            if session.alive() and now - session.last_used < self.MAX_IDLE_SECONDS:
                return session
            await session.quit()
        return await Session.open(self.argv, self.timeout, self.spawner)

    def _give_back(self, session: Session) -> None:
        if session.alive() and session.sent < self.MAX_MESSAGES_PER_SESSION:
            self._idle.append(session)
        else:
            asyncio.ensure_future(session.quit())

    async def send(self, raw: bytes, sender: str, recipients: Sequence[str]) -> Dict[str, str]:
        """Per-recipient final replies ("250" when accepted); ReinjectError when the
        outcome is unknown or the MTA could not be reached (the caller defers)."""
        async with self._slots:
            for attempt in (1, 2):
                try:
                    session = await self._take()
                except SessionLost as exc:
                    raise ReinjectError(f"{self.argv[0]} -bs: {exc}") from None
                try:
                    result = await session.transaction(raw, sender, recipients)
                except SessionLost as exc:
                    session.kill()
                    # A stale session fails before DATA; only then is a second try safe.
                    if attempt == 1 and session.sent == 0 and "DATA" not in str(exc):
                        log.info("re-inject session lost (%s): retrying on a new one", exc)
                        continue
                    raise ReinjectError(f"{self.argv[0]} -bs: {exc}") from None
                except BaseException:
                    session.kill()
                    raise
                self._give_back(session)
                return result
        raise ReinjectError("unreachable")

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(s.quit() for s in idle), return_exceptions=True)
