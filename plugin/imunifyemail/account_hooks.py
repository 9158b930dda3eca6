"""cPanel Standardized Hooks (CPANEL.md, "Hooks"): an account removed or renamed in WHM.

The scripts in ``hooks/`` each call :func:`main` with their event. cPanel runs a
script as root with the hook's JSON on stdin (``{"context": {...}, "data": {...},
"hook": {...}}``) after the event (stage ``post``: the account is already removed or
renamed, and ``/etc/userdomains`` already says so). ``--describe`` prints what
``manage_hooks add script PATH`` registers. The answer follows cPanel's protocol:
``1 <message>`` and exit status 0 when done; ``0 <message>`` and exit status 1 when
refused — bad or unexpected JSON, an account cPanel still has, a conflicting name —
and then nothing was changed.
"""
import json
import logging
import os
import sqlite3
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, TextIO

from . import config, logs
from .context import Context
from .errors import ActionError, InvalidInput
from .ops import accounts as account_ops
from .ops.caller import HOOK, admin
from .store import db

CATEGORY = "Whostmgr"
STAGE = "post"
REMOVE = "Accounts::Remove"
MODIFY = "Accounts::Modify"
MAX_INPUT = 1 << 20
CALLER = admin(HOOK)
log = logging.getLogger(__name__)


def describe(event: str, script: str) -> List[dict]:
    """What ``manage_hooks`` registers for this script (without ``--manual``)."""
    return [{"category": CATEGORY, "event": event, "stage": STAGE, "hook": script, "exectype": "script"}]


def _object(value: object, what: str) -> dict:
    if not isinstance(value, dict):
        raise InvalidInput(f"hook input: {what} must be a JSON object")
    return value


def parse(event: str, text: str) -> dict:
    """The event's ``data`` after checking the envelope says it is this event."""
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"hook input is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    payload = _object(payload, "the input")
    context = _object(payload.get("context"), '"context"')
    for key, expected in (("category", CATEGORY), ("event", event), ("stage", STAGE)):
        if context.get(key) != expected:
            raise InvalidInput(f'hook input: context.{key} is {context.get(key)!r}, expected "{expected}" '
                               "(is the hook registered for the right event?)")
    data = _object(payload.get("data"), '"data"')
    if not isinstance(data.get("user"), str):
        raise InvalidInput('hook input: data.user (the account) is missing or not a string')
    if "newuser" in data and not isinstance(data["newuser"], str):
        raise InvalidInput("hook input: data.newuser must be a string")
    return data


def _remove(ctx: Context, data: dict) -> str:
    removed = account_ops.remove_account(ctx, CALLER, data["user"])
    return (f'quarantine of "{data["user"]}" removed: {removed.freed.count} email(s), {removed.freed.bytes} '
            f"bytes, {removed.objects} Activity Monitor object(s)")


def _modify(ctx: Context, data: dict) -> str:
    old, new = data["user"], data.get("newuser", data["user"])
    if new == old:
        return f'"{old}" kept its name: nothing to do'
    renamed = account_ops.rename_account(ctx, CALLER, old, new)
    if not (renamed.quarantine or renamed.objects):
        return f'"{old}" had no quarantine or Activity Monitor objects: nothing to rename'
    return f'quarantine and Activity Monitor objects of "{old}" now belong to "{new}"'


HANDLERS: Dict[str, Callable[[Context, dict], str]] = {REMOVE: _remove, MODIFY: _modify}


def run(event: str, text: str) -> str:
    data = parse(event, text)
    ctx = Context()
    try:
        return HANDLERS[event](ctx, data)
    finally:
        ctx.close()


def main(event: str, argv: Optional[Sequence[str]] = None, stdin: Optional[TextIO] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv == ["--describe"]:
        print(json.dumps(describe(event, str(Path(sys.argv[0]).resolve()))))
        return 0
    if argv:
        return _refuse(f"unexpected arguments {' '.join(argv)!r} (only --describe; the event comes on stdin)")
    if os.geteuid() != 0:
        return _refuse("must be run as root (cPanel runs hooks as root)")
    logs.to_syslog("imunifyemail-hook")
    text = (stdin or sys.stdin).read(MAX_INPUT + 1)
    if len(text) > MAX_INPUT:
        return _refuse(f"hook input larger than {MAX_INPUT} bytes")
    try:
        message = run(event, text)
    except ActionError as exc:
        return _refuse(str(exc))
    except (config.ConfigError, db.DatabaseError, sqlite3.Error, OSError) as exc:
        return _refuse(f"{type(exc).__name__}: {exc}")
    print(f"1 {message}")
    return 0


def _refuse(message: str) -> int:
    log.warning("hook refused: %s", message)
    print(f"imunifyemail hook: error: {message}", file=sys.stderr)
    print(f"0 imunifyemail: {message}")
    return 1
