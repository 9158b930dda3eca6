"""The incoming filter's answers: ``INCOMING id=<Exim id> rcpt=<base64 address>``, once per local
recipient, asked by ``imunifyemail_incoming`` (exim_conf/incoming.conf) on the filter socket.

The message is read from Exim's spool and scanned by Rspamd once (the other recipients share that
scan); each recipient then gets its own routing (:func:`..core.incoming.route`): ``junk`` (Exim
redirects the copy to the mailbox's Junk folder) or ``inbox``. Nothing here can hold, bounce or
defer mail: whatever goes wrong (spool, Rspamd, store) is "inbox", said in the log.
"""
import asyncio
import logging
import time
from collections import OrderedDict
from typing import Callable, Dict, Optional

from ..core import incoming as rules
from ..core.attribution import Directory
from ..core.verdict import Scan
from ..exim.spool import Spool
from ..store import incoming as stored
from .scanning import ScanGate
from .store_worker import Reader, StoreWorker

log = logging.getLogger(__name__)

CACHE_SIZE = 4096
TURNS_OF = "(incoming)"   # inbound mail shares one account's share of the scan turns: outbound keeps the rest


def key_of(exim_id: str, rcpt: str) -> str:
    return f"in/{exim_id}/{rcpt.lower()}"


class Incoming:
    def __init__(self, store: StoreWorker, reader: Reader, gate: ScanGate, directory: Directory, spool: Spool,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.reader = reader
        self.gate = gate
        self.directory = directory
        self.spool = spool
        self.clock = clock
        self._scans: "OrderedDict[str, asyncio.Future]" = OrderedDict()

    async def answer(self, exim_id: str, rcpt: str) -> Dict[str, str]:
        """``verdict`` (junk or inbox) and what Exim logs or adds with it."""
        if not exim_id:   # an address test: no message
            return {"verdict": rules.INBOX, "reason": "address test"}
        key = key_of(exim_id, rcpt)
        try:
            known = stored.recall(self.reader.conn, key)
            if known is not None:   # asked again (a retry): the same answer, counted once
                return known
            domain = rcpt.rpartition("@")[2].lower()
            account = self.directory.account_for_domain(domain)
            on = account is not None and stored.account_enabled(self.reader.conn, account)
            scan = await self._scan(exim_id) if on else None
            routing = rules.route(account, on, rcpt, self.reader.settings.get().whitelist, scan)
            fields = {"verdict": routing.folder, "reason": routing.reason}
            if scan is not None:
                fields.update(action=scan.action, score=f"{scan.score:.2f}")
            await self.store.grouped(stored.record, self.store.activity.conn, key, fields, account,
                                     routing.counted, self.clock())
        except Exception:
            log.exception("incoming id=%s rcpt=<%s>: delivered to the inbox", exim_id, rcpt)
            return {"verdict": rules.INBOX, "reason": "filter error"}
        log.info("incoming id=%s rcpt=<%s> account=%s action=%s score=%s -> %s%s", exim_id, rcpt, account or "-",
                 fields.get("action", "-"), fields.get("score", "-"), routing.folder,
                 f" ({routing.reason})" if routing.reason else "")
        return fields

    async def _scan(self, exim_id: str) -> Optional[Scan]:
        """Rspamd's verdict on the message, once for all its recipients; None: it could not be had."""
        pending = self._scans.get(exim_id)
        if pending is None:
            pending = asyncio.ensure_future(self._scan_once(exim_id))
            self._scans[exim_id] = pending
            while len(self._scans) > CACHE_SIZE:
                self._scans.popitem(last=False)
        return await asyncio.shield(pending)

    async def _scan_once(self, exim_id: str) -> Optional[Scan]:
        try:
            spooled, raw = await asyncio.get_running_loop().run_in_executor(None, self.spool.read, exim_id)
        except Exception as exc:
            log.warning("incoming id=%s: cannot read it from the spool (%s): delivered unscanned", exim_id, exc)
            return None
        scanned = await self.gate.scan(raw, spooled.sender, spooled.undelivered, TURNS_OF, spooled.host, exim_id,
                                       user=spooled.auth_id)
        if scanned.scan is None:
            log.warning("incoming id=%s: Rspamd gave no verdict (%s): delivered to the inbox unscanned",
                        exim_id, scanned.failure)
        return scanned.scan
