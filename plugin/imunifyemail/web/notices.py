"""The one-line notice a page shows after an action redirected to it (``?notice=released&n=3``).

Only these fixed texts can appear: nothing from the query is echoed but a number.
"""
from typing import Optional

from flask import request

NOTICES = {
    "released": "{n} email(s) released and sent to their recipients.",
    "deleted": "{n} email(s) deleted permanently.",
    "deleted_spam": "{n} email(s) deleted and learned as spam: similar mail from any account is held from now on.",
    "deleted_unlearned": "{n} email(s) deleted, but the filter could not learn from every one (is Rspamd "
                         "running?): see the audit trail.",
    "released_ham": "{n} email(s) released and learned as not spam: similar mail passes from now on.",
    "released_unlearned": "{n} email(s) released, but the filter could not learn from every one (is Rspamd "
                          "running?): see the audit trail.",
    "purged": "Quarantine purged: {n} email(s) deleted.",
    "limit": "Sender limit updated.",
    "suggested": "Suggested limits applied: they are now the sender object's own hourly and daily limits.",
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
