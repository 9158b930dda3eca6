"""One exchange over each of the daemon's sockets, as its clients make it: a connection, a
request, the answer, closed. The formats are :mod:`.scan`'s and :mod:`.control`'s."""
import socket
from typing import Any, Dict

from ..errors import Unavailable
from . import control, scan


def ask(socket_path: str, exim_id: str, rcpt: str, timeout: float, verb: str = "SCAN") -> Dict[str, str]:
    """What Exim's router asks for one address, as it asks it: the answer's fields (``verdict``
    first; none if the daemon closed without answering). OSError when the socket does not answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(socket_path)
        s.sendall(scan.build_request(exim_id, rcpt, verb))
        chunks = []
        while True:   # the answer has no newline: it ends when the daemon closes
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return scan.parse_answer(b"".join(chunks))


def call(socket_path: str, request: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    """One JSON request, its answer; :class:`Unavailable` when the daemon cannot be asked or says nothing."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(socket_path)
            s.sendall(control.build_request(request))
            data = b""
            while not data.endswith(b"\n") and len(data) < control.MAX_LINE:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise Unavailable(f"the filter daemon does not answer ({exc.strerror or exc}): "
                          "is imunifyemaild running?") from None
    return control.parse_answer(data)
