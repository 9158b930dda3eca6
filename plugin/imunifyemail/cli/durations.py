"""``--since`` values: a duration as the product's newer documentation writes them (``100s``, ``5m``,
``1h``, ``5d``) or a bare integer, which keeps the meaning the flag always had.

One parser for every command that takes ``--since``: :class:`Duration` (seconds back from now) and
:class:`SinceTime` (``emails list``: a duration back from now, or a bare integer as the unix time it
always was there).
"""
import re
from typing import NamedTuple, Optional

import click

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(-?[0-9]+)([smhd]?)$")
_MAX = 2 ** 63 - 1


class Parsed(NamedTuple):
    number: int
    unit: str     # "" for a bare integer

    @property
    def seconds(self) -> int:
        return self.number * UNITS.get(self.unit, 1)


def parse(text: str) -> Parsed:
    """``text`` as a number and its unit; ValueError naming it when it is neither."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number of seconds or 100s, 5m, 1h, 5d")
    parsed = Parsed(int(match.group(1)), match.group(2))
    if abs(parsed.seconds) > _MAX:
        raise ValueError(f"invalid duration {text!r}: too long")
    return parsed


def text(seconds: int) -> str:
    """``seconds`` in its largest whole unit: 3600 -> "1h" (a default as --help shows it)."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"


class Duration(click.ParamType):
    """Seconds back from now: ``3600``, ``3600s``, ``60m``, ``1h`` are one hour. The checks of the value
    (at least, at most) stay with the operation that uses it."""
    name = "duration"
    varname = "duration"           # cobra.py: the type word in --help
    plain_default = True           # cobra.py: "(default 1h)", not quoted

    def convert(self, value, param, ctx) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return parse(str(value)).seconds
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Since(NamedTuple):
    """When ``--since`` starts: ``ago`` seconds before now, or the unix time ``at``."""
    ago: Optional[int] = None
    at: Optional[int] = None

    def start(self, now: int) -> int:
        return self.at if self.at is not None else now - self.ago


class SinceTime(Duration):
    """``emails list --since``: a duration with its unit is that long ago; a bare integer is, as it was
    before durations, a unix time."""

    def convert(self, value, param, ctx) -> Since:
        if isinstance(value, Since):
            return value
        try:
            parsed = parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if parsed.number < 0:
            self.fail(f"{value!r} is negative: give a unix time or a duration such as 30d", param, ctx)
        return Since(at=parsed.number) if not parsed.unit else Since(ago=parsed.seconds)
