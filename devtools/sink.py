"""The sandbox's "Internet": an SMTP server on loopback that keeps every message it receives.

Each message becomes one ``.eml`` file in the sink directory, named
``<arrival time in ns>-<n>.eml``, with the envelope prepended as
``X-Sink-Mail-From:`` and ``X-Sink-Rcpt-To:`` (one per recipient). Files are
written under a dot-name and renamed, so a reader never sees half a message.

    python -m devtools.sink --port 2526 --dir .sandbox/sink
"""
import argparse
import asyncio
import itertools
import os
import signal
import sys
import time
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Dict, List, NamedTuple

from aiosmtpd.smtp import SMTP


class SinkHandler:
    def __init__(self, directory: Path):
        self.directory = directory
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope) -> str:
        head = f"X-Sink-Mail-From: <{envelope.mail_from or ''}>\r\n".encode()
        head += b"".join(f"X-Sink-Rcpt-To: <{r}>\r\n".encode() for r in envelope.rcpt_tos)
        name = f"{time.time_ns()}-{next(self.counter)}.eml"
        tmp = self.directory / f".{name}"
        tmp.write_bytes(head + (envelope.original_content or b""))
        os.rename(tmp, self.directory / name)
        return "250 2.0.0 Ok: kept by the sink"


async def serve(port: int, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    handler = SinkHandler(directory)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.invalid", ident="imunifyemail sandbox sink", decode_data=False,
                     data_size_limit=None, enable_SMTPUTF8=True),
        host="127.0.0.1", port=port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"sink listening on 127.0.0.1:{port}, writing to {directory}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


class SunkMessage(NamedTuple):
    path: Path
    arrived_ns: int
    mail_from: str
    rcpt_to: List[str]
    raw: bytes

    @property
    def headers(self):
        return BytesHeaderParser(policy=compat32).parsebytes(self.raw)

    def header(self, name: str) -> str:
        value = self.headers.get(name)
        return "" if value is None else " ".join(str(value).split())

    def all(self, name: str) -> List[str]:
        return [" ".join(str(v).split()) for v in self.headers.get_all(name) or []]


def read(directory: Path) -> List[SunkMessage]:
    """Every message in the sink, oldest first."""
    out = []
    try:
        entries = sorted(p for p in Path(directory).iterdir() if p.suffix == ".eml" and not p.name.startswith("."))
    except FileNotFoundError:
        return []
    for path in entries:
        raw = path.read_bytes()
        head: Dict[str, List[str]] = {"from": [], "to": []}
        for line in raw.split(b"\r\n", 64):
            if line.startswith(b"X-Sink-Mail-From: "):
                head["from"].append(line[18:].decode().strip("<>"))
            elif line.startswith(b"X-Sink-Rcpt-To: "):
                head["to"].append(line[16:].decode().strip("<>"))
            else:
                break
        out.append(SunkMessage(path, int(path.name.split("-")[0]), (head["from"] or [""])[0], head["to"], raw))
    return sorted(out, key=lambda m: (m.arrived_ns, m.path.name))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.sink", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.dir.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
