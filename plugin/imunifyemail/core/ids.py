"""Identifiers an administrator or user types: quarantined email ids and sender object ids.

Both are UUIDs we generated; an id is accepted only in its canonical
lower-case hyphenated form (upper case is folded), so it can never be a path
or an SQL fragment.
"""
import uuid
from typing import Optional


def canonical_uuid(value: Optional[str]) -> Optional[str]:
    """The canonical form of a UUID, or None if ``value`` is not one."""
    text = (value or "").strip()
    try:
        canonical = str(uuid.UUID(text))
    except (ValueError, TypeError, AttributeError):
        return None
    return canonical if canonical == text.lower() else None
