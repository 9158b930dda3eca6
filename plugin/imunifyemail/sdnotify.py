"""Telling systemd a service is ready: the units are ``Type=notify`` (sd_notify(3)'s protocol).

systemd counts ``imunifyemaild`` and ``imunifyemail-web`` started only once their main process sends
``READY=1`` to ``$NOTIFY_SOCKET``, and each sends it once its sockets are there with their final
owners and modes. So ``systemctl start|restart`` — ie-config, the RPM's scriptlets, an administrator —
returns when the sockets can be used, and fails when the service could not get that far (a bad
setting, a missing user, another daemon on the socket). Started otherwise (tests, the sandbox), the
variable is unset and nothing is sent.
"""
import logging
import os
import socket
from typing import Optional

ENV = "NOTIFY_SOCKET"

log = logging.getLogger(__name__)


def take_address() -> Optional[str]:
    """systemd's notification socket, taken out of the environment: nothing this process starts
    (gunicorn itself, its workers, the daemon's helper, sendmail) may speak for it — gunicorn's own
    READY would come before its sockets have their modes."""
    return os.environ.pop(ENV, None) or None


def ready(address: Optional[str]) -> None:
    """``READY=1`` to ``address`` (from :func:`take_address`); nothing when there is none. Should
    it fail, systemd ends the start by its timeout; the log says why."""
    if not address:
        return
    target = "\0" + address[1:] if address.startswith("@") else address   # "@": an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(target)
            sock.sendall(b"READY=1")
    except OSError as exc:
        log.warning("cannot tell systemd the service is ready (%s %s): %s", ENV, address, exc.strerror)
