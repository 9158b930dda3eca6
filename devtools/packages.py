"""The packages the tests install, built the way ``make rpm`` builds them (rpm/build.sh), signed with a
throw-away gpg key as a release would be with the real one.

:class:`SigningKey` is a key in a keyring of its own (``GNUPGHOME`` in a temporary directory, no
passphrase); :class:`Packages` builds each flavour's release 1 and 2 (the upgrade) once, on demand.
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, Optional

REPO = Path(__file__).resolve().parent.parent
FLAVOURS = ("local", "el8", "el9")
PYVER = {"local": "%d.%d" % sys.version_info[:2], "el8": "3.9", "el9": "3.9"}
EL_PYTHON = REPO / "build/python3.9"   # make python39


def place_el_python(system) -> None:
    """EL's interpreter at EL's paths in a scratch or booted system, before the package that needs it:
    ``/usr/bin/python3.9`` (EL8's python39, EL9's python3) with its library under ``/usr/lib``. EL9
    also calls it ``/usr/bin/python3``; the package does not use that name, and the system keeps
    Debian's there (the test harness runs on it)."""
    if not (EL_PYTHON / "bin/python3.9").is_file():
        raise RuntimeError(f"{EL_PYTHON}/bin/python3.9 not found: run 'make python39' first")
    system.run(["cp", "-a", str(EL_PYTHON / "bin/python3.9"), "/usr/bin/python3.9"])
    system.run(["cp", "-a", f"{EL_PYTHON}/lib/.", "/usr/lib/"])   # libpython3.9.so.1.0, python3.9/
    probe = "import sys; print(sys.executable, '%d.%d' % sys.version_info[:2], sys.prefix)"
    found = system.run(["/usr/bin/python3.9", "-c", probe]).stdout.split()
    if found != ["/usr/bin/python3.9", "3.9", "/usr"]:
        raise RuntimeError(f"the placed Python 3.9 says {found}")


class SigningKey:
    """An RSA signing key made for one test session (its name says so)."""

    uid = "Imunify Email test signing key <packages@imunifyemail.invalid>"

    def __init__(self) -> None:
        # short: gpg-agent's socket lives in GNUPGHOME and a unix socket path is at most 107 bytes
        self.home = Path(tempfile.mkdtemp(prefix="ie-gpg-", dir="/tmp"))
        self.home.chmod(0o700)
        self.env = {**os.environ, "GNUPGHOME": str(self.home)}
        self._gpg("--quick-generate-key", self.uid, "rsa3072", "sign", "never")
        self.public_key = self.home / "RPM-GPG-KEY-imunifyemail"
        self.public_key.write_text(self._gpg("--armor", "--export", self.uid))
        self.fingerprint = next(line.split(":")[9] for line in self._gpg("--with-colons", "--list-keys",
                                                                          self.uid).splitlines()
                                if line.startswith("fpr:"))

    def _gpg(self, *args: str) -> str:
        proc = subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", *args],
                              env=self.env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"gpg {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout

    def close(self) -> None:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=self.env, capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)


def build(flavour: str, release: int, outdir: Path, key: Optional[SigningKey] = None) -> Path:
    """``rpm/build.sh --target FLAVOUR --release N`` (signed with ``key``): the binary package's path."""
    argv = [str(REPO / "rpm/build.sh"), "--target", flavour, "--release", str(release), "--outdir", str(outdir),
            "--no-mock"]
    if key is not None:
        argv += ["--sign", key.fingerprint]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=900,
                          env=key.env if key else None)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    [built] = outdir.glob(f"imunifyemail-*-{release}{'' if flavour == 'local' else '.' + flavour}.x86_64.rpm")
    return built


class Packages:
    """flavour -> {release: path}, built when first asked for."""

    def __init__(self, outdir: Path, key: SigningKey):
        self.outdir = outdir
        self.key = key
        self._built: Dict[str, Dict[int, Path]] = {}

    def __getitem__(self, flavour: str) -> Dict[int, Path]:
        if flavour not in FLAVOURS:
            raise KeyError(flavour)
        if flavour not in self._built:
            out = self.outdir / flavour
            out.mkdir(parents=True, exist_ok=True)
            self._built[flavour] = {release: build(flavour, release, out, self.key) for release in (1, 2)}
        return self._built[flavour]
