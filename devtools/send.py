"""Send a sample message to the sandbox's filter daemon over LMTP.

    .venv/bin/python -m devtools.send ham|gtube|exe|zip [--from ADDR] [--to ADDR ...]
"""
import argparse
import os
import sys

from devtools import lmtp_client
from devtools.samples import SAMPLES

DEFAULT_SOCKET = ".sandbox/root/var/run/imunifyemail/filter.sock"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.send", description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(SAMPLES))
    parser.add_argument("--from", dest="sender", default="alice@demo1.test")
    parser.add_argument("--to", dest="recipients", action="append")
    parser.add_argument("--socket", default=os.environ.get("IE_FILTER_SOCKET", DEFAULT_SOCKET))
    args = parser.parse_args(argv)
    rcpts = args.recipients or ["bob@remote.example"]
    raw = SAMPLES[args.kind](sender=args.sender, to=rcpts)
    for rcpt, (code, text) in zip(rcpts, lmtp_client.send(args.socket, args.sender, rcpts, raw)):
        print(f"{rcpt}: {code} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
