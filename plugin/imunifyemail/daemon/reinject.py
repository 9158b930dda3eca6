"""Hand passed or released mail back to Exim through a sendmail-compatible command.

Success means the command exited 0: only then is the message acknowledged
(or removed from the quarantine). The received-protocol marker tells the
Exim router not to scan the message again.
"""
import asyncio
import logging
import os
import subprocess
from typing import List, Sequence

log = logging.getLogger(__name__)

SCANNED = "imunifyemail-scanned"
RELEASED = "imunifyemail-released"


class ReinjectError(Exception):
    pass


def command(sendmail: str, sender: str, recipients: Sequence[str], protocol: str) -> List[str]:
    # -oi: a lone "." line is data; "--" ends options so no recipient can pose as one.
    return [sendmail, "-oi", "-oMr", protocol, "-f", sender or "<>", "--", *recipients]


def _message_fd(raw: bytes) -> int:
    """The message in an in-memory file for the command's stdin. Were it fed
    through a pipe, a daemon killed mid-write would close the pipe early and
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


def _describe(code: int, stderr: bytes) -> str:
    detail = stderr.decode("utf-8", "replace").strip().splitlines()
    return f"exit status {code}" + (f": {detail[-1][:300]}" if detail else "")


async def reinject(sendmail: str, raw: bytes, sender: str, recipients: Sequence[str], protocol: str,
                   timeout: float) -> None:
    argv = command(sendmail, sender, recipients, protocol)
    fd = _message_fd(raw)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=fd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise ReinjectError(f"cannot run {sendmail}: {exc.strerror}") from None
    finally:
        os.close(fd)
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise ReinjectError(f"{sendmail} did not finish within {timeout:g}s") from None
    if proc.returncode != 0:
        raise ReinjectError(f"{sendmail}: {_describe(proc.returncode, stderr)}")


def reinject_sync(sendmail: str, raw: bytes, sender: str, recipients: Sequence[str], protocol: str,
                  timeout: float) -> None:
    """The same, for the CLIs (release)."""
    fd = _message_fd(raw)
    try:
        proc = subprocess.run(command(sendmail, sender, recipients, protocol), stdin=fd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
    except OSError as exc:
        raise ReinjectError(f"cannot run {sendmail}: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise ReinjectError(f"{sendmail} did not finish within {timeout:g}s") from None
    finally:
        os.close(fd)
    if proc.returncode != 0:
        raise ReinjectError(f"{sendmail}: {_describe(proc.returncode, proc.stderr)}")
