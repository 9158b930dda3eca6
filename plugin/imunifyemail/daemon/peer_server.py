"""What both of the daemon's sockets do with a connection: one request, from a peer the kernel vouches for.

A peer whose uid is not allowed (SO_PEERCRED: the client cannot lie) is logged and closed
unanswered; otherwise one request line is read within a time limit, the server answers, and the
connection closes. The formats are :mod:`imunifyemail.protocol`'s; what to answer is the server's.

A connection is an :class:`asyncio.Protocol`, not a pair of streams: Exim asks once per message,
and streams, their ``readline`` under ``wait_for`` and ``drain`` cost a task and several futures
per question (daemon CPU per message, issue 18). asyncio holds the answering tasks only weakly:
one waiting (for Rspamd, for sendmail) could be collected (seen on Python 3.11: an empty answer,
hence a needless defer), so they are held here until they end.
"""
import asyncio
import logging
from typing import AbstractSet, Awaitable, Callable, Optional, Set

from ..peer import peer_credentials

DEFAULT_LIMIT = 64 * 1024   # a request line longer than this is refused (asyncio's stream limit, as before)


class Exchange:
    """One connection's request line, who sent it, and the way back."""

    def __init__(self, line: bytes, pid: int, uid: int, transport: asyncio.BaseTransport,
                 closed: "asyncio.Future[Optional[BaseException]]"):
        self.line, self.pid, self.uid = line, pid, uid
        self._transport, self._closed = transport, closed

    async def send(self, answer: bytes) -> bool:
        """The answer, and the connection closed: False when the peer was gone (it stopped waiting).
        Told by how the connection ends once the answer is flushed: a write to a peer that is gone
        fails with EPIPE, which uvloop reports only then, not from ``write``."""
        transport = self._transport
        if transport.is_closing():
            return False
        try:
            transport.write(answer)
        except (ConnectionError, OSError):
            return False
        transport.close()
        return await self._closed is None

    def close(self) -> None:
        self._transport.close()


Respond = Callable[[Exchange], Awaitable[None]]


class PeerCheckedServer:
    """``protocol`` is ``loop.create_unix_server``'s factory. ``unreadable_answer``: what a request that
    cannot be read (too long, not sent in time) gets, if anything; ``who_may_ask`` goes in the log."""

    def __init__(self, respond: Respond, allowed_uids: AbstractSet[int], read_timeout: float, who_may_ask: str,
                 log: logging.Logger, unreadable_answer: Optional[bytes] = None, limit: int = DEFAULT_LIMIT):
        self.respond, self.allowed_uids, self.read_timeout = respond, allowed_uids, read_timeout
        self.who_may_ask, self.log, self.unreadable_answer = who_may_ask, log, unreadable_answer
        self.limit = limit
        self._tasks: Set[asyncio.Task] = set()

    def protocol(self) -> asyncio.Protocol:
        return _Connection(self)

    def answer(self, exchange: Exchange) -> None:
        task = asyncio.ensure_future(self._answer(exchange))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, exchange: Exchange) -> None:
        try:
            await self.respond(exchange)
        except (ConnectionError, OSError):
            pass
        finally:
            exchange.close()

    async def finish(self, timeout: float) -> None:
        """Let the requests being answered finish (at most ``timeout`` seconds)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


class _Connection(asyncio.Protocol):
    """One peer: checked, then its request line gathered within the time limit and handed on."""

    def __init__(self, server: PeerCheckedServer):
        self.server = server
        self.transport: Optional[asyncio.Transport] = None
        self.buffer = bytearray()
        self.pid = self.uid = -1
        self.timer: Optional[asyncio.TimerHandle] = None
        self.taken = False   # the request was handed on (or refused): later bytes are ignored
        self.closed: Optional[asyncio.Future] = None   # how the connection ended (None: cleanly)

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.closed = asyncio.get_running_loop().create_future()
        server = self.server
        try:
            self.pid, self.uid, _ = peer_credentials(transport.get_extra_info("socket"))
        except OSError:
            self._drop()
            return
        if self.uid not in server.allowed_uids:
            server.log.warning("refused a request from pid %d uid %d: %s", self.pid, self.uid, server.who_may_ask)
            self._drop()
            return
        self.timer = asyncio.get_running_loop().call_later(server.read_timeout, self._unreadable, "TimeoutError")

    def data_received(self, data: bytes) -> None:
        if self.taken:
            return
        self.buffer += data
        end = self.buffer.find(b"\n")
        if end >= 0:
            self._take(bytes(self.buffer[:end + 1]))
        elif len(self.buffer) > self.server.limit:
            self._unreadable(f"request line longer than {self.server.limit} bytes")

    def eof_received(self) -> bool:
        if not self.taken:   # what came before the end is the request (a line without its newline)
            self._take(bytes(self.buffer))
        return True   # keep our side open for the answer

    def connection_lost(self, exc) -> None:
        self.taken = True
        if self.timer is not None:
            self.timer.cancel()
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(exc)

    def _take(self, line: bytes) -> None:
        self.taken = True
        self.buffer = bytearray()
        if self.timer is not None:
            self.timer.cancel()
        self.transport.pause_reading()
        self.server.answer(Exchange(line, self.pid, self.uid, self.transport, self.closed))

    def _unreadable(self, why: str) -> None:
        self.server.log.warning("bad request from pid %d: %s", self.pid, why)
        if self.server.unreadable_answer is not None and not self.transport.is_closing():
            self.transport.write(self.server.unreadable_answer)
        self._drop()

    def _drop(self) -> None:
        self.taken = True
        if self.timer is not None:
            self.timer.cancel()
        self.transport.close()
