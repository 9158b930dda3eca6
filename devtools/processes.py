"""Stopping a process the harness started: asked (SIGTERM) first, killed if it does not go in time."""
import os
import signal
import subprocess


def stop(proc: subprocess.Popen, timeout: float = 20.0, group: bool = False) -> None:
    """End ``proc`` (and, with ``group``, its whole process group: the session it was started in) and
    reap it; nothing when it has exited already."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()
