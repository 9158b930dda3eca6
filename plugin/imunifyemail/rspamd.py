"""Rspamd's ``/checkv2`` over HTTP, on Rspamd's unix socket (production) or TCP.

``rspamd.url`` is ``unix:/var/run/rspamd/normal.sock`` (the socket rpm/rspamd/override.d gives the
scanner: only Rspamd, ``_imunifyemail`` and root may connect; the path is resolved under
``$IMUNIFYEMAIL_ROOT``) or ``http://host:port`` (tests, benchmarks, older configs).

Request headers tell Rspamd the envelope and that the sender is local and
authenticated, so it skips the reverse-DNS and HELO checks that stall an
offline server (EXIM.md). Any failure returns ``None``: the daemon then
passes the message unscanned instead of holding mail hostage to Rspamd.

One POST per message on a fresh connection (Rspamd 3.4 closes every
connection anyway). This is a deliberately small HTTP/1.0 client: aiohttp
cost twice the CPU per scan (0.55 ms against 0.26 ms, measured), which is
most of what the filter adds on top of Rspamd itself. It is an asyncio
Protocol under a deadline of its own, not streams under ``wait_for``: those
cost a task and several futures per scan (issue 18).
"""
import asyncio
import json
import logging
import time
from typing import List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from . import paths
from .core.metrics import MailCounters
from .core.verdict import Scan

log = logging.getLogger(__name__)

MAX_REPLY_BYTES = 16 * 1024 * 1024
# seconds a health check waits: its own, apart from the scans' timeout — a ping that answers while a
# scan did not is how a message Rspamd fails on is told from Rspamd being down (daemon/scanning.py)
PING_TIMEOUT = 2.0
UNIX_PREFIX = "unix:"


class RspamdError(Exception):
    pass


_UNSAFE_IN_HEADER = str.maketrans("", "", "\r\n\0")


def _header_value(value: str) -> str:
    # Envelope addresses come from the spool (the sender chose them): never let one split a header.
    return value.translate(_UNSAFE_IN_HEADER)


def build_request(host: str, raw: bytes, sender: str, recipients: Sequence[str], user: str, ip: str,
                  queue_id: str) -> bytes:
    lines = ["POST /checkv2 HTTP/1.0", f"Host: {host}", f"From: {_header_value(sender or '<>')}"]
    lines += [f"Rcpt: {_header_value(r)}" for r in recipients]
    lines += [f"IP: {_header_value(ip or '127.0.0.1')}", f"User: {_header_value(user)}", "Hostname: localhost"]
    if queue_id:
        lines.append(f"Queue-Id: {_header_value(queue_id)}")
    lines += [f"Content-Length: {len(raw)}", "", ""]
    return "\r\n".join(lines).encode("utf-8") + raw


def parse_reply(data: bytes) -> Tuple[int, dict, bytes]:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise RspamdError("truncated HTTP reply")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise RspamdError("malformed HTTP status line")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        body = body[:int(length)]
        if len(body) < int(length):
            raise RspamdError("truncated HTTP body")
    return int(parts[1]), headers, body


class _Exchange(asyncio.Protocol):
    """One request written, the whole reply gathered (HTTP/1.0: it ends when Rspamd closes)."""

    def __init__(self, request: bytes, reply: "asyncio.Future[bytes]"):
        self.request, self.reply = request, reply
        self.chunks: List[bytes] = []
        self.size = 0
        self.transport: Optional[asyncio.Transport] = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        if self.size >= MAX_REPLY_BYTES:   # enough: what parse_reply gets is cut there
            self._settle()
            self.transport.close()

    def eof_received(self) -> bool:
        self._settle()
        return False

    def connection_lost(self, exc) -> None:
        if exc is not None and not self.reply.done():
            self.reply.set_exception(exc)
        self._settle()

    def _settle(self) -> None:
        if not self.reply.done():
            self.reply.set_result(b"".join(self.chunks)[:MAX_REPLY_BYTES])


class _Deadline:
    """``asyncio.timeout`` (3.11) for 3.9 too: the awaiting task is cancelled when time is up, and that
    cancellation leaves as :class:`asyncio.TimeoutError`; anyone else's cancellation stays one."""

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float):
        self.loop, self.seconds = loop, seconds
        self.expired = False

    def __enter__(self) -> "_Deadline":
        self.task = asyncio.current_task()
        self.timer = self.loop.call_later(self.seconds, self._expire)
        return self

    def _expire(self) -> None:
        self.expired = True
        self.task.cancel()

    def __exit__(self, exc_type, exc, tb):
        self.timer.cancel()
        if self.expired and exc_type is asyncio.CancelledError:
            uncancel = getattr(self.task, "uncancel", None)   # 3.11+: it was our cancellation
            if uncancel is not None:
                uncancel()
            raise asyncio.TimeoutError from None
        return False


