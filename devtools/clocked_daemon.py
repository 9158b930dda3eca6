"""imunifyemaild with a clock the test moves: for the system tests of time windows (sender limits,
automatic release, containment) on the real mail path, without sleeping an hour.

Test-only (``devtools`` is not part of the package): the product's daemon has no option that moves
its clock. This wrapper runs the real :func:`imunifyemail.daemon.main.main` — root, spawner,
privilege drop, everything — with a clock that is the system's plus an offset in seconds read from
a file the test writes (``python -m devtools.clocked_daemon OFFSET_FILE``), and a quicker step of
automatic release. The file must stay readable by the daemon's user.
"""
import os
import sys
import time
from pathlib import Path

from imunifyemail.daemon import main as daemon_main

AUTO_RELEASE_EVERY = 0.5


class FileClock:
    """``time.time()`` plus the offset in the file, re-read when the file changes."""

    def __init__(self, path: Path):
        self.path = path
        self._stamp = None
        self._offset = 0.0

    def __call__(self) -> float:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp != self._stamp:
                self._offset = float(self.path.read_text().strip() or 0)
                self._stamp = stamp
        except (OSError, ValueError):
            pass   # being rewritten: the offset read last
        return time.time() + self._offset


def set_offset(path: Path, seconds: float) -> None:
    """The test's side: written whole, then renamed, so the daemon never reads half a number."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{seconds}\n")
    tmp.chmod(0o644)
    os.replace(tmp, path)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        print("usage: python -m devtools.clocked_daemon OFFSET_FILE", file=sys.stderr)
        return 2
    return daemon_main.main([], clock=FileClock(Path(args[0])), auto_release_every=AUTO_RELEASE_EVERY)


if __name__ == "__main__":
    sys.exit(main())
