"""The socket Exim's router asks, once per remote address, for the verdict (:mod:`..protocol.scan`).

Only the message id and the address travel in the request; everything else
comes from the spool. Only root may ask (Exim's routing runs as root; a
user's Exim filter could reach the socket, so nothing in a request is
trusted).

Every recipient of a message gets the verdict of one decision: the first
question starts it, the others wait for it, later ones find it cached (and,
after a restart, remembered by the store).
"""
import asyncio
import logging
from collections import OrderedDict
from typing import Dict

from ..protocol import scan
from .peer_server import Exchange, PeerCheckedServer
from ..protocol.scan import DEFER, PASS
from .pipeline import Answer, Pipeline, address_key

log = logging.getLogger(__name__)

CACHE_SIZE = 4096
READ_TIMEOUT = 10.0


class Scanner:
    def __init__(self, pipeline: Pipeline, late_after: float, allowed_uids=frozenset({0}), incoming=None):
        self.pipeline = pipeline
        self.incoming = incoming   # .incoming.Incoming: the incoming filter's questions
        self.late_after = late_after   # Exim's timeout: an answer after it reaches nobody
        self._server = PeerCheckedServer(self._respond, allowed_uids, READ_TIMEOUT,
                                         "only Exim's routing (root) may ask", log, scan.BAD_REQUEST_ANSWER)
        self.protocol = self._server.protocol   # ``create_unix_server``'s factory
        self._inflight: Dict[str, asyncio.Future] = {}
        self._cache: "OrderedDict[str, Answer]" = OrderedDict()

    async def answer(self, exim_id: str, rcpt: str) -> Answer:
        if not exim_id:   # exim -bt: an address test, no message to judge
            return Answer(PASS, {"action": "address test"})
        answer = await self._shared(exim_id, lambda: self.pipeline.decide(exim_id, rcpt))
        if answer.covered(rcpt):
            return answer
        # a pass that only every recipient's whitelisting allowed does not cover an address added since
        key = address_key(exim_id, rcpt)
        return await self._shared(key, lambda: self.pipeline.decide_address(exim_id, rcpt))

    async def _shared(self, key: str, decide) -> Answer:
        """One decision per key (a message, or one address of it): cached, or shared while in flight."""
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        pending = self._inflight.get(key)
        if pending is not None:   # another question started it: its answer
            return await asyncio.shield(pending)
        # The first question decides in its own task (no task of its own per message); the others
        # wait on this future.
        pending = asyncio.get_running_loop().create_future()
        self._inflight[key] = pending
        try:
            answer = await decide()
        except BaseException:   # cancelled (the daemon stopping): the others are left no answer either
            pending.cancel()
            raise
        finally:
            del self._inflight[key]
        pending.set_result(answer)
        if answer.verdict != DEFER:
            self._cache[key] = answer
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return answer

    async def _respond(self, exchange: Exchange) -> None:
        try:
            exim_id, rcpt, verb = scan.parse_request(exchange.line)
        except scan.MalformedRequest as exc:
            log.warning("bad request from pid %d: %s", exchange.pid, exc)
            await exchange.send(scan.BAD_REQUEST_ANSWER)
            return
        if verb == scan.INCOMING:
            fields = await self.incoming.answer(exim_id, rcpt) if self.incoming is not None else {"verdict": "inbox"}
            verdict = fields.pop("verdict")
            await exchange.send(scan.build_answer(verdict, fields))
            return
        answer = await self.answer(exim_id, rcpt)
        if not await exchange.send(scan.build_answer(answer.verdict, answer.fields)) and answer.verdict != DEFER:
            # Exim stopped waiting (its timeout) and deferred the address
            log.info("id=%s decided after the router's %gs: Exim deferred it; asking for it again",
                     exim_id, self.late_after)
            self.pipeline.deferrals.late(exim_id)

    async def close(self) -> None:
        """Let the questions being answered finish."""
        await self._server.finish(timeout=30)
