"""What the product shows: the JSON shapes of ``--json`` and the pages, and human-readable sizes.

Built once here from the store's values, so ``ie-cli``, ``ie-config`` and the
web app say the same thing the same way (keys in the seed's order, our extra
keys after them).
"""


def human_size(n: int) -> str:
    """``512 bytes``, ``3.1 MB`` (binary units, as ``df -h``)."""
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"   # not reached
