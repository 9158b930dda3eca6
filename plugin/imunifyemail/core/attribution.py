"""Who sent a message: cPanel account, domain, sender email, PHP script.

Trusted facts come first — what Exim wrote in the message's spool file (the
submitting uid, the authenticated id; never anything from a request or a
header the sender could write); the envelope sender's domain is the fallback,
and mail nobody can be blamed for belongs to ``root``.
"""
import re
from dataclasses import dataclass
from typing import Optional

try:
    from typing import Protocol
except ImportError:  # Python < 3.8 has no Protocol; 3.9 is the floor, kept for linters
    Protocol = object  # type: ignore

from .message import ScriptHeader

ROOT_ACCOUNT = "root"
# An Exim message id: 4.96's 6-6-2 and 4.97's longer 6-11-4 form.
EXIM_ID = re.compile(r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}")


@dataclass(frozen=True)
class Meta:
    """The trusted envelope facts of a message (from Exim's spool ``-H`` file)."""
    uid: Optional[int] = None
    auth: str = ""
    proto: str = ""
    host: str = ""
    exim_id: str = ""


class Directory(Protocol):
    """The cPanel account map, read by an adapter (``imunifyemail.cpanel``)."""

    def account_for_domain(self, domain: str) -> Optional[str]: ...

    def account_for_uid(self, uid: int) -> Optional[str]: ...

    def is_account(self, name: str) -> bool: ...


@dataclass(frozen=True)
class Attribution:
    account: str
    domain: str          # envelope sender's domain ("" for the null sender)
    sender_email: str    # envelope sender, lower-cased ("" for the null sender)
    auth_user: str       # authenticated id from the trusted metadata ("" if none)
    script: ScriptHeader


def split_address(address: str):
    local, sep, domain = address.rpartition("@")
    return (local, domain.lower()) if sep else (address, "")


def account_of(meta: Meta, sender_domain: str, directory: Directory) -> str:
    auth = meta.auth.strip()
    if auth:
        _, auth_domain = split_address(auth)
        if auth_domain:
            owner = directory.account_for_domain(auth_domain)
            if owner:
                return owner
        elif directory.is_account(auth):
            return auth
    if meta.uid is not None:
        owner = directory.account_for_uid(meta.uid)
        if owner:
            return owner
    if sender_domain:
        owner = directory.account_for_domain(sender_domain)
        if owner:
            return owner
    return ROOT_ACCOUNT


def attribute(envelope_sender: str, meta: Meta, script: ScriptHeader, directory: Directory) -> Attribution:
    sender = (envelope_sender or "").strip().strip("<>").lower()
    _, domain = split_address(sender)
    return Attribution(
        account=account_of(meta, domain, directory),
        domain=domain,
        sender_email=sender,
        auth_user=meta.auth.strip().lower(),
        script=script,
    )
