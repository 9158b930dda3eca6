"""Our systemd units, through ``systemctl`` (resolved under ``$IMUNIFYEMAIL_ROOT``: tests and the
sandbox put a recording stand-in there).

Rspamd is not ours to stop: it is only checked for reachability (``ie-config status``).
"""
import os
import subprocess
from typing import Sequence

from .. import paths
from ..errors import ActionError

DAEMON_UNIT = "imunifyemaild"
WEB_UNIT = "imunifyemail-web"
NOTIFY_UNIT = "imunifyemail-notify.timer"   # ie-config notify, every minute
UNITS = (DAEMON_UNIT, WEB_UNIT, NOTIFY_UNIT)


class ServiceError(ActionError):
    pass


def systemctl(*args: str) -> subprocess.CompletedProcess:
    exe = paths.system_path(paths.SYSTEMCTL)
    try:
        return subprocess.run([str(exe), *args], capture_output=True, text=True, errors="replace", timeout=120)
    except OSError as exc:
        raise ServiceError(f"cannot run {exe}: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise ServiceError(f"{exe} {' '.join(args)} did not finish in 120 s") from None


def _change(verb: str, units: Sequence[str]) -> None:
    proc = systemctl(verb, "--now", *units)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise ServiceError(f"systemctl {verb} --now {' '.join(units)} failed"
                           + (f": {detail[-1]}" if detail else f" (exit status {proc.returncode})"))


def start(units: Sequence[str] = UNITS) -> None:
    _change("enable", units)


def stop(units: Sequence[str] = UNITS) -> None:
    _change("disable", units)


def restart(units: Sequence[str] = UNITS) -> None:
    proc = systemctl("restart", *units)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise ServiceError(f"systemctl restart {' '.join(units)} failed"
                           + (f": {detail[-1]}" if detail else f" (exit status {proc.returncode})"))


def state(unit: str) -> str:
    """``active``, ``inactive``, ``failed``... as systemctl says; ``unknown`` if it cannot tell."""
    if not os.access(paths.system_path(paths.SYSTEMCTL), os.X_OK):
        return "unknown"
    proc = systemctl("is-active", unit)
    return proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else "unknown"
