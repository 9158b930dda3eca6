"""The one-line notice a page shows after an action redirected to it (``?notice=released&n=3``).

Only these fixed texts can appear: nothing from the query is echoed but a number.
"""
from typing import Optional

from flask import request

NOTICES = {
    "released": "{n} email(s) released and sent to their recipients.",
    "deleted": "{n} email(s) deleted permanently.",
    "purged": "Quarantine purged: {n} email(s) deleted.",
    "limit": "Sender limit updated.",
    "suggested": "Suggested limit applied: it is now the sender object's own hourly limit.",
    "whitelisted": "Added to the sender whitelist: its mail is no longer scanned or limited.",
    "unwhitelisted": "Removed from the sender whitelist.",
    "saved": "Changes saved.",
    "restored": "Account restored: its mail is scanned and sent again.",
    "trusted_sender": "{n} email(s) released; the sender is whitelisted until the time you chose.",
    "trusted_limit": "{n} email(s) released; the sender limit is raised until the time you chose.",
}


def notice() -> Optional[str]:
    text = NOTICES.get(request.args.get("notice", ""))
    if text is None:
        return None
    raw = request.args.get("n", "0")
    n = int(raw) if raw.isdigit() and len(raw) < 10 else 0
    return text.format(n=n)
