"""How a held message is shown: its header fields, its raw body, and its body as plain text.

``ie-cli emails show`` prints the fields, with the filter's own verdict and never a
sender's (:func:`judged`), and the raw body (base64); the pages add "Body": the decoded text of the message with every tag removed
(HTML parts are reduced to their text by BeautifulSoup; scripts, styles and
remote references vanish with the tags). Nothing here raises on malformed
mail: what cannot be parsed is shown as it was sent.
"""
import base64
import email
import email.policy
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from bs4 import BeautifulSoup

from . import headers
from .message import decode_words
from .verdict import format_score

FILTER_ACTION = "X-ImunifyEmail-Filter-Action"
FILTER_SCORE = "X-ImunifyEmail-Filter-Score"
MAX_TEXT_CHARS = 1_000_000      # a page shows this much of a huge message's text
_DROPPED_TAGS = ("script", "style", "head", "title", "template", "noscript")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class ParsedMessage:
    headers: List[Tuple[str, str]]     # (name as written, unfolded RFC 2047-decoded value)
    body: bytes                        # as received, after the blank line

    def body_base64(self) -> str:
        return base64.b64encode(self.body).decode("ascii")

    def header_groups(self) -> Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]:
        """(ordinary fields, X- fields), each sorted by name (repeats keep their order)."""
        ordered = sorted(self.headers, key=lambda h: h[0].lower())
        return ([h for h in ordered if not h[0].lower().startswith("x-")],
                [h for h in ordered if h[0].lower().startswith("x-")])

    def header_dict(self) -> Dict[str, str]:
        """Name -> value in display order; repeated fields joined with a newline."""
        out: Dict[str, str] = {}
        spelling: Dict[str, str] = {}
        regular, extra = self.header_groups()
        for name, value in regular + extra:
            key = spelling.setdefault(name.lower(), name)
            out[key] = f"{out[key]}\n{value}" if key in out else value
        return out


def parse(raw: bytes) -> ParsedMessage:
    """Never raises on malformed mail: what is not a header is body."""
    fields, rest = headers.split(raw)
    parsed = []
    for field in fields:
        name = headers.field_name(field)
        parsed.append((field[:len(name)].decode("ascii"), decode_words(headers.field_value(field))))
    if rest.startswith(b"\r\n"):
        rest = rest[2:]
    elif rest.startswith(b"\n"):
        rest = rest[1:]
    return ParsedMessage(parsed, rest)


def verdict_fields(action: str, score: Optional[float]) -> List[Tuple[str, str]]:
    """The filter's own ``X-ImunifyEmail-Filter-Action`` and ``-Score`` of a verdict (empty ones left out)."""
    fields = []
    if action:
        fields.append((FILTER_ACTION, action))
    if score is not None:
        fields.append((FILTER_SCORE, format_score(score)))
    return fields


def judged(raw: bytes, action: str, score: Optional[float]) -> bytes:
    """The message as the filter lets it out, with the verdict kept beside it: every
    ``X-ImunifyEmail-*`` field a sender wrote gone, the filter's own Action and Score added — what a
    passed message carries (Exim's router does the same to it). A release sends this, ``emails show``
    and the pages show this; the held copy stays as received (the evidence)."""
    return headers.append(headers.without_ours(raw), verdict_fields(action, score))


def html_to_text(html: str) -> str:
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(_DROPPED_TAGS):
        tag.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line)


def _part_text(part) -> str:
    try:
        text = part.get_content()
    except Exception:   # unknown charset, broken transfer encoding: the bytes as they are
        payload = part.get_payload(decode=True) or b""
        text = payload.decode("utf-8", "replace")
    if not isinstance(text, str):
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return html_to_text(text) if part.get_content_type() == "text/html" else text


def body_text(raw: bytes) -> Tuple[str, List[Attachment]]:
    """The message's readable text (plain parts, or HTML parts reduced to text) and its attachments."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        texts: List[str] = []
        attachments: List[Attachment] = []
        html_only: List[str] = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            kind = part.get_content_type()
            disposition = part.get_content_disposition()
            if disposition == "attachment" or (kind not in ("text/plain", "text/html") and part.get_filename()):
                payload = part.get_payload(decode=True) or b""
                attachments.append(Attachment(part.get_filename() or "(unnamed)", kind, len(payload)))
            elif kind == "text/plain":
                texts.append(_part_text(part))
            elif kind == "text/html":
                html_only.append(_part_text(part))
        text = "\n\n".join(texts or html_only)
    except Exception:   # the email package gave up: show the body bytes as text
        text, attachments = html_to_text(parse(raw).body.decode("utf-8", "replace")), []
    return text[:MAX_TEXT_CHARS], attachments
