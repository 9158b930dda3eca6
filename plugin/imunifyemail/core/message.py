"""What the quarantine lists about a message: subject, From, script headers.

Hostile input (8-bit headers, broken encoded-words, no headers at all) must
never raise: the worst case is the raw text.
"""
from dataclasses import dataclass
from email.header import decode_header, make_header
from typing import Optional, Union

from . import headers


def decode_words(value: str) -> str:
    """RFC 2047-decode a header value; broken words fall back to the raw text."""
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # any malformed encoded-word: show what was sent
        return value


@dataclass(frozen=True)
class ScriptHeader:
    raw: str = ""
    domain: str = ""
    path: str = ""

    def as_dict(self) -> dict:
        return {"raw": self.raw, "domain": self.domain, "path": self.path}


def parse_script_header(msg: Union[bytes, headers.Fields]) -> ScriptHeader:
    """The PHP script that sent the message, from the first header present of
    X-PHP-Script (``host/path for ip``), X-PHP-Originating-Script (``uid:file``)
    or cPanel's X-Source-Dir (``domain:/path``)."""
    fields = msg if isinstance(msg, headers.Fields) else headers.Fields(msg)
    php = fields.values("X-PHP-Script")
    if php:
        value = php[0]
        target = value.split(" for ", 1)[0].strip()
        slash = target.find("/")
        if slash > 0:
            return ScriptHeader(value, target[:slash].lower(), target[slash:])
        return ScriptHeader(value, "", target)
    origin = fields.values("X-PHP-Originating-Script")
    if origin:
        value = origin[0]
        _, _, file = value.partition(":")
        return ScriptHeader(value, "", (file or value).strip())
    source = fields.values("X-Source-Dir")
    if source:
        value = source[0]
        domain, sep, path = value.partition(":")
        if sep:
            return ScriptHeader(value, domain.strip().lower(), path.strip())
        return ScriptHeader(value, "", value)
    return ScriptHeader()


@dataclass(frozen=True)
class Summary:
    subject: str
    header_from: str
    script: ScriptHeader
    message_id: Optional[str]


def summarize(msg: Union[bytes, headers.Fields]) -> Summary:
    fields = msg if isinstance(msg, headers.Fields) else headers.Fields(msg)

    def first(name: str) -> str:
        found = fields.values(name)
        return decode_words(found[0]) if found else ""

    mid = fields.values("Message-ID")
    return Summary(
        subject=first("Subject"),
        header_from=first("From"),
        script=parse_script_header(fields),
        message_id=mid[0] if mid else None,
    )