class RspamdClient:
    def __init__(self, url: str, timeout: float, counters: Optional[MailCounters] = None):
        self.socket_path: Optional[str] = None
        if url.startswith(UNIX_PREFIX):
            path = url[len(UNIX_PREFIX):]
            if not path.startswith("/"):
                raise ValueError(f"unsupported Rspamd URL {url!r}: use unix:/path/to/socket or http://host:port")
            self.socket_path = str(paths.system_path(path))
            self.host, self.port = "localhost", 0
        else:
            parts = urlsplit(url)
            if parts.scheme != "http" or not parts.hostname:
                raise ValueError(f"unsupported Rspamd URL {url!r}: use unix:/path/to/socket or http://host:port")
            self.host = parts.hostname
            self.port = parts.port or 80
        self.timeout = timeout
        self.counters = counters   # answer times and failures, for the metrics file

    @property
    def _host_header(self) -> str:
        return self.host if self.socket_path else f"{self.host}:{self.port}"

    async def close(self) -> None:
        """Nothing is kept open between scans."""

    async def _post(self, request: bytes, timeout: float) -> bytes:
        """Send ``request`` and read the reply until Rspamd closes (at most MAX_REPLY_BYTES), all within
        ``timeout`` seconds (:class:`asyncio.TimeoutError`)."""
        loop = asyncio.get_running_loop()
        reply = loop.create_future()
        transport = None
        with _Deadline(loop, timeout):
            try:
                if self.socket_path is not None:
                    transport, _ = await loop.create_unix_connection(lambda: _Exchange(request, reply),
                                                                     self.socket_path)
                else:
                    transport, _ = await loop.create_connection(lambda: _Exchange(request, reply),
                                                                self.host, self.port)
                return await reply
            finally:
                if transport is not None:
                    transport.close()

    async def ping(self) -> bool:
        """Whether the scanner answers ``GET /ping`` with ``pong`` within a short timeout (a health
        check: never raises, counts nothing)."""
        request = f"GET /ping HTTP/1.0\r\nHost: {self._host_header}\r\n\r\n".encode("ascii")
        try:
            data = await self._post(request, PING_TIMEOUT)
            status, _, body = parse_reply(data)
        except (OSError, asyncio.TimeoutError, RspamdError, ValueError):
            return False
        return status == 200 and body.strip().startswith(b"pong")

    async def scan(self, raw: bytes, sender: str, recipients: Sequence[str], user: str,
                   ip: str = "", queue_id: str = "") -> Optional[Scan]:
        started = time.monotonic()
        found = await self._scan(raw, sender, recipients, user, ip, queue_id)
        if self.counters is not None:
            if found is None:
                self.counters.rspamd_failed()
            else:
                self.counters.rspamd_answered(time.monotonic() - started)
        return found

    async def _scan(self, raw: bytes, sender: str, recipients: Sequence[str], user: str, ip: str,
                    queue_id: str) -> Optional[Scan]:
        request = build_request(self._host_header, raw, sender, recipients, user, ip, queue_id)
        try:
            data = await self._post(request, self.timeout)
            status, headers, body = parse_reply(data)
            if status != 200:
                log.warning("rspamd answered HTTP %d: message passes unscanned", status)
                return None
            reply = json.loads(body)
        except (OSError, asyncio.TimeoutError, RspamdError, ValueError) as exc:
            log.warning("rspamd unreachable (%s): message passes unscanned", type(exc).__name__)
            return None
        if not isinstance(reply, dict) or "action" not in reply or "score" not in reply:
            log.warning("rspamd reply without action/score: message passes unscanned")
            return None
        try:
            score = float(reply["score"])
        except (TypeError, ValueError):
            log.warning("rspamd reply with a non-numeric score: message passes unscanned")
            return None
        symbols = tuple(sorted((reply.get("symbols") or {}).keys()))
        server = headers.get("server", "")
        version = server.split("/", 1)[1] if "/" in server else server
        return Scan(action=str(reply["action"]), score=score, symbols=symbols, version=version)
