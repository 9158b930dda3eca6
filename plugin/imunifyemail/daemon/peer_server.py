"""What both of the daemon's sockets do with a connection: one request, from a peer the kernel vouches for.

A peer whose uid is not allowed (SO_PEERCRED: the client cannot lie) is logged and closed
unanswered; otherwise one request line is read within a time limit, the server answers, and the
connection closes. The formats are :mod:`imunifyemail.protocol`'s; what to answer is the server's.

asyncio holds the handler tasks of ``start_unix_server`` only weakly: one waiting (for Rspamd, for
sendmail) could be collected (seen on Python 3.11: an empty answer, hence a needless defer), so
they are held here until they end.
"""
import asyncio
import logging
from typing import AbstractSet, Awaitable, Callable, Optional, Set

from ..peer import peer_credentials


class Exchange:
    """One connection's request line, who sent it, and the way back."""

    def __init__(self, line: bytes, pid: int, uid: int, writer: asyncio.StreamWriter):
        self.line, self.pid, self.uid = line, pid, uid
        self._writer = writer

    async def send(self, answer: bytes) -> bool:
        """False when the peer is gone (it stopped waiting)."""
        try:
            self._writer.write(answer)
            await self._writer.drain()
        except (ConnectionError, OSError):
            return False
        return True


Respond = Callable[[Exchange], Awaitable[None]]


class PeerCheckedServer:
    """``connected`` is ``start_unix_server``'s callback. ``unreadable_answer``: what a request that
    cannot be read (too long, not sent in time) gets, if anything; ``who_may_ask`` goes in the log."""

    def __init__(self, respond: Respond, allowed_uids: AbstractSet[int], read_timeout: float, who_may_ask: str,
                 log: logging.Logger, unreadable_answer: Optional[bytes] = None):
        self.respond, self.allowed_uids, self.read_timeout = respond, allowed_uids, read_timeout
        self.who_may_ask, self.log, self.unreadable_answer = who_may_ask, log, unreadable_answer
        self._tasks: Set[asyncio.Task] = set()

    def connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            pid, uid, _ = peer_credentials(writer.get_extra_info("socket"))
            if uid not in self.allowed_uids:
                self.log.warning("refused a request from pid %d uid %d: %s", pid, uid, self.who_may_ask)
                return
            try:
                line = await asyncio.wait_for(reader.readline(), self.read_timeout)
            except (asyncio.TimeoutError, ValueError, asyncio.LimitOverrunError) as exc:
                self.log.warning("bad request from pid %d: %s", pid, str(exc) or type(exc).__name__)
                if self.unreadable_answer is not None:
                    writer.write(self.unreadable_answer)
                return
            await self.respond(Exchange(line, pid, uid, writer))
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def finish(self, timeout: float) -> None:
        """Let the requests being answered finish (at most ``timeout`` seconds)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
