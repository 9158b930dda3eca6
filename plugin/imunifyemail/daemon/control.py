"""The daemon's control socket: work that needs the Exim user's identity, asked for by the web app.

The web app runs as ``_imunifyemail`` and cannot become the Exim user, so a
release from a page is handed here (:mod:`..protocol.control`). The daemon
runs the very operation ``ie-cli`` runs (:func:`imunifyemail.ops.emails.release`,
which checks the caller again) with a releaser whose sender is the spawner:
the same one-shot command, as the Exim user. Only root and the daemon's own
user may connect (socket mode and a SO_PEERCRED check); releases run one at
a time on a thread of their own, with their own database connection, never
on the mail path's. A fault while answering (a bug, a damaged store) is
logged with its traceback and answered as an internal error, never as the
request's fault.
"""
import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Sequence

from ..context import Context
from ..core.metrics import MailCounters
from ..errors import ActionError
from ..ops import emails as email_ops
from ..ops.caller import Caller
from ..ops.release import OneShotReleaser, perform
from ..protocol import control
from ..store.listing import StoredMessage
from .peer_server import Exchange, PeerCheckedServer
from .spawner import Spawner

log = logging.getLogger(__name__)

READ_TIMEOUT = 30.0


class SpawnerReleaser:
    """Releases through the spawner: ``sendmail`` as the Exim user, the command ``ie-cli`` runs."""

    def __init__(self, spawner: Spawner, timeout: float):
        self.spawner, self.timeout = spawner, timeout

    def send(self, raw: bytes, sender: str, recipients: Sequence[str]) -> None:
        self.spawner.release(raw, sender, recipients, self.timeout)

    def release(self, ctx: Context, caller: Caller, messages: Sequence[StoredMessage]) -> List[str]:
        return perform(ctx, caller, messages, self.send, self.timeout)


class CountedReleaser:
    """Counts each re-injection through the daemon, and each one Exim did not accept (metrics)."""

    def __init__(self, inner, counters: MailCounters):
        self.inner, self.counters, self.timeout = inner, counters, inner.timeout

    def send(self, raw: bytes, sender: str, recipients: Sequence[str]) -> None:
        try:
            self.inner.send(raw, sender, recipients)
        except Exception:
            self.counters.reinjected(ok=False)
            raise
        self.counters.reinjected(ok=True)

    def release(self, ctx: Context, caller: Caller, messages: Sequence[StoredMessage]) -> List[str]:
        return perform(ctx, caller, messages, self.send, self.timeout)


def releaser_for(cfg, spawner: Optional[Spawner], counters: Optional[MailCounters] = None):
    if spawner is not None:
        releaser = SpawnerReleaser(spawner, cfg["reinject"]["timeout"])
    else:
        r = cfg["reinject"]   # not started as root: sendmail runs as the daemon's own user
        releaser = OneShotReleaser(r["sendmail"], r["timeout"], None)
    return releaser if counters is None else CountedReleaser(releaser, counters)


class ControlServer:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="control")
        self._server = PeerCheckedServer(self._respond, {0, os.geteuid()}, READ_TIMEOUT,
                                         "only root and the daemon's user may ask", log, limit=control.MAX_LINE)
        self.protocol = self._server.protocol   # ``create_unix_server``'s factory

    async def _respond(self, exchange: Exchange) -> None:
        answer = await asyncio.get_running_loop().run_in_executor(self._pool, self.dispatch, exchange.line)
        await exchange.send(control.build_answer(answer))

    def dispatch(self, line: bytes) -> Dict[str, Any]:
        try:
            request = control.parse_request(line)
            if isinstance(request, control.Ping):
                return control.ping_answer()
            return control.released_answer(email_ops.release(self.ctx, request.caller, request.ids))
        except ActionError as exc:
            return control.error_answer(exc)
        except Exception:
            log.exception("control request failed")
            return control.internal_error_answer()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.ctx.close()
