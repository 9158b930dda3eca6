"""The Exim user's helper, while the daemon itself stays ``_imunifyemail``.

Two things need the Exim user (CPANEL.md, EXIM.md): released mail goes back
through ``sendmail -oMr imunifyemail-released`` as that user (only root and
the Exim user may set a received protocol, and cPanel neither re-counts nor
re-attributes its submissions), and only an Exim admin user may ask for a
delivery now (``exim -M``). So, before the daemon drops root, it forks this
spawner, which drops to the Exim user and then does exactly two things on
request over a socketpair:

* **release**: run ``<sendmail> -oi -oMr imunifyemail-released -f S -- R...``
  (the command ``ie-cli`` runs) on a message handed over as a file
  descriptor; a forked waiter reports the exit status through a pipe whose
  read end goes back at once, so the spawner is never blocked by a slow MTA;
* **retry**: run ``<sendmail> -M <ids>`` (the ids must be Exim message ids,
  checked here again).

The sendmail path is fixed when the spawner is created; addresses that look
like options are refused. It keeps no copy, reaps its children, and exits
when the daemon is gone (end of file on the socketpair).
"""
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import threading
from typing import List, Sequence

from ..core.attribution import EXIM_ID
from ..reinject import RELEASED, ReinjectError, command, describe_failure, message_fd

RETRY = b"retry "
RELEASE = b"release "
READY = b"ready"
MAX_REQUEST = 65536
MAX_RETRY_IDS = 100
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
# Signals the spawner ignores: its children get them back at their default.
_RESET = (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE, signal.SIGHUP)


class SpawnError(Exception):
    pass


# -- the spawner process (runs as the Exim user) ------------------------------

def _drop_to(user: str) -> None:
    pw = pwd.getpwnam(user)
    os.setgroups([pw.pw_gid])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    if os.getuid() != pw.pw_uid or os.geteuid() != pw.pw_uid:
        raise SpawnError(f"could not become {user}")


def _retry(argv: Sequence[str], request: bytes) -> bytes:
    ids = request[len(RETRY):].decode("ascii", "replace").split()
    if not ids or len(ids) > MAX_RETRY_IDS or not all(EXIM_ID.fullmatch(i) for i in ids):
        return b"error: bad retry request"
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        os.posix_spawn(argv[0], [argv[0], "-M", *ids], _ENV, setsigdef=_RESET, setsid=True, file_actions=[
            (os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
            (os.POSIX_SPAWN_DUP2, devnull, 2)])
    except OSError as exc:
        return f"error: cannot run {argv[0]}: {exc.strerror}".encode()
    finally:
        os.close(devnull)
    return b"ok"


def _plain_address(value) -> bool:
    return isinstance(value, str) and len(value) <= 512 and not value.startswith("-") \
        and not any(c.isspace() or ord(c) < 32 for c in value)


def _release(conn: socket.socket, argv: Sequence[str], request: bytes, fds: List[int]) -> None:
    """Fork a waiter that runs the one-shot release command on the message in ``fds[0]``
    and writes its outcome to a pipe; the pipe's read end goes back to the daemon at once."""
    try:
        job = json.loads(request[len(RELEASE):])
        sender, recipients, timeout = job["sender"], job["recipients"], float(job["timeout"])
        ok = (len(fds) == 1 and (sender == "" or _plain_address(sender)) and isinstance(recipients, list)
              and 0 < len(recipients) <= 10000 and all(_plain_address(r) and r for r in recipients)
              and 0 < timeout <= 3600)
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        conn.send(b"error: bad release request")
        return
    read_end, write_end = os.pipe()
    if os.fork() == 0:   # the waiter
        os.close(read_end)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        outcome = _run_release(argv[0], fds[0], sender, recipients, timeout)
        os.write(write_end, json.dumps(outcome).encode())
        os._exit(0)
    os.close(write_end)
    try:
        socket.send_fds(conn, [b"ok"], [read_end])
    finally:
        os.close(read_end)


def _run_release(sendmail: str, message_fd: int, sender: str, recipients: Sequence[str], timeout: float) -> dict:
    try:
        proc = subprocess.run(command(sendmail, sender, recipients, RELEASED), stdin=message_fd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout, cwd="/", env=_ENV)
    except OSError as exc:
        return {"error": f"cannot run {sendmail}: {exc.strerror}"}
    except subprocess.TimeoutExpired:
        return {"error": f"{sendmail} did not finish within {timeout:g}s"}
    return {"status": proc.returncode, "stderr": proc.stderr.decode("utf-8", "replace")[-2000:]}


def _serve(conn: socket.socket, argv: Sequence[str]) -> None:
    while True:
        try:
            request, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 1)
        except InterruptedError:
            continue
        if not request:   # the daemon is gone
            return
        try:
            if request.startswith(RELEASE):
                _release(conn, argv, request, fds)
                continue
        finally:
            for fd in fds:
                os.close(fd)
        if request.startswith(RETRY):
            conn.send(_retry(argv, request))
        else:
            conn.send(b"error: unknown request")


