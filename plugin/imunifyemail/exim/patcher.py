"""Put our blocks into (or take them out of) ``/etc/exim.conf.local`` and make Exim use them.

One operation, all or nothing: the new ``exim.conf.local`` is written, cPanel's
``buildeximconf`` regenerates and validates ``/etc/exim.conf``; if it refuses,
the previous ``exim.conf.local`` is put back byte for byte, the rebuild is run
again and the error names the reason. Only then is ``restartsrv_exim`` run.
Nothing is rebuilt when the file and the active config already say what was
asked (both commands are idempotent).

A lock serialises us with the ``postbuildeximconf`` re-apply hook; the hook run
by our own rebuild sees ``IMUNIFYEMAIL_EXIM_LOCKED`` and does nothing.
"""
import contextlib
import fcntl
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from .. import admin_files, config, paths
from ..errors import ActionError
from . import localconf, snippets

LOCK_ENV = "IMUNIFYEMAIL_EXIM_LOCKED"
_ACTIVE_ROUTER = re.compile(rf"^{snippets.ROUTER_NAME}:\s*$", re.MULTILINE)
_ACTIVE_INCOMING = re.compile(rf"^{snippets.INCOMING_ROUTER_NAME}:\s*$", re.MULTILINE)


class PatchError(ActionError):
    """Exim's configuration could not be changed; says what was restored."""


@dataclass(frozen=True)
class Outcome:
    changed: bool    # exim.conf.local was rewritten
    rebuilt: bool    # buildeximconf and restartsrv_exim ran


@contextlib.contextmanager
def locked() -> Iterator[None]:
    lock = paths.system_path(paths.EXIM_LOCK)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def read_local() -> Optional[str]:
    return admin_files.read(paths.system_path(paths.EXIM_CONF_LOCAL))


def write_local(text: Optional[str]) -> None:
    """Atomically; keeps the file's owner and mode (new file: root, 0644). ``None`` removes it."""
    target = paths.system_path(paths.EXIM_CONF_LOCAL)
    if text is None:
        admin_files.delete(target)
    else:
        admin_files.replace(target, text)


def _active(router: "re.Pattern[str]") -> bool:
    try:
        text = paths.system_path(paths.EXIM_CONF).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(router.search(text))


def filter_active() -> bool:
    """Whether ``/etc/exim.conf`` (what Exim runs) routes to the filter."""
    return _active(_ACTIVE_ROUTER)


def incoming_wanted() -> bool:
    """Whether the administrator turned the incoming filter on (``ie-config enable-incoming``): every
    apply (enable, reapply after a WHM rebuild, upgrade) then puts its block in too."""
    return paths.system_path(paths.INCOMING_ON).exists()


def set_incoming_wanted(on: bool) -> None:
    flag = paths.system_path(paths.INCOMING_ON)
    if on:
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.write_text("on\n")
    elif flag.exists():
        flag.unlink()


def incoming_active() -> bool:
    """Whether ``/etc/exim.conf`` routes local recipients to the incoming filter."""
    return _active(_ACTIVE_INCOMING)


def filter_configured(text: Optional[str] = None) -> bool:
    text = read_local() if text is None else text
    return text is not None and set(localconf.blocks_present(text)) >= set(snippets.BLOCKS)


def preflight() -> None:
    """Before anything is changed: cPanel's programs are there."""
    for path in (paths.BUILDEXIMCONF, paths.RESTARTSRV_EXIM):
        exe = paths.system_path(path)
        if not os.access(exe, os.X_OK):
            raise PatchError(f"{exe} not found: is this a cPanel server?")


def _run(path: str, *args: str) -> subprocess.CompletedProcess:
    exe = paths.system_path(path)
    if not os.access(exe, os.X_OK):
        raise PatchError(f"{exe} not found: is this a cPanel server?")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, errors="replace",
                          env={**os.environ, LOCK_ENV: "1"})


def _reason(proc: subprocess.CompletedProcess) -> str:
    lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
    return lines[-1][:300] if lines else f"exit status {proc.returncode}"


def _rebuild() -> Optional[str]:
    """Run buildeximconf; the reason when it failed."""
    proc = _run(paths.BUILDEXIMCONF)
    return None if proc.returncode == 0 else _reason(proc)


def apply(cfg: config.Config, enable: bool) -> Outcome:
    """Make Exim route outbound mail to the filter (``enable``) or not."""
    incoming = enable and incoming_wanted()
    blocks = snippets.render(cfg, incoming) if enable else {}
    with locked():
        before = read_local()
        base = before if before is not None else (localconf.SKELETON if enable else None)
        try:
            admin = localconf.strip(base) if base is not None else None
        except localconf.LocalConfError as exc:
            raise PatchError(f"{paths.system_path(paths.EXIM_CONF_LOCAL)}: {exc}") from None
        after = localconf.insert(admin, blocks) if enable else admin
        changed = after != before
        if not changed and filter_active() == enable and incoming_active() == incoming:
            return Outcome(changed=False, rebuilt=False)
        if changed:
            write_local(after)
        failure = _rebuild()
        if failure is None and (filter_active() != enable or incoming_active() != incoming):
            failure = f"{paths.system_path(paths.EXIM_CONF)} does not show the change after the rebuild"
        if failure is not None:
            if changed:
                write_local(before)
                again = _rebuild()
                restored = (f"{paths.system_path(paths.EXIM_CONF_LOCAL)} restored"
                            + ("" if again is None else f", but the rebuild after it failed too: {again}"))
            else:
                restored = "nothing was changed"
            raise PatchError(f"buildeximconf rejected the new Exim configuration ({failure}); {restored}")
        restart = _run(paths.RESTARTSRV_EXIM)
        if restart.returncode != 0:
            raise PatchError(f"Exim's configuration was rebuilt but restartsrv_exim failed: {_reason(restart)}")
        return Outcome(changed=changed, rebuilt=True)


def local_path() -> Path:
    return paths.system_path(paths.EXIM_CONF_LOCAL)
