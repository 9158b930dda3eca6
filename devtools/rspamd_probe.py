"""What a local user can reach of Rspamd: every address it can find, each harmful request tried.

Run as the user in question (``setpriv --reuid=demo1 ... python -m devtools.rspamd_probe``); prints
JSON ``{address: {request: outcome}}``, an outcome being ``refused <errno name>`` or ``answered <HTTP
status>``. The addresses: Rspamd's stock ports (11332-11335) on 127.0.0.1 and ::1, every TCP listener
of ``_rspamd`` in ``/proc/net/tcp*`` (which any user may read) and every listening unix socket whose
path names Rspamd in ``/proc/net/unix``; or only those given with ``--address``.

    python -m devtools.rspamd_probe [--address unix:/path | tcp:127.0.0.1:11334 ...] [--request 'GET /history']
"""
import argparse
import errno
import json
import pwd
import socket
import sys
from typing import Dict, List, Tuple

GTUBE = (b"From: probe@localhost\r\nTo: probe@localhost\r\nSubject: probe\r\n\r\n"
         b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n")
# What an attacker asks: another account's history, poisoning Bayes, moving the thresholds (the stock
# ones here, should it ever get through), a spam oracle.
REQUESTS: Dict[str, bytes] = {
    "GET /history": b"",
    "POST /learnspam": GTUBE,
    "POST /saveactions": b"[15, 6, 4]",
    "POST /checkv2": GTUBE,
}
STOCK_PORTS = range(11332, 11336)
LISTEN = "0A"                 # TCP_LISTEN in /proc/net/tcp
ACCEPTING = 0x00010000        # __SO_ACCEPTCON in /proc/net/unix


def _tcp_listeners(uid: int) -> List[str]:
    found = []
    for table, family in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 6)):
        try:
            rows = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] != LISTEN or int(fields[7]) != uid:
                continue
            port = int(fields[1].rsplit(":", 1)[1], 16)
            found.append(f"tcp:127.0.0.1:{port}" if family == 4 else f"tcp:[::1]:{port}")
    return found


def _unix_listeners() -> List[str]:
    found = []
    for row in open("/proc/net/unix").read().splitlines()[1:]:
        fields = row.split()
        if len(fields) >= 8 and int(fields[3], 16) & ACCEPTING and "rspamd" in fields[7]:
            found.append(f"unix:{fields[7]}")
    return found


def candidates() -> List[str]:
    out = [f"tcp:127.0.0.1:{p}" for p in STOCK_PORTS] + [f"tcp:[::1]:{p}" for p in STOCK_PORTS]
    try:
        out += _tcp_listeners(pwd.getpwnam("_rspamd").pw_uid)
    except KeyError:
        pass
    out += _unix_listeners()
    return sorted(set(out))


def _connect(address: str) -> socket.socket:
    if address.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: object = address[len("unix:"):]
    else:
        host, port = address[len("tcp:"):].rsplit(":", 1)
        v6 = host.startswith("[")
        s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
        target = (host.strip("[]"), int(port))
    s.settimeout(10)
    try:
        s.connect(target)
    except OSError:
        s.close()
        raise
    return s


def attempt(address: str, request: str, body: bytes) -> str:
    try:
        s = _connect(address)
    except OSError as exc:
        return f"refused {errno.errorcode.get(exc.errno or 0, str(exc))}"
    with s:
        method, path = request.split(" ", 1)
        s.sendall(f"{method} {path} HTTP/1.0\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        status: Tuple[str, ...] = tuple(s.recv(200).split(b"\r\n", 1)[0].decode("latin-1").split(" "))
        return f"answered {status[1] if len(status) > 1 else '?'}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", action="append", help="only this address (unix:/path or tcp:host:port)")
    parser.add_argument("--request", action="append", choices=sorted(REQUESTS), help="only this request")
    args = parser.parse_args(argv)
    requests = args.request or list(REQUESTS)
    result = {address: {r: attempt(address, r, REQUESTS[r]) for r in requests}
              for address in (args.address or candidates())}
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
