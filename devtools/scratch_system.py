"""A copy-on-write view of this machine, to install the RPM for real without changing the machine.

A private mount namespace (plus a network namespace with loopback only) in which ``/etc``,
``/opt``, ``/usr``, ``/var`` and ``/run`` are overlayfs mounts over the host's own directories:
whatever runs inside — ``rpm``, the package's scriptlets, ``useradd``, the product — sees the
machine as it is and writes only into the upper directories under ``base``. Those upper
directories are also the exact list of what changed (:meth:`ScratchSystem.changes`).

Inside, ``rpm`` keeps its database at EL's path, ``/var/lib/rpm`` (overlaid too).
"""
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Dict, Optional, Sequence

from devtools.namespace import Namespace

OVERLAID = ("etc", "opt", "usr", "var", "run")
RPM_DB = "/var/lib/rpm"
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}


class ScratchSystem:
    def __init__(self, base: Path):
        self.base = Path(base)
        self.ns = Namespace(net=True)

    def start(self) -> "ScratchSystem":
        self.ns.start()
        try:
            for name in OVERLAID:
                upper, work = self.base / "upper" / name, self.base / "work" / name
                upper.mkdir(parents=True)
                work.mkdir(parents=True)
                self.ns.run(["mount", "-t", "overlay", "overlay", "-o",
                             f"lowerdir=/{name},upperdir={upper},workdir={work}", f"/{name}"])
        except BaseException:
            self.stop()
            raise
        return self

    def run(self, argv: Sequence[str], check: bool = True, input: Optional[str] = None,
            env: Optional[Dict[str, str]] = None, cwd: str = "/") -> subprocess.CompletedProcess:
        """``argv`` inside, as root, with a plain environment (text in and out)."""
        return self.ns.run(list(argv), check=check, input=input, text=True, cwd=cwd, env={**ENV, **(env or {})})

    def rpm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(["rpm", "--dbpath", RPM_DB, *args], check=check)

    def path(self, path: str) -> Path:
        """Where a file written inside lives on the host (only files that changed are there)."""
        top = path.strip("/").split("/", 1)[0]
        if top not in OVERLAID:
            raise ValueError(f"{path} is not under an overlaid directory")
        return self.base / "upper" / path.lstrip("/")

    def read(self, path: str) -> str:
        return self.run(["cat", path]).stdout

    def exists(self, path: str) -> bool:
        return self.run(["test", "-e", path], check=False).returncode == 0

    def changes(self) -> Dict[str, str]:
        """Every path written or deleted inside: ``file``, ``dir``, ``symlink`` or ``deleted``
        (an overlay whiteout). A directory the host has too is not listed: overlayfs copies it up
        only because something inside it changed."""
        out: Dict[str, str] = {}
        upper = self.base / "upper"
        for dirpath, dirs, files in os.walk(upper):
            for name in dirs + files:
                p = Path(dirpath) / name
                st = p.lstat()
                key = "/" + str(p.relative_to(upper))
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    out[key] = "deleted"
                elif stat.S_ISLNK(st.st_mode):
                    out[key] = "symlink"
                elif stat.S_ISDIR(st.st_mode):
                    if not os.path.isdir(key):   # the host's own directory (the lower layer)
                        out[key] = "dir"
                else:
                    out[key] = "file"
        return out

    def stop(self) -> None:
        self.ns.stop()   # the mounts go with the namespace

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)
