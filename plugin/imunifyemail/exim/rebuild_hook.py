"""The re-apply point: ``/usr/local/cpanel/scripts/postbuildeximconf``.

cPanel fires no hook when Exim's configuration is rebuilt, but
``buildeximconf`` runs this script after every rebuild (CPANEL.md). A WHM
reset can delete ``exim.conf.local``, taking our blocks with it; the script
runs ``ie-config reapply``, which puts them back and rebuilds once more.

An administrator's own ``postbuildeximconf`` is never replaced: it is moved
to ``postbuildeximconf.imunifyemail-chained`` and our script runs it first,
with the same arguments, and keeps its exit status. ``uninstall`` moves it
back, so after ``ie-config disable`` the file is the administrator's again.
"""
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Optional

from .. import paths
from ..errors import ActionError

MARK = "# imunifyemail postbuildeximconf hook"
CHAINED_SUFFIX = ".imunifyemail-chained"


def hook_path() -> Path:
    return paths.system_path(paths.POSTBUILDEXIMCONF)


def chained_path() -> Path:
    return Path(str(hook_path()) + CHAINED_SUFFIX)


def is_ours(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return MARK.encode() in fh.read(4096)
    except FileNotFoundError:
        return False


def script(command: str) -> str:
    chained = shlex.quote(str(chained_path()))
    env = ""
    if os.environ.get(paths.ROOT_ENV):
        env = f"{paths.ROOT_ENV}={shlex.quote(os.environ[paths.ROOT_ENV])} "
    return f"""#!/bin/sh
{MARK} (installed by `ie-config enable`, removed by `ie-config disable`)
# Puts imunifyemail's blocks back into /etc/exim.conf.local after a rebuild that lost them.
# The administrator's own hook (if any) runs first and its exit status is kept.
status=0
if [ -x {chained} ]; then
    {chained} "$@"
    status=$?
fi
if ! {env}{command} reapply "$@"; then
    [ "$status" -eq 0 ] && status=1
fi
exit "$status"
"""


def default_command() -> str:
    return f"{shlex.quote(sys.executable)} -m imunifyemail.cli.ie_config"


def _write_executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".postbuildeximconf.", dir=str(path.parent))
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o755)
    os.rename(tmp, path)


class HookError(ActionError):
    pass


def check_installable() -> None:
    """Before anything is changed: an earlier chained hook must not be overwritten."""
    path = hook_path()
    if path.exists() and not is_ours(path) and chained_path().exists():
        raise HookError(f"{chained_path()} exists already: move it away or merge it into {path} by hand")


def install(command: Optional[str] = None) -> None:
    check_installable()
    path = hook_path()
    if path.exists() and not is_ours(path):
        os.rename(path, chained_path())   # the administrator's hook, kept as it is and chained
    _write_executable(path, script(command or default_command()))


def uninstall() -> None:
    path = hook_path()
    if not is_ours(path):
        return
    if chained_path().exists():
        os.rename(chained_path(), path)
    else:
        path.unlink()


def installed() -> bool:
    return is_ours(hook_path())
