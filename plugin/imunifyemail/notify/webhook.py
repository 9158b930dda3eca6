"""The webhook: events POSTed as JSON to the administrator's URL, a batch at a time.

Each attempt waits at most ``webhook_timeout`` seconds for the connection and for each read; a
failed one is tried again up to ``webhook_retries`` times, 1, 2, 4 … (at most 30) seconds apart.
What an answer means:

* 2xx: delivered;
* a refusal — a 4xx other than 408 and 429, or a redirect (not followed: the body would be lost
  or sent elsewhere): the receiver will never take this batch; it is skipped, with an error in the
  log, so that one batch it dislikes cannot hold back every later one;
* no answer, a timeout, a 5xx, 408 or 429: failed; the batch is kept and posted again by the next
  run (a minute later), so a receiver that was down gets everything once it is back (events are
  kept as long as the Activity Monitor's statistics).

Environment proxies are ignored: the URL is reached directly.
"""
import http.client
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Dict, Sequence

from .. import __version__

BATCH = 500
DELIVERED, REFUSED, FAILED = "delivered", "refused", "failed"
MAX_BACKOFF = 30


def event(e) -> Dict[str, Any]:
    """One event as the webhook shows it (``e``: a :class:`imunifyemail.store.events.Event`)."""
    return {"id": e.id, "time": e.at, "kind": e.kind, "account": e.account, "reasons": list(e.reasons),
            "sender": e.sender, "script": e.script, "email_id": e.email_id,
            "limits": [r.as_dict() for r in e.limits]}


def payload(events: Sequence, server: str, sent_at: int) -> bytes:
    """A batch: the server, when it was sent, the first and last event id (a receiver can tell a
    batch posted again after a failure), the events oldest first."""
    return json.dumps({"server": server, "sent_at": sent_at, "first_id": events[0].id, "last_id": events[-1].id,
                       "events": [event(e) for e in events]}).encode()


@dataclass(frozen=True)
class Outcome:
    result: str      # DELIVERED, REFUSED or FAILED
    detail: str
    attempts: int


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None   # a 3xx becomes an HTTPError: an answer, not a new place to post to


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def _retryable(code: int) -> bool:
    return code >= 500 or code in (408, 429)


def post(url: str, body: bytes, timeout: float, retries: int,
         sleep: Callable[[float], None] = time.sleep) -> Outcome:
    detail = ""
    for attempt in range(retries + 1):
        if attempt:
            sleep(min(2 ** (attempt - 1), MAX_BACKOFF))
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": f"imunifyemail/{__version__}"})
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                response.read(65536)
                return Outcome(DELIVERED, f"HTTP {response.status}", attempt + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            detail = f"HTTP {exc.code}"
            if not _retryable(exc.code):
                return Outcome(REFUSED, detail, attempt + 1)
        except urllib.error.URLError as exc:
            detail = str(getattr(exc.reason, "strerror", None) or exc.reason)
        except (OSError, http.client.HTTPException) as exc:   # a timeout or a broken answer while reading
            detail = str(getattr(exc, "strerror", None) or exc) or type(exc).__name__
    return Outcome(FAILED, detail, retries + 1)
