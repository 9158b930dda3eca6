"""Handing released mail back to the MTA: the command line, and one-shot re-injection.

Released mail goes back through Exim with the received-protocol marker
``imunifyemail-released``, which the router skips (it was judged already).
One message, one ``sendmail`` run; success means exit status 0. ``ie-cli``
runs it itself (as root, dropping to the Exim user); the daemon has its
spawner run the very same command.
"""
import os
import pwd
import subprocess
from typing import Any, Dict, List, Optional, Sequence

RELEASED = "imunifyemail-released"


class ReinjectError(Exception):
    """The message could not be handed over; it stays where it is."""


def command(sendmail: str, sender: str, recipients: Sequence[str], protocol: str) -> List[str]:
    # -oi: a lone "." line is data; "--" ends options so no recipient can pose as one.
    return [sendmail, "-oi", "-oMr", protocol, "-f", sender or "<>", "--", *recipients]


def message_fd(raw: bytes) -> int:
    """The message in an in-memory file for the command's stdin. Were it fed
    through a pipe, a process killed mid-write would close the pipe early and
    ``sendmail -oi`` would take EOF as the end: a truncated message sent."""
    fd = os.memfd_create("imunifyemail-message", os.MFD_CLOEXEC)
    try:
        view = memoryview(raw)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def describe_failure(code, stderr) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else str(stderr or "")
    detail = text.strip().splitlines()
    return f"exit status {code}" + (f": {detail[-1][:300]}" if detail else "")


def _as_user(user: Optional[str]) -> Dict[str, Any]:
    """Run as the Exim user when root: only root and the Exim user may set the
    received protocol, and cPanel neither re-counts nor re-attributes the Exim
    user's submissions (CPANEL.md, last section)."""
    if not user or os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise ReinjectError(f"config reinject.user: no such user {user!r}") from None
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [pw.pw_gid]}


def reinject_sync(sendmail: str, raw: bytes, sender: str, recipients: Sequence[str], protocol: str,
                  timeout: float, user: Optional[str] = None) -> None:
    """One message through one ``sendmail`` run (the CLIs' release), as ``user`` if given."""
    drop = _as_user(user)
    fd = message_fd(raw)
    try:
        proc = subprocess.run(command(sendmail, sender, recipients, protocol), stdin=fd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout, cwd="/",
                              **drop)
    except OSError as exc:
        raise ReinjectError(f"cannot run {sendmail}: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise ReinjectError(f"{sendmail} did not finish within {timeout:g}s") from None
    finally:
        os.close(fd)
    if proc.returncode != 0:
        raise ReinjectError(f"{sendmail}: {describe_failure(proc.returncode, proc.stderr)}")