def _child(conn: socket.socket, user: str, argv: Sequence[str]) -> None:
    keep = {0, 1, 2, conn.fileno()}
    for name in os.listdir("/proc/self/fd"):   # never hold the filter socket, the database, ...
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)   # leave when the daemon leaves, not on its signals
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # the kernel reaps our children
    _drop_to(user)
    conn.send(READY)
    _serve(conn, argv)


# -- the daemon side -----------------------------------------------------------

class Spawner:
    def __init__(self, conn: socket.socket, pid: int, user: str, sendmail: str = "sendmail"):
        self.conn = conn
        self.pid = pid
        self.user = user
        self.sendmail = sendmail
        self._lock = threading.Lock()

    @classmethod
    def start(cls, user: str, sendmail: str) -> "Spawner":
        """Fork the spawner (as root, before the daemon drops privileges)."""
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise SpawnError(f"config reinject.user: no such user {user!r}") from None
        if not os.path.isabs(sendmail):
            raise SpawnError(f"config reinject.sendmail: {sendmail!r} is not an absolute path")
        argv = [sendmail]
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                ours.close()
                _child(theirs, user, list(argv))
            except BaseException as exc:
                print(f"imunifyemaild spawner: {exc}", file=sys.stderr, flush=True)
                code = 1
            os._exit(code)
        theirs.close()
        spawner = cls(ours, pid, user, argv[0])
        ours.settimeout(60)
        try:
            ready = ours.recv(64)
        except OSError:
            ready = b""
        ours.settimeout(None)
        if ready != READY:   # it could not become the Exim user: say so at start, not per message
            spawner.close()
            raise SpawnError(f"re-inject spawner could not start as {user!r} (see the log above)")
        return spawner

    def release(self, raw: bytes, sender: str, recipients: Sequence[str], timeout: float) -> None:
        """Blocking: the one-shot release command, run as the Exim user, on ``raw``
        (the same command ``ie-cli`` runs); ReinjectError unless it exited 0."""
        fd = message_fd(raw)
        try:
            request = RELEASE + json.dumps({"sender": sender, "recipients": list(recipients),
                                            "timeout": timeout}).encode()
            with self._lock:
                try:
                    socket.send_fds(self.conn, [request], [fd])
                    answer, fds, _, _ = socket.recv_fds(self.conn, 256, 1)
                except OSError as exc:
                    raise ReinjectError(f"re-inject spawner unreachable ({exc.strerror or exc})") from None
        finally:
            os.close(fd)
        if answer != b"ok" or len(fds) != 1:
            for extra in fds:
                os.close(extra)
            raise ReinjectError(f"re-inject spawner: {answer.decode('utf-8', 'replace') or 'it exited'}")
        with os.fdopen(fds[0], "rb") as pipe:   # the waiter writes the outcome when sendmail is done
            data = pipe.read()
        try:
            outcome = json.loads(data)
        except ValueError:
            raise ReinjectError("the release command's outcome was lost") from None
        if "error" in outcome:
            raise ReinjectError(outcome["error"])
        if outcome.get("status") != 0:
            raise ReinjectError(f"{self.sendmail}: {describe_failure(outcome.get('status'), outcome.get('stderr', ''))}")

    def retry(self, exim_ids: Sequence[str]) -> None:
        """Blocking: have Exim deliver these deferred messages now (as the Exim user)."""
        with self._lock:
            try:
                self.conn.send(RETRY + " ".join(exim_ids).encode("ascii"))
                answer = self.conn.recv(256)
            except OSError as exc:
                raise SpawnError(f"re-inject spawner unreachable ({exc.strerror or exc})") from None
        if answer != b"ok":
            raise SpawnError(f"re-inject spawner: {answer.decode('utf-8', 'replace') or 'it exited'}")

    def close(self) -> None:
        """The spawner sees end of file and exits; reap it."""
        self.conn.close()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
