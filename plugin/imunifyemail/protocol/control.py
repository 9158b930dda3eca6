"""The control socket: one JSON request line, one JSON answer line, then the daemon closes.

Requests: ``{"op": "ping"}``, ``{"op": "release", "caller": {...}, "ids": [...]}`` (the caller as
:meth:`~imunifyemail.ops.caller.Caller.as_dict` gives it). Answers: ``{"ok": true}``,
``{"ok": true, "released": [...]}``, or ``{"ok": false, "kind": <kind>, "error": <one line>}``.
Error kinds travel by name, so the client raises what the daemon raised: the
:class:`~imunifyemail.errors.ActionError` family, and :class:`InternalError` for a fault of the
daemon's own (a bug, a damaged store), whose details stay in the daemon's log.
"""
import json
from dataclasses import dataclass
from typing import Any, Dict, Sequence, Tuple, Union

from ..errors import ActionError, Conflict, Forbidden, InvalidInput, NotFoundError, ReleaseFailed, Unavailable
from ..ops.caller import Caller

PING, RELEASE = "ping", "release"
MAX_LINE = 1 << 20   # a request or an answer, in bytes
MALFORMED = "malformed request"
INTERNAL = "internal error: see the daemon's log"


class InternalError(ActionError):
    """The daemon failed where it should not have; what happened is in its log, not in the answer."""


ERROR_KINDS = {kind.__name__: kind for kind in (ActionError, InvalidInput, NotFoundError, Forbidden, Conflict,
                                                  ReleaseFailed, Unavailable, InternalError)}


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Release:
    caller: Caller
    ids: Tuple[str, ...]


Request = Union[Ping, Release]


# -- requests -------------------------------------------------------------------

def release_request(caller: Caller, ids: Sequence[str]) -> Dict[str, Any]:
    return {"op": RELEASE, "caller": caller.as_dict(), "ids": list(ids)}


def build_request(request: Dict[str, Any]) -> bytes:
    return json.dumps(request).encode() + b"\n"


def parse_request(line: bytes) -> Request:
    """The request, or :class:`InvalidInput` naming what is wrong with it."""
    try:
        request = json.loads(line)
        json.dumps(request, ensure_ascii=False).encode()   # a lone surrogate: JSON, but no text
    except (ValueError, RecursionError):
        raise InvalidInput(MALFORMED) from None
    if not isinstance(request, dict):
        raise InvalidInput(MALFORMED)
    op = request.get("op")
    if op == PING:
        return Ping()
    if op != RELEASE:
        raise InvalidInput(f"unknown operation {op!r}")
    caller = request.get("caller") or {}
    try:
        if not isinstance(caller, dict):
            raise ValueError(caller)
        caller = Caller.from_dict(caller)
    except ValueError:
        raise InvalidInput("malformed caller") from None
    ids = request.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidInput("malformed email ids")
    return Release(caller, tuple(ids))


# -- answers --------------------------------------------------------------------

def ping_answer() -> Dict[str, Any]:
    return {"ok": True}


def released_answer(ids: Sequence[str]) -> Dict[str, Any]:
    return {"ok": True, "released": list(ids)}


def error_answer(exc: ActionError) -> Dict[str, Any]:
    """Its kind is the nearest one the client knows (a subclass of ours travels as its parent)."""
    kind = next(k for k in type(exc).__mro__ if ERROR_KINDS.get(k.__name__) is k)
    return {"ok": False, "kind": kind.__name__, "error": str(exc)}


def internal_error_answer() -> Dict[str, Any]:
    return error_answer(InternalError(INTERNAL))


def build_answer(answer: Dict[str, Any]) -> bytes:
    return json.dumps(answer).encode() + b"\n"


def parse_answer(data: bytes) -> Dict[str, Any]:
    """The answer, or :class:`Unavailable` when the daemon gave none (it closed, or sent garbage)."""
    try:
        answer = json.loads(data)
    except ValueError:
        raise Unavailable("the filter daemon gave no answer: see its log") from None
    if not isinstance(answer, dict):
        raise Unavailable("the filter daemon gave a malformed answer")
    return answer


def answer_error(answer: Dict[str, Any]) -> ActionError:
    """The error a refusal reports, of the kind the daemon raised (an unknown kind: ActionError)."""
    kind = ERROR_KINDS.get(str(answer.get("kind")), ActionError)
    return kind(str(answer.get("error") or "the release failed"))
