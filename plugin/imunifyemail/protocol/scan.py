"""The filter socket: ``SCAN id=<Exim id> rcpt=<base64 of the address>\\n``, once per remote address.

The answer is ``verdict=<pass|hold|defer>`` then ``key="value"`` pairs, without a newline; the
daemon closes the connection after it. Exim's router (``exim_conf/router.conf``) reads it with
``${extract}``: ``verdict=pass action="no action" score="0.40" ...``, ``verdict=hold email_id="..."
reasons="spam"`` or ``verdict=defer reason="..."``. An empty id is an address test (``exim -bt``).
"""
import base64
import binascii
import re
from typing import Dict, Mapping, NamedTuple

from ..core.attribution import EXIM_ID

PASS, HOLD, DEFER = "pass", "hold", "defer"
BAD_REQUEST = "bad request"   # the defer reason for a question not in this format

_REQUEST = re.compile(rb"^(SCAN|INCOMING) id=(\S*) rcpt=(\S*)$")
INCOMING = "INCOMING"   # the incoming filter's question, for a local recipient (exim_conf/incoming.conf)
_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f]')   # what ${extract} cannot take inside a quoted value
_FIELD = re.compile(r'(\w+)=(?:"([^"]*)"|(\S*))')


class MalformedRequest(ValueError):
    """Not a question of this protocol; ``str()`` says what is wrong (for the daemon's log)."""


class ScanRequest(NamedTuple):
    exim_id: str   # "" for an address test
    rcpt: str
    verb: str = "SCAN"


def build_request(exim_id: str, rcpt: str, verb: str = "SCAN") -> bytes:
    """The router's question (``SCAN id=$message_exim_id rcpt=${base64:$local_part@$domain}\\n``; ``INCOMING``
    from the incoming filter's router)."""
    return f"{verb} id={exim_id} rcpt={base64.b64encode(rcpt.encode()).decode()}\n".encode()


def parse_request(line: bytes) -> ScanRequest:
    m = _REQUEST.match(line.strip())
    if m is None:
        raise MalformedRequest("not a SCAN request")
    exim_id = m.group(2).decode("ascii")
    try:
        rcpt = base64.b64decode(m.group(3), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise MalformedRequest("recipient is not base64 UTF-8") from None
    if exim_id and not EXIM_ID.fullmatch(exim_id):
        raise MalformedRequest("not an Exim message id")
    return ScanRequest(exim_id, rcpt, m.group(1).decode("ascii"))


def build_answer(verdict: str, fields: Mapping[str, object]) -> bytes:
    """Values lose the characters ``${extract}`` cannot take: a hostile header cannot add a field."""
    parts = [f"verdict={verdict}"]
    parts += [f'{key}="{_UNSAFE.sub("", str(value))}"' for key, value in fields.items()]
    return " ".join(parts).encode("utf-8", "replace")


BAD_REQUEST_ANSWER = build_answer(DEFER, {"reason": BAD_REQUEST})


def parse_answer(data: bytes) -> Dict[str, str]:
    """The answer's fields, ``verdict`` first, as ``${extract}`` reads them."""
    text = data.decode("utf-8", "replace")
    return {m.group(1): m.group(2) if m.group(2) is not None else m.group(3) for m in _FIELD.finditer(text)}
