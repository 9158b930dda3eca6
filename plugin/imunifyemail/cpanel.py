"""cPanel's account map and contact addresses, read from its files (CPANEL.md).

``/etc/userdomains`` (``domain: user``, root:mail 0640) maps every domain to
its account; it is re-read when it changes. The daemon reaches it through
the ``mail`` group it keeps after dropping privileges; the web app, which has
no such group, asks ``/var/cpanel/users`` (:func:`is_cpanel_account`, the one rule for what a cPanel
account is). The contact addresses
(``/etc/wwwacct.conf``, ``/var/cpanel/users/<user>``, root only) are read by
the root notification job.
"""
import logging
import os
import pwd
import re
import socket
import time
from typing import Dict, Optional, Set, Tuple

from . import paths
from .core.accounts import account_name_error

log = logging.getLogger(__name__)
_SEP = re.compile(r"\s*:\s*")
_NOBODY = "nobody"
USER_CACHE_SECONDS = 60.0


def parse_map(text: str) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = _SEP.split(line, maxsplit=1)
        if len(parts) == 2 and parts[0] and parts[1]:
            out[parts[0].lower()] = parts[1]
    return out


class AccountDirectory:
    """Implements :class:`imunifyemail.core.attribution.Directory` from cPanel's files."""

    def __init__(self):
        self._file = paths.system_path(paths.USERDOMAINS)
        self._stamp = None
        self._domains: Dict[str, str] = {}
        self._accounts: Set[str] = set()
        self._users: Dict[int, Tuple[Optional[str], float]] = {}

    def _refresh(self) -> None:
        try:
            st = os.stat(self._file)
        except FileNotFoundError:
            stamp = None
        except OSError as exc:
            log.error("cannot stat %s: %s", self._file, exc.strerror)
            return
        else:
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return
        try:
            text = self._file.read_text("utf-8", "replace") if stamp else ""
        except OSError as exc:  # keep the last good map rather than attributing everything to root
            log.error("cannot read %s: %s", self._file, exc.strerror)
            return
        domains = {d: u for d, u in parse_map(text).items() if d != "*" and u != _NOBODY}
        self._domains, self._accounts, self._stamp = domains, set(domains.values()), stamp

    def account_for_domain(self, domain: str) -> Optional[str]:
        self._refresh()
        return self._domains.get(domain.lower())

    def is_account(self, name: str) -> bool:
        """:func:`is_cpanel_account`, with the owners of this (cached) map."""
        self._refresh()
        return name in self._accounts or has_account_file(name)

    def account_for_uid(self, uid: int) -> Optional[str]:
        now = time.monotonic()
        cached = self._users.get(uid)
        if cached is None or cached[1] < now:   # the passwd database, asked once a minute per uid
            try:
                name: Optional[str] = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = None
            cached = (name, now + USER_CACHE_SECONDS)
            self._users[uid] = cached
        name = cached[0]
        return name if name is not None and self.is_account(name) else None


def _owners() -> Set[str]:
    """The accounts ``/etc/userdomains`` gives domains to (none when it cannot be read: the web app)."""
    try:
        text = paths.system_path(paths.USERDOMAINS).read_text("utf-8", "replace")
    except OSError:
        return set()
    return {u for d, u in parse_map(text).items() if d != "*" and u != _NOBODY}


def has_account_file(name: str) -> bool:
    """A valid account name with its ``/var/cpanel/users/<name>``: asking needs only the right to pass
    through that directory, so a process without the ``mail`` group finds every account cPanel made."""
    return not account_name_error(name) and (paths.system_path(paths.CPANEL_USERS_DIR) / name).is_file()


def is_cpanel_account(name: str) -> bool:
    """The one rule for "is this a cPanel account": a valid account name cPanel knows — by its user file
    or, failing that, by a domain of it in ``/etc/userdomains``."""
    return has_account_file(name) or (not account_name_error(name) and name in _owners())


def known_accounts() -> Set[str]:
    """Every cPanel account (:func:`is_cpanel_account`): the user files plus the domains' owners."""
    names: Set[str] = set()
    try:
        names.update(e.name for e in os.scandir(paths.system_path(paths.CPANEL_USERS_DIR)) if e.is_file())
    except OSError:
        pass
    return {n for n in names | _owners() if not account_name_error(n)}


def domains_of(account: str) -> Set[str]:
    """The domains ``/etc/userdomains`` gives to ``account``, read now (nothing cached)."""
    try:
        text = paths.system_path(paths.USERDOMAINS).read_text("utf-8", "replace")
    except FileNotFoundError:
        return set()
    return {d for d, u in parse_map(text).items() if u == account and d != "*"}


# -- contact addresses and the host name (the notifications) -------------------

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def _settings(path, separator: Optional[str]) -> Dict[str, str]:
    """``KEY<separator>value`` lines (None: any whitespace); a missing file is no settings, any other
    error is raised."""
    try:
        text = path.read_text("utf-8", "replace")
    except FileNotFoundError:
        return {}
    out: Dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(separator, 1)
        if len(parts) == 2 and parts[0] and not parts[0].startswith("#"):
            out[parts[0].strip()] = parts[1].strip()
    return out


def wwwacct() -> Dict[str, str]:
    """WHM's Basic Setup, ``/etc/wwwacct.conf`` (``KEY value`` lines: ``CONTACTEMAIL``, ``HOST``...)."""
    return _settings(paths.system_path(paths.WWWACCT_CONF), None)


def admin_contact() -> str:
    """The administrator's contact address(es) as written (``CONTACTEMAIL``), or ""."""
    return wwwacct().get("CONTACTEMAIL", "")


def owner_contact(account: str) -> str:
    """An account owner's contact address(es) (``CONTACTEMAIL=`` in ``/var/cpanel/users/<user>``, root
    only), or "" when the account has none or is no cPanel account."""
    if account_name_error(account):
        return ""
    return _settings(paths.system_path(paths.CPANEL_USERS_DIR) / account, "=").get("CONTACTEMAIL", "")


def hostname() -> str:
    """The server's name, as WHM knows it (``HOST`` in wwwacct.conf), else the kernel's."""
    for name in (wwwacct().get("HOST", ""), socket.gethostname()):
        if _HOSTNAME.match(name):
            return name.lower()
    return "localhost"
