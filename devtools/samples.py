"""Sample messages built with the stdlib, as a hosted site would send them (tests, sandbox, bench)."""
import base64
import io
import struct
import zipfile
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def pe_blob(size: int = 2048) -> bytes:
    """A minimal Windows PE file: MZ header pointing at a PE signature."""
    head = b"MZ" + b"\0" * 0x3A + struct.pack("<I", 0x80)
    return (head + b"\0" * (0x80 - len(head)) + b"PE\0\0" + b"\x4c\x01").ljust(size, b"\0")


def build(sender="alice@demo1.test", to=("bob@remote.example",), subject="Quarterly report",
          body="Hello Bob,\n\nthe figures are attached as discussed.\n\nAlice\n", extra_headers=()) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    for name, value in extra_headers:
        msg[name] = value
    msg.set_content(body)
    return msg


def ham(**kw) -> bytes:
    return bytes(build(**kw))


def gtube(**kw) -> bytes:
    kw.setdefault("subject", "Test spam")
    return bytes(build(body=f"This is spam.\n\n{GTUBE}\n", **kw))


def with_exe(zipped: bool = False, **kw) -> bytes:
    msg = build(**kw)
    if zipped:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("setup.exe", pe_blob())
        msg.add_attachment(buf.getvalue(), maintype="application", subtype="zip", filename="invoice.zip")
    else:
        msg.add_attachment(pe_blob(), maintype="application", subtype="octet-stream", filename="setup.exe")
    return bytes(msg)


def part_bomb(parts: int = 1_000_000, sender="alice@demo1.test", to=("bob@remote.example",),
              subject="parts") -> bytes:
    """A message of ``parts`` empty MIME parts (7 bytes each): cheap to send, costly to parse."""
    head = (f"From: {sender}\r\nTo: {', '.join(to)}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n').encode()
    return head + b"--b\r\n\r\n" * parts + b"--b--\r\n"


def obsolete_syntax_exe(sender="alice@demo1.test", to=("bob@remote.example",)) -> bytes:
    """An executable attached under ``Content-Type : multipart/mixed`` (white space before the colon:
    obsolete syntax that mail clients accept and Python's email parser does not)."""
    attachment = base64.encodebytes(pe_blob()).replace(b"\n", b"\r\n")
    return (f"From: {sender}\r\nTo: {', '.join(to)}\r\nSubject: Invoice\r\nMIME-Version: 1.0\r\n"
            'Content-Type : multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
            'Please see the invoice.\r\n--b\r\nContent-Type: application/octet-stream; name="invoice.exe"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n").encode() + attachment + b"--b--\r\n"


SAMPLES = {
    "ham": ham,
    "gtube": gtube,
    "exe": with_exe,
    "zip": lambda **kw: with_exe(zipped=True, **kw),
    "part-bomb": part_bomb,
    "obsolete-exe": obsolete_syntax_exe,
}


# A realistic advance-fee campaign: no rule of Rspamd's holds it on its own (it passes the filter), so
# only what the administrator teaches can hold it (tests/system/test_learning.py).
CAMPAIGN = [
    "Dear friend,",
    "I am Mr. John Smith, a bank manager with a proposal for you.",
    "We have identified a dormant account worth USD 15,500,000 belonging to a late client.",
    "I need a trusted foreign partner to receive these funds; you will get forty percent.",
    "Please send me your full name, telephone number and bank details to proceed immediately.",
    "This transaction is risk free and must be kept strictly confidential between us.",
    "Reply to this message at once so that we can start the transfer this week.",
    "About the transfer: the funds are held in a suspense account since the death of our client in 2019.",
    "Nobody has claimed them and the bank will move them to the treasury at the end of this quarter.",
    "With your help we can present you as the next of kin and release the money to your account.",
    "All the legal papers will be prepared by our attorney, so there is no risk at all for you.",
    "You only need to open a receiving account and keep this matter secret until it is done.",
    "After the transfer we will share the money as agreed and invest my part in your country.",
    "Please also tell me your age, occupation and a copy of your passport for the documentation.",
    "I look forward to your urgent reply and to a long and profitable partnership between us.",
    "Best regards, John Smith, Director of Operations",
]


def campaign(variant: str = "", **kw) -> bytes:
    """The campaign, its second line changed by ``variant`` (a near copy: the same fuzzy shingles)."""
    lines = list(CAMPAIGN)
    if variant:
        lines[1] = f"I am {variant}, a bank manager with a proposal for you."
    kw.setdefault("subject", "Business proposal")
    return bytes(build(body="\n".join(lines) + "\n", **kw))
