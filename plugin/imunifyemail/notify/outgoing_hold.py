"""cPanel's own hold of outgoing mail follows containment, so WHM's account list shows a contained
account as held (CPANEL.md "cPanel's own hold and suspend of outgoing mail"): ``whmapi1
hold_outgoing_email user=NAME`` while it is contained, ``release_outgoing_email`` once its containment
ended (restored with ``ie-cli accounts edit --state active`` or in WHM).

Root alone may run ``whmapi1``, and the daemon that contains stays ``_imunifyemail``: this step of the
root notification job (every minute) reads which accounts are contained from the store and does the
rest; the daemon asks root for nothing. It releases only the holds it placed, recorded in a file of
root's (``paths.CPANEL_HOLDS``, 0600): the daemon's user cannot have root release a hold of the
administrator's. A ``whmapi1`` that fails is logged and audited (once until the reason changes) and
tried again at the next run; containment and mail do not wait for it.
"""
import json
import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

from .. import atomic, cpanel, paths
from ..context import Context
from ..core import containment
from ..ops import audit
from ..ops import caller as callers
from ..store.accounts import contained_accounts

log = logging.getLogger(__name__)

HOLD, RELEASE = "hold_outgoing_email", "release_outgoing_email"
TIMEOUT = 60
CALLER = callers.admin(callers.CLI, "imunifyemail-notify")   # the root job, in the audit trail
_ENV = {"PATH": "/usr/local/cpanel/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}


class WhmApiError(Exception):
    pass


class RecordError(Exception):
    """The record of our holds cannot be read: nothing is held or released until it can."""


def whmapi1(function: str, user: str) -> None:
    """``whmapi1 --output=json FUNCTION user=USER``; WhmApiError unless its answer says ``result: 1``
    (whmapi1 exits 0 on a refusal: the answer's ``metadata`` tells)."""
    exe = paths.system_path(paths.WHMAPI1)
    try:
        proc = subprocess.run([str(exe), "--output=json", function, f"user={user}"], capture_output=True,
                              text=True, errors="replace", timeout=TIMEOUT, cwd="/", env=_ENV)
    except OSError as exc:
        raise WhmApiError(f"cannot run {exe}: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise WhmApiError(f"{exe} {function} did not finish within {TIMEOUT}s") from None
    try:
        meta = json.loads(proc.stdout)["metadata"]
        result, reason = meta["result"], str(meta.get("reason") or "")
    except (ValueError, KeyError, TypeError):
        tail = (proc.stderr.strip() or proc.stdout.strip())[-300:]
        raise WhmApiError(f"{exe} {function} exited {proc.returncode} without an answer: {tail or 'no output'}") \
            from None
    if result != 1:
        raise WhmApiError(f"{function} refused: {reason or 'no reason given'}")


@dataclass
class Report:
    held: List[str] = field(default_factory=list)
    released: List[str] = field(default_factory=list)
    failed: List[Tuple[str, str]] = field(default_factory=list)   # (account, why)


def _load(path: Path) -> Tuple[Dict[str, int], Dict[str, str]]:
    """(the holds placed: account -> when, the failures last said: account -> why)."""
    try:
        data = json.loads(path.read_text())
        return dict(data.get("held", {})), dict(data.get("failing", {}))
    except FileNotFoundError:
        return {}, {}
    except (OSError, ValueError, AttributeError) as exc:   # never guessed: said, and nothing is released
        raise RecordError(f"cannot read {path}: {exc}") from None


def _save(path: Path, held: Dict[str, int], failing: Dict[str, str]) -> None:
    atomic.write_atomically(path, json.dumps({"held": held, "failing": failing}, sort_keys=True).encode(), 0o600)


def sync(ctx: Context) -> Report:
    """Hold the contained accounts the cPanel way and release the holds whose containment ended."""
    report = Report()
    path = paths.system_path(paths.CPANEL_HOLDS)
    try:
        held, failing = _load(path)
    except RecordError as exc:
        log.error("cPanel's hold of contained accounts: %s", exc)
        report.failed.append(("*", str(exc)))
        return report
    before = (dict(held), dict(failing))
    to_hold, to_release = containment.cpanel_holds(contained_accounts(ctx.conn), held)
    now = int(ctx.now())
    for name in to_hold:
        if cpanel.is_cpanel_account(name) and _called(ctx, HOLD, name, failing, report):
            held[name] = now
    for name in to_release:
        # an account removed from cPanel: its hold went with it
        if not cpanel.is_cpanel_account(name) or _called(ctx, RELEASE, name, failing, report):
            held.pop(name)
    for name in [n for n in failing if n not in held and n not in to_hold]:
        failing.pop(name)   # a hold that failed, for a containment that ended meanwhile (or a removed account)
    if (held, failing) != before:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save(path, held, failing)
    return report


def _called(ctx: Context, function: str, name: str, failing: Dict[str, str], report: Report) -> bool:
    action = "cpanel hold" if function == HOLD else "cpanel release"
    try:
        whmapi1(function, name)
    except WhmApiError as exc:
        report.failed.append((name, str(exc)))
        why = f"{function}: {exc}"
        if failing.get(name) != why:   # once until the reason changes, not every minute
            log.warning("account %s: %s (tried again every run)", name, why)
            audit.record(ctx, CALLER, action, account=name, detail={"whmapi1": function}, outcome=str(exc))
        failing[name] = why
        return False
    failing.pop(name, None)
    (report.held if function == HOLD else report.released).append(name)
    audit.record(ctx, CALLER, action, account=name, detail={"whmapi1": function})
    return True
