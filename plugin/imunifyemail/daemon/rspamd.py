"""Rspamd's ``/checkv2`` over HTTP on loopback.

Request headers tell Rspamd the envelope and that the sender is local and
authenticated, so it skips the reverse-DNS and HELO checks that stall an
offline server (EXIM.md). Any failure returns ``None``: the daemon then
passes the message unscanned instead of holding mail hostage to Rspamd.
"""
import asyncio
import logging
from typing import Optional, Sequence

import aiohttp
from multidict import CIMultiDict

from ..core.verdict import Scan

log = logging.getLogger(__name__)


class RspamdClient:
    def __init__(self, url: str, timeout: float):
        self.url = url.rstrip("/") + "/checkv2"
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: Optional[aiohttp.ClientSession] = None

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Rspamd 3.4 closes every connection anyway: don't keep any.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True, limit=64), timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def scan(self, raw: bytes, sender: str, recipients: Sequence[str], user: str,
                   ip: str = "", queue_id: str = "") -> Optional[Scan]:
        headers = CIMultiDict()
        headers["From"] = sender or "<>"
        for rcpt in recipients:
            headers.add("Rcpt", rcpt)
        headers["IP"] = ip or "127.0.0.1"
        headers["User"] = user
        headers["Hostname"] = "localhost"
        if queue_id:
            headers["Queue-Id"] = queue_id
        try:
            session = await self._get_session()
            async with session.post(self.url, data=raw, headers=headers) as resp:
                if resp.status != 200:
                    log.warning("rspamd answered HTTP %d: message passes unscanned", resp.status)
                    return None
                reply = await resp.json(content_type=None)
                server = resp.headers.get("Server", "")
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, OSError) as exc:
            log.warning("rspamd unreachable (%s): message passes unscanned", type(exc).__name__)
            return None
        if not isinstance(reply, dict) or "action" not in reply or "score" not in reply:
            log.warning("rspamd reply without action/score: message passes unscanned")
            return None
        symbols = tuple(sorted((reply.get("symbols") or {}).keys()))
        version = server.split("/", 1)[1] if "/" in server else server
        try:
            score = float(reply["score"])
        except (TypeError, ValueError):
            return None
        return Scan(action=str(reply["action"]), score=score, symbols=symbols, version=version)
