"""The socket Exim's router asks, once per remote address: ``SCAN id=<Exim id> rcpt=<base64>``.

The answer is one line of ``key="value"`` pairs for the router's ``${extract}``
(``exim_conf/router.conf``), sent without a newline, then the connection
closes: ``verdict=pass action="no action" score="0.40" ...``, ``verdict=hold
email_id="..." reasons="spam"`` or ``verdict=defer reason="..."``. Only the
message id and the address travel in the request; everything else comes
from the spool. Only root may ask (Exim's routing runs as root; a user's
Exim filter could reach the socket, so nothing in a request is trusted).

Every recipient of a message gets the verdict of one decision: the first
question starts it, the others wait for it, later ones find it cached (and,
after a restart, remembered by the store). Handler tasks are held in a set:
asyncio keeps only weak references to them, and a handler could otherwise
be collected while it waits for Rspamd (seen on Python 3.11: an empty
answer, hence a needless defer).
"""
import asyncio
import base64
import binascii
import logging
import re
from collections import OrderedDict
from typing import Dict, Set

from ..core.attribution import EXIM_ID
from ..peer import peer_credentials
from .pipeline import DEFER, PASS, Answer, Filter, address_key

log = logging.getLogger(__name__)

_REQUEST = re.compile(rb"^SCAN id=(\S*) rcpt=(\S*)$")
_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f]')
CACHE_SIZE = 4096
READ_TIMEOUT = 10.0


def format_answer(answer: Answer) -> bytes:
    parts = [f"verdict={answer.verdict}"]
    parts += [f'{key}="{_UNSAFE.sub("", str(value))}"' for key, value in answer.fields.items()]
    return " ".join(parts).encode("utf-8", "replace")


def parse_request(line: bytes):
    """(exim id, recipient), or ValueError."""
    m = _REQUEST.match(line.strip())
    if m is None:
        raise ValueError("not a SCAN request")
    exim_id = m.group(1).decode("ascii")
    try:
        rcpt = base64.b64decode(m.group(2), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("recipient is not base64 UTF-8") from None
    if exim_id and not EXIM_ID.fullmatch(exim_id):
        raise ValueError("not an Exim message id")
    return exim_id, rcpt


class Scanner:
    def __init__(self, flt: Filter, late_after: float, allowed_uids=frozenset({0})):
        self.filter = flt
        self.late_after = late_after   # Exim's timeout: an answer after it reaches nobody
        self.allowed_uids = allowed_uids
        self._tasks: Set[asyncio.Task] = set()
        self._inflight: Dict[str, asyncio.Future] = {}
        self._cache: "OrderedDict[str, Answer]" = OrderedDict()

    def connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """``start_unix_server``'s callback: the handler runs as a task we hold on to."""
        task = asyncio.ensure_future(self._handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def answer(self, exim_id: str, rcpt: str) -> Answer:
        if not exim_id:   # exim -bt: an address test, no message to judge
            return Answer(PASS, {"action": "address test"})
        answer = await self._shared(exim_id, lambda: self.filter.decide(exim_id, rcpt))
        if answer.covered(rcpt):
            return answer
        # a pass that only every recipient's whitelisting allowed does not cover an address added since
        key = address_key(exim_id, rcpt)
        return await self._shared(key, lambda: self.filter.decide_address(exim_id, rcpt))

    async def _shared(self, key: str, decide) -> Answer:
        """One decision per key (a message, or one address of it): cached, or shared while in flight."""
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(decide())
            self._inflight[key] = pending
            pending.add_done_callback(lambda _f: self._inflight.pop(key, None))
        answer = await asyncio.shield(pending)
        if answer.verdict != DEFER:
            self._cache[key] = answer
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return answer

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            pid, uid, _ = peer_credentials(sock)
            if uid not in self.allowed_uids:
                log.warning("refused a request from pid %d uid %d: only Exim's routing (root) may ask", pid, uid)
                return
            try:
                line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
                exim_id, rcpt = parse_request(line)
            except (asyncio.TimeoutError, ValueError, asyncio.LimitOverrunError) as exc:
                writer.write(format_answer(Answer(DEFER, {"reason": "bad request"})))
                log.warning("bad request from pid %d: %s", pid, exc)
                return
            answer = await self.answer(exim_id, rcpt)
            try:
                writer.write(format_answer(answer))
                await writer.drain()
            except (ConnectionError, OSError):
                if answer.verdict != DEFER:   # Exim stopped waiting (its timeout) and deferred the address
                    log.info("id=%s decided after the router's %gs: Exim deferred it; asking for it again",
                             exim_id, self.late_after)
                    self.filter.deferrals.late(exim_id)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        """Let the questions being answered finish."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=30)
