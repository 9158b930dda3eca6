"""Who asks: the administrator (root, from a shell or WHM) or a hosted user (from cPanel).

Nothing a client sends decides this: ``ie-cli`` runs as root, the WHM entry reaches a root-only
socket, and on the user socket the account is the socket peer's Unix user.
"""
from dataclasses import dataclass
from typing import Optional

from ..core.accounts import ROOT
from ..errors import Forbidden, NotFoundError

CLI, WHM, CPANEL, DAEMON, HOOK = "cli", "whm", "cpanel", "daemon", "hook"
VIAS = (CLI, WHM, CPANEL, DAEMON, HOOK)


@dataclass(frozen=True)
class Caller:
    account: Optional[str]     # None: the administrator; else the hosted user's own account
    via: str                   # where the request came from (VIAS)
    login: str = ROOT          # who, for the log and the release records: root, WHM's user, the hosted user

    @property
    def is_admin(self) -> bool:
        return self.account is None

    def describe(self) -> str:
        return f"{self.login} ({self.via})"

    def as_dict(self) -> dict:
        return {"account": self.account, "via": self.via, "login": self.login}

    @classmethod
    def from_dict(cls, data: dict) -> "Caller":
        account, via, login = data.get("account"), data.get("via"), data.get("login")
        if via not in VIAS or not isinstance(login, str) or not login \
                or not (account is None or (isinstance(account, str) and account)):
            raise ValueError("malformed caller")
        return cls(account, via, login)


def admin(via: str = CLI, login: str = ROOT) -> Caller:
    return Caller(None, via, login or ROOT)


def hosted_user(account: str) -> Caller:
    return Caller(account, CPANEL, account)


def require_admin(caller: Caller, what: str) -> None:
    if not caller.is_admin:
        raise Forbidden(f"only the administrator can {what}")


def own_account(caller: Caller, account: Optional[str]) -> str:
    """A hosted user's request always covers their own account: naming another is "not found"
    (never "forbidden": that would tell them it exists)."""
    if account not in (None, caller.account):
        raise NotFoundError(f'account "{account}" not found')
    return caller.account
