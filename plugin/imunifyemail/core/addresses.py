"""Validation of the e-mail addresses and domain names an administrator types."""
import re
from typing import Tuple

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")


def _idna(domain: str) -> str:
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return ""


def normalize_domain(value: str) -> str:
    """Lower-cased ASCII domain, or ValueError naming the value."""
    domain = value.strip().rstrip(".").lower()
    ascii_domain = domain if domain.isascii() else _idna(domain)
    labels = ascii_domain.split(".")
    if (not ascii_domain or len(ascii_domain) > 253 or len(labels) < 2
            or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit()):
        raise ValueError(f"invalid domain name: {value!r}")
    return ascii_domain


def normalize_email(value: str) -> str:
    """Lower-cased ``local@domain``, or ValueError naming the value."""
    local, sep, domain = value.strip().rpartition("@")
    if not sep or not local or not _LOCAL.match(local.lower()) or local.startswith(".") \
            or local.endswith(".") or ".." in local:
        raise ValueError(f"invalid email address: {value!r}")
    try:
        return f"{local.lower()}@{normalize_domain(domain)}"
    except ValueError:
        raise ValueError(f"invalid email address: {value!r}") from None


def classify(value: str):
    """("email", normalized) or ("domain", normalized); ValueError otherwise."""
    if "@" in value:
        return "email", normalize_email(value)
    return "domain", normalize_domain(value)


def envelope_key(address: str) -> Tuple[str, str]:
    """(address, domain) of an envelope address as the lists hold them (lower case, an IDN domain in
    its ASCII form), for matching; never raises: an address from mail is whatever the sender wrote."""
    local, at, domain = address.strip().rpartition("@")
    if not at:   # unqualified (Exim qualifies every recipient first): matches no entry
        return address.strip().lower(), ""
    domain = domain.rstrip(".").lower()
    if not domain.isascii():
        domain = _idna(domain) or domain
    return f"{local.lower()}@{domain}", domain
