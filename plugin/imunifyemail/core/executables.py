"""What counts as a Windows executable: a file name Windows would run, or a PE file's header."""
import re
import struct
from dataclasses import dataclass
from typing import Optional

EXECUTABLE_EXTENSIONS = frozenset({
    "exe", "scr", "com", "pif", "bat", "cmd", "cpl", "msi", "dll", "vbs", "vbe", "js", "jse", "wsf",
    "wsh", "hta", "lnk", "ps1", "jar", "msp", "scf", "reg", "gadget", "application", "msc",
})

_TRAILING = re.compile(r"[\s.]+$")  # Windows drops trailing dots and spaces from a file name


@dataclass(frozen=True)
class Finding:
    location: str   # human-readable, e.g. "invoice.zip/setup.exe" or "part 2" (for a nameless part)
    why: str        # "PE header", "extension .exe", "encrypted archive, cannot be inspected"


def extension(name: str) -> str:
    stem = _TRAILING.sub("", name)
    return stem.rsplit(".", 1)[1].lower() if "." in stem else ""


def executable_extension(name: str) -> Optional[str]:
    """The executable extension Windows would see in ``name``, if any. A name is also read up to a
    NUL, as a program written in C would (``setup.exe\\0.txt``)."""
    for candidate in (name, name.split("\0", 1)[0]):
        ext = extension(candidate)
        if ext in EXECUTABLE_EXTENSIONS:
            return ext
    return None


def is_pe(data: bytes) -> bool:
    """MZ stub whose e_lfanew (uint32 at 0x3C) points at a "PE\\0\\0" signature."""
    if len(data) < 0x40 or data[:2] != b"MZ":
        return False
    (offset,) = struct.unpack_from("<I", data, 0x3C)
    return data[offset:offset + 4] == b"PE\0\0"
