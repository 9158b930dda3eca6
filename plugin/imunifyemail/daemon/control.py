"""The daemon's control socket: work that needs the Exim user's identity, asked for by the web app.

The web app runs as ``_imunifyemail`` and cannot become the Exim user, so a
release from a page is handed here, as JSON: ``{"op": "release", "caller":
{...}, "ids": [...]}``. The daemon runs the very operation ``ie-cli`` runs
(:func:`imunifyemail.ops.emails.release`, which checks the caller again) with
a releaser whose sender is the spawner: the same one-shot command, as the
Exim user. Only root and the daemon's own user may connect (socket mode and
a SO_PEERCRED check); releases run one at a time on a thread of their own,
with their own database connection, never on the mail path's.
"""
import asyncio
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Sequence, Set

from ..context import Context
from ..core.metrics import MailCounters
from ..errors import ActionError, InvalidInput
from ..ops import emails as email_ops
from ..ops.caller import Caller
from ..ops.release import OneShotReleaser, perform
from ..peer import peer_credentials
from ..store.listing import StoredMessage
from .spawner import Spawner

log = logging.getLogger(__name__)

MAX_REQUEST = 1 << 20


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
        self.allowed_uids = {0, os.geteuid()}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="control")
        self._tasks: Set[asyncio.Task] = set()

    def connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """``start_unix_server``'s callback: asyncio holds its handler tasks only weakly (a release
        waiting on sendmail could be collected), so we hold them until they end."""
        task = asyncio.ensure_future(self.handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            pid, uid, _ = peer_credentials(sock)
            if uid not in self.allowed_uids:
                log.warning("refused control connection from pid %d uid %d", pid, uid)
                return
            try:
                line = await asyncio.wait_for(reader.readline(), 30)
            except (asyncio.TimeoutError, asyncio.LimitOverrunError, ValueError):
                return
            answer = await asyncio.get_running_loop().run_in_executor(self._pool, self.dispatch, line)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def dispatch(self, line: bytes) -> dict:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise InvalidInput("malformed request")
            op = request.get("op")
            if op == "ping":
                return {"ok": True}
            if op != "release":
                raise InvalidInput(f"unknown operation {op!r}")
            try:
                caller = Caller.from_dict(request.get("caller") or {})
            except ValueError:
                raise InvalidInput("malformed caller") from None
            ids = request.get("ids")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise InvalidInput("malformed email ids")
            return {"ok": True, "released": email_ops.release(self.ctx, caller, ids)}
        except ValueError:
            return {"ok": False, "kind": "InvalidInput", "error": "malformed request"}
        except ActionError as exc:
            return {"ok": False, "kind": type(exc).__name__, "error": str(exc)}
        except Exception:
            log.exception("control request failed")
            return {"ok": False, "kind": "ActionError", "error": "the release failed: see the daemon's log"}

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.ctx.close()
