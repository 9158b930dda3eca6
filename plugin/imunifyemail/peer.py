"""Who is at the other end of a unix socket: the kernel says (SO_PEERCRED), the client cannot lie."""
import socket
import struct
from typing import Tuple


def peer_credentials(sock: socket.socket) -> Tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a unix socket."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", raw)
