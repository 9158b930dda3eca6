"""Reading form and query fields: each bad value is an InvalidInput naming the field.

Only the parsing lives here (text to number, choice, list of ids); what a
value may be is checked by the same operations ``ie-cli`` calls.
"""
from typing import List, Mapping, Optional, Sequence

from ..core.features import switched_on
from ..errors import InvalidInput

MAX_TEXT = 512


def text(fields: Mapping, name: str, label: str, max_length: int = MAX_TEXT) -> Optional[str]:
    value = fields.get(name)
    if value is None or not value.strip():
        return None
    if len(value) > max_length or any(ord(c) < 32 for c in value):
        raise InvalidInput(f"{label}: at most {max_length} characters, no control characters")
    return value.strip()


def integer(fields: Mapping, name: str, label: str, default: Optional[int] = None,
            minimum: Optional[int] = None, maximum: Optional[int] = None) -> Optional[int]:
    raw = (fields.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        raise InvalidInput(f'{label}: "{raw[:40]}" is not a whole number') from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"from {minimum}" if minimum is not None else ""
        bounds += f" to {maximum}" if maximum is not None else " or more"
        raise InvalidInput(f"{label}: {value} is out of range (use {bounds.strip()})")
    return value


def choice(fields: Mapping, name: str, label: str, choices: Sequence[str], default: Optional[str] = None):
    value = (fields.get(name) or "").strip()
    if not value:
        return default
    if value not in choices:
        raise InvalidInput(f'{label}: "{value[:40]}" is not one of {", ".join(choices)}')
    return value


def switch(fields: Mapping, name: str) -> bool:
    """A checkbox: present and "on" (a switch word meaning on) is on; absent is off."""
    return switched_on(fields.get(name) or "")


def id_list(values: Sequence[str]) -> List[str]:
    """Email ids from repeated fields and/or comma-separated values (checked by the operations)."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
