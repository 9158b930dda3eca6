"""The winexec check against a corpus of evasion tricks, its budgets, and ordinary mail.

Each trick is a message a mail client would show with a Windows program attached (or an Exim error
message that carries one), built here with the stdlib; each must give a finding. Budgets: a message
that could not be fully inspected says why (``beyond``), never raises, and is never "clean".
"""
import base64
import binascii
import io
import os
import quopri
import random
import struct
import zipfile
import zlib
from email import message_from_bytes, policy
from email.message import EmailMessage
from itertools import count

import pytest

from devtools import samples
from imunifyemail.core.winexec import Budgets, Finding, Inspection, find_executables, inspect, precheck
from tests import containers

ENCRYPTED = "encrypted archive, cannot be inspected"


def pe_blob(junk: bytes = b"\x90" * 200) -> bytes:
    return b"MZ" + b"\0" * (0x3C - 2) + struct.pack("<I", 0x40) + b"PE\0\0" + junk


PE_B64 = base64.encodebytes(pe_blob())


def whys(raw: bytes, budgets: Budgets = Budgets()):
    result = inspect(raw, budgets)
    assert result.beyond == ""
    return {(f.location, f.why) for f in result.findings}


def message(*attachments, content="Hi Bob,\nsee attached.\n") -> bytes:
    msg = EmailMessage()
    msg["From"] = "alice@example.com"
    msg["To"] = "bob@example.org"
    msg["Subject"] = "hello"
    msg.set_content(content)
    for name, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def mixed(*parts: bytes, top: bytes = b'Content-Type: multipart/mixed; boundary="BOUND"', eol=b"\r\n") -> bytes:
    """A message with the given top-level MIME field(s) and raw parts (headers, blank line, body)."""
    body = b"".join(b"--BOUND" + eol + part + eol for part in parts)
    raw = (b"From: alice@example.com" + eol + b"To: bob@example.org" + eol + b"Subject: x" + eol
           + b"MIME-Version: 1.0" + eol + top + eol + eol + b"--BOUND" + eol + b"Content-Type: text/plain"
           + eol + eol + b"hi" + eol + body + b"--BOUND--" + eol)
    return raw.replace(b"\r\n", eol)


EXE_PART = (b'Content-Type: application/octet-stream; name="tool.exe"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n" + PE_B64)
TOOL = {("tool.exe", "extension .exe"), ("tool.exe", "PE header")}


# -- obsolete and duplicate header syntax -----------------------------------------------------------

def test_whitespace_before_colon_at_the_top_level():
    # The message that beat the old check: Python's parser saw no Content-Type at all.
    assert whys(mixed(EXE_PART, top=b'Content-Type : multipart/mixed; boundary="BOUND"')) == TOOL
    assert whys(samples.obsolete_syntax_exe()) == {("invoice.exe", "extension .exe"), ("invoice.exe", "PE header")}


def test_whitespace_before_colon_inside_parts():
    part = (b"Content-Type\t: application/octet-stream\r\nContent-Transfer-Encoding  : base64\r\n"
            b'Content-Disposition : attachment; filename="invoice.pdf"\r\n\r\n' + PE_B64)
    assert whys(mixed(part)) == {("invoice.pdf", "PE header")}


def test_header_name_folded_before_its_colon():
    top = b'Content-Type\r\n : multipart/mixed;\r\n\tboundary="BOUND"'
    assert whys(mixed(EXE_PART, top=top)) == TOOL


def test_folded_file_name():
    part = (b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n"
            b'  filename="a very long\r\n name.exe"\r\n\r\nx')
    assert [f.why for f in inspect(mixed(part)).findings] == ["extension .exe"]


@pytest.mark.parametrize("order", [0, 1])
def test_duplicate_content_type_either_one_may_win(order):
    fields = [b"Content-Type: text/plain", b'Content-Type: multipart/mixed; boundary="BOUND"']
    top = b"\r\n".join(fields[order:] + fields[:order])
    assert whys(mixed(EXE_PART, top=top)) == TOOL


def test_duplicate_content_type_with_two_boundaries():
    # Split on "OTHER", the body is one part of text; split on "BOUND", it holds the program.
    top = b'Content-Type: multipart/mixed; boundary="OTHER"\r\nContent-Type: multipart/mixed; boundary="BOUND"'
    assert whys(mixed(EXE_PART, top=top)) == TOOL


def test_duplicate_transfer_encoding():
    part = (b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: 7bit\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + PE_B64)
    assert whys(mixed(part)) == {("part 2", "PE header")}


def test_duplicate_disposition():
    part = (b'Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="a.pdf"\r\n'
            b'Content-Disposition: attachment; filename="a.scr"\r\n\r\nx')
    assert whys(mixed(part)) == {("a.scr", "extension .scr")}


def test_part_headers_without_blank_line():
    # Python (and clients like it) end the header block at the first line that is not a field.
    part = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n" + PE_B64
    assert whys(mixed(part)) == {("part 2", "PE header")}


def test_name_parameter_without_semicolon():
    part = b'Content-Type: application/octet-stream name="tool.exe"\r\n\r\nx'
    assert whys(mixed(part)) == {("tool.exe", "extension .exe")}


# -- uuencode, yEnc --------------------------------------------------------------------------------

def uu(data: bytes, name: bytes = b"tool.exe") -> bytes:
    lines = [b"begin 644 " + name]
    lines += [binascii.b2a_uu(data[i:i + 45]).rstrip(b"\n") for i in range(0, len(data), 45)]
    return b"\r\n".join(lines + [b"`", b"end", b""])


def test_uuencoded_block_in_a_plain_text_message():
    raw = b"From: a@b.example\r\nSubject: x\r\n\r\nHere it is:\r\n\r\n" + uu(pe_blob()) + b"\r\nbye\r\n"
    assert whys(raw) == TOOL


def test_uuencoded_block_in_a_text_part():
    part = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nsee below\r\n" + uu(pe_blob(), b"photo.jpg")
    assert whys(mixed(part)) == {("photo.jpg", "PE header")}


@pytest.mark.parametrize("cte", [b"x-uuencode", b"uuencode", b"X-UUE"])
def test_uuencode_transfer_encoding(cte):
    part = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: " + cte + b"\r\n\r\n" + uu(pe_blob())
    assert whys(mixed(part)) == TOOL


def test_uuencode_transfer_encoding_without_begin_line():
    body = b"\r\n".join(uu(pe_blob()).split(b"\r\n")[1:-3])
    part = b'Content-Type: application/octet-stream; name="x.dat"\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n' + body
    assert whys(mixed(part)) == {("x.dat", "PE header")}


def test_uuencode_base64_block():
    raw = (b"From: a@b.example\r\n\r\nbegin-base64 644 tool.exe\r\n" + PE_B64.replace(b"\n", b"\r\n")
           + b"====\r\n")
    assert whys(raw) == TOOL


def test_yenc_block():
    encoded = bytearray()
    for byte in pe_blob():
        byte = (byte + 42) & 0xFF
        encoded += bytes([0x3D, (byte + 64) & 0xFF]) if byte in (0, 10, 13, 0x3D) else bytes([byte])
    raw = (b"From: a@b.example\r\n\r\n=ybegin line=128 size=%d name=tool.exe\r\n" % len(pe_blob())
           + bytes(encoded) + b"\r\n=yend size=1\r\n")
    assert whys(raw) == TOOL


# -- TNEF (winmail.dat) -----------------------------------------------------------------------------

def tnef_part(stream: bytes) -> bytes:
    return (b'Content-Type: application/ms-tnef; name="winmail.dat"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            + base64.encodebytes(stream))


def test_tnef_attachment_title():
    assert whys(mixed(tnef_part(containers.tnef([{"title": b"SETUP.EXE", "data": b"x"}])))) == {
        ("winmail.dat/SETUP.EXE", "extension .exe")}


def test_tnef_long_file_name_and_pe_data():
    long_name = containers.tnef_properties({
        (containers.PT_UNICODE, containers.PR_ATTACH_LONG_FILENAME): "report.pdf.exe\0".encode("utf-16-le")})
    stream = containers.tnef([{"title": b"REPORT.PDF", "data": b"%PDF-1.4", "props": long_name},
                              {"title": b"notes.txt", "data": pe_blob()}])
    assert whys(mixed(tnef_part(stream))) == {("winmail.dat/report.pdf.exe", "extension .exe"),
                                               ("winmail.dat/notes.txt", "PE header")}


def test_tnef_embedded_message():
    inner = containers.tnef([{"title": b"TOOL.COM", "data": pe_blob()}])
    embedded = containers.tnef_properties({
        (containers.PT_OBJECT, containers.PR_ATTACH_DATA): containers.IID_IMESSAGE + inner})
    assert whys(mixed(tnef_part(containers.tnef([{"props": embedded}])))) == {
        ("winmail.dat/attachment 1/TOOL.COM", "extension .com"), ("winmail.dat/attachment 1/TOOL.COM", "PE header")}


@pytest.mark.parametrize("cut", [7, 30, 60, -3])
def test_tnef_truncated_or_damaged(cut):
    stream = containers.tnef([{"title": b"SETUP.EXE", "data": b"x" * 100}])
    assert inspect(mixed(tnef_part(stream[:cut]))).beyond == ""


# -- archives that cannot be looked into, 7z and RAR -------------------------------------------------

def zip_with_encrypted(name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(name, pe_blob())
    archive = bytearray(buf.getvalue())
    archive[6] |= 1                                    # local header: encrypted
    archive[archive.find(b"PK\x01\x02") + 8] |= 1      # central directory: encrypted
    return bytes(archive)


def test_zip_with_an_encrypted_member():
    assert whys(message(("scan.zip", zip_with_encrypted("scan.pdf")))) == {("scan.zip", ENCRYPTED)}


def test_7z_member_names_plain_and_packed_header():
    for header in ("plain", "lzma"):
        archive = containers.sevenzip(["readme.txt", "bin/setup.exe"], header=header)
        assert whys(message(("files.7z", archive))) == {("files.7z/bin/setup.exe", "extension .exe")}


def test_7z_encrypted_content_and_encrypted_names():
    archive = containers.sevenzip(["readme.txt", "setup.exe"], encrypted_data=True)
    assert whys(message(("a.7z", archive))) == {("a.7z/setup.exe", "extension .exe"), ("a.7z", ENCRYPTED)}
    archive = containers.sevenzip(["readme.txt", "setup.exe"], header="aes")
    assert whys(message(("b.7z", archive))) == {("b.7z", ENCRYPTED)}


def test_7z_header_too_big_to_unpack_is_beyond():
    archive = containers.sevenzip(["f%d.txt" % i for i in range(300)], header="lzma")
    result = inspect(message(("many.7z", archive)), Budgets(nested_archive=1000))
    assert result.findings == () and "7z archive" in result.beyond


def test_7z_inside_a_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("inner.7z", containers.sevenzip(["run.bat"]))
    assert whys(message(("outer.zip", buf.getvalue()))) == {("outer.zip/inner.7z/run.bat", "extension .bat")}


def test_rar4_names_unicode_names_and_encryption():
    assert whys(message(("a.rar", containers.rar4([(b"readme.txt", b"x"), (b"setup.exe", b"x")])))) == {
        ("a.rar/setup.exe", "extension .exe")}
    # WinRAR shows the unicode name ("setup.exe"), not the OEM one written before it ("setup.txt").
    unicode = containers.rar4([(b"setup.txt\0\x00\xc0\x04exe", b"x")], unicode=True)
    assert whys(message(("u.rar", unicode))) == {("u.rar/setup.exe", "extension .exe")}
    encrypted = containers.rar4([(b"scan.pdf", b"x")], encrypted_members=True)
    assert whys(message(("e.rar", encrypted))) == {("e.rar", ENCRYPTED)}
    hidden = containers.rar4([(b"scan.pdf", b"x")], encrypted_headers=True)
    assert whys(message(("h.rar", hidden))) == {("h.rar", ENCRYPTED)}


def test_rar5_names_and_encryption():
    assert whys(message(("a.rar", containers.rar5([("readme.txt", b"x"), ("dir/setup.exe", b"x")])))) == {
        ("a.rar/dir/setup.exe", "extension .exe")}
    assert whys(message(("e.rar", containers.rar5([("scan.pdf", b"x")], encrypted_members=True)))) == {
        ("e.rar", ENCRYPTED)}
    assert whys(message(("h.rar", containers.rar5([("scan.pdf", b"x")], encrypted_headers=True)))) == {
        ("h.rar", ENCRYPTED)}


@pytest.mark.parametrize("archive", [
    containers.sevenzip(["setup.exe"])[:40], containers.sevenzip(["setup.exe"], header="lzma")[:-5],
    containers.rar4([(b"setup.exe", b"x")])[:20], containers.rar5([("setup.exe", b"x")])[:15],
    b"7z\xbc\xaf\x27\x1c" + b"\xff" * 200, b"Rar!\x1a\x07\x01\x00" + b"\xff" * 200,
])
def test_damaged_archives_do_not_raise(archive):
    assert inspect(message(("x.bin", archive))).beyond == ""


def test_zip_unicode_path_extra_field():
    # 7-Zip and WinRAR show the name in the Info-ZIP Unicode Path field, not the one in the header.
    info = zipfile.ZipInfo("invoice.pdf")
    info.extra = struct.pack("<HHBI", 0x7075, 5 + len(b"invoice.exe"), 1, zlib.crc32(b"invoice.pdf")) + b"invoice.exe"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(info, b"%PDF-1.4")
    assert whys(message(("a.zip", buf.getvalue()))) == {("a.zip/invoice.exe", "extension .exe")}


def test_zip_after_other_content():
    # An archiver reads a zip from its end: a picture in front does not stop it.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("setup.exe", b"x")
    assert whys(message(("photo.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 500 + buf.getvalue()))) == {
        ("photo.jpg/setup.exe", "extension .exe")}


# -- the usual tricks ----------------------------------------------------------------------------------

def test_right_to_left_override_in_name():
    name = "invoice\u202efdp.exe"   # shown as "invoiceexe.pdf"
    assert whys(message((name, b"x"))) == {(name, "extension .exe")}


@pytest.mark.parametrize("name", ["scan.pdf", "backup.7z", "disk.iso", "data.rar"])
def test_pe_under_a_harmless_name(name):
    assert whys(message((name, pe_blob()))) == {(name, "PE header")}


def test_rfc2231_continuations_of_a_file_name():
    part = (b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n"
            b' filename*0="in"; filename*1="voice.pdf";\r\n filename*2=".exe"\r\n\r\nx')
    assert whys(mixed(part)) == {("invoice.pdf.exe", "extension .exe")}


def test_name_cut_at_nul():
    part = b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''setup.exe%00.txt\r\n\r\nx"
    assert [f.why for f in inspect(mixed(part)).findings] == ["extension .exe"]


def test_quoted_printable_pe():
    part = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + quopri.encodestring(pe_blob())
    assert whys(mixed(part)) == {("part 2", "PE header")}


@pytest.mark.parametrize("body", [
    PE_B64.replace(b"\n", b"\r\n!*\t"),               # garbage between lines
    PE_B64.rstrip(b"=\n"),                            # padding missing
    b"\r\n".join(base64.encodebytes(pe_blob()[i:i + 30]).strip() for i in range(0, len(pe_blob()), 30)),  # padded pieces
])
def test_damaged_base64(body):
    part = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body
    assert whys(mixed(part)) == {("part 2", "PE header")}


@pytest.mark.parametrize("cte", [b"Base64 ", b"BASE64", b" base64 (binary data)", b'"base64"'])
def test_odd_spelling_of_base64(cte):
    part = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding:" + cte + b"\r\n\r\n" + PE_B64
    assert whys(mixed(part)) == {("part 2", "PE header")}


def test_missing_close_delimiter():
    raw = mixed(EXE_PART)
    assert whys(raw[:raw.rindex(b"--BOUND--")]) == TOOL


def test_parts_after_the_close_delimiter():
    raw = mixed() + b"--BOUND\r\n" + EXE_PART + b"\r\n--BOUND--\r\n"
    assert whys(raw) == TOOL


def test_multipart_without_boundary_parameter():
    assert whys(mixed(EXE_PART, top=b"Content-Type: multipart/mixed")) == TOOL


def test_digest_parts_are_messages():
    inner = message(("tool.exe", pe_blob()))
    top = b'Content-Type: multipart/digest; boundary="BOUND"'
    raw = mixed(inner, top=top)
    assert whys(raw) == TOOL


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_line_ends_and_no_mime_version(eol):
    raw = mixed(EXE_PART, eol=eol).replace(b"MIME-Version: 1.0" + eol, b"")
    assert whys(raw) == TOOL


def test_attached_message_plain_and_base64():
    inner = message(("tool.exe", pe_blob()))
    plain = mixed(b"Content-Type: message/rfc822\r\n\r\n" + inner)
    encoded = mixed(b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                    + base64.encodebytes(inner))
    assert whys(plain) == TOOL
    assert whys(encoded) == {("part 2/tool.exe", "extension .exe"), ("part 2/tool.exe", "PE header")}


# -- Exim's messages that carry a copy --------------------------------------------------------------

ORIGINAL = mixed(EXE_PART, eol=b"\n")


def test_exim_bounce_is_mime_and_its_copy_is_inspected():
    # Exim 4.96's failure report, as generated by the installed Exim (deliver.c).
    raw = (b"From: Mail Delivery System <Mailer-Daemon@host.test>\nTo: alice@host.test\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=1796292701-eximdsn-281268375\n"
           b"MIME-Version: 1.0\nSubject: Mail delivery failed: returning message to sender\n\n"
           b"--1796292701-eximdsn-281268375\nContent-type: text/plain; charset=us-ascii\n\n"
           b"This message was created automatically by mail delivery software.\n\n"
           b"--1796292701-eximdsn-281268375\nContent-type: message/delivery-status\n\n"
           b"Reporting-MTA: dns; host.test\n\nAction: failed\nFinal-Recipient: rfc822;bob@fail.test\nStatus: 5.0.0\n\n"
           b"--1796292701-eximdsn-281268375\nContent-type: message/rfc822\n\n" + ORIGINAL
           + b"\n--1796292701-eximdsn-281268375--\n")
    assert whys(raw) == TOOL


def test_exim_delay_warning_carries_only_headers():
    raw = (b"From: Mail Delivery System <Mailer-Daemon@host.test>\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=B1\nMIME-Version: 1.0\n"
           b"Subject: Warning: message 1xZ3n8-0004ma-1Q delayed 3 minutes\n\n"
           b"--B1\nContent-type: text/plain; charset=us-ascii\n\nNo action is required on your part.\n\n"
           b"--B1\nContent-type: text/rfc822-headers\n\n" + ORIGINAL.split(b"\n\n", 1)[0] + b"\n\n\n--B1--\n")
    assert inspect(raw) == Inspection(())


@pytest.mark.parametrize("marker", [
    # moan.c: "Mail failure - malformed recipient address" (sendmail -t with a bad To:), as generated
    b"------ This is a copy of your message, including all the headers. ------\n\n",
    b"------ This is a copy of your message, including all the headers.\n"
    b"------ No more than 100K characters of the body are included.\n\n",
    # transports/autoreply.c return_message (and Exim's text bounces before 4.83)
    b"------ This is a copy of the message, including all the headers.\n\n",
    b"------ This is a copy of the message, including all the headers.\n"
    b"------ The body of the message is 20480 characters long; only the first\n"
    b"------ 10000 or so are included here.\n\n",
])
def test_exim_plain_text_copy(marker):
    raw = (b"From: Mail Delivery System <Mailer-Daemon@host.test>\nTo: alice@host.test\n"
           b"Subject: Mail failure - malformed recipient address\n\n"
           b"A message that you sent contained one or more recipient addresses that were\n"
           b"incorrectly constructed:\n\n  bad address <<>>@@: missing or malformed local part\n\n" + marker + ORIGINAL)
    assert whys(raw) == {("part 1/tool.exe", "extension .exe"), ("part 1/tool.exe", "PE header")}


def test_exim_copy_of_a_body_without_headers():
    body = ORIGINAL.split(b"\n\n", 1)[1]
    raw = (b"From: alice@host.test\nSubject: Re: away\n\nI am away.\n\n"
           b"------ This is a copy of the body of the message, without the headers.\n\n" + body)
    assert whys(raw) == {("part 1/tool.exe", "extension .exe"), ("part 1/tool.exe", "PE header")}


# -- budgets -------------------------------------------------------------------------------------------

part_bomb = samples.part_bomb


def test_precheck_refuses_a_part_bomb():
    bomb = part_bomb(1_000_000)
    assert precheck(bomb) == "more than 1000 MIME parts"
    assert inspect(bomb) == Inspection((), "more than 1000 MIME parts")
    assert find_executables(bomb) == [Finding("message", "not fully inspected: more than 1000 MIME parts")]


def test_precheck_counts_declared_boundaries_only():
    text = b"From: a@b.example\r\nContent-Type: text/plain\r\n\r\n" + b"-- a comment line\r\n" * 5000
    assert precheck(text) == "" and inspect(text) == Inspection(())
    assert precheck(part_bomb(999)) == "" and inspect(part_bomb(999)) == Inspection(())


@pytest.mark.parametrize("boundary", [b'boundary="b"', b"BOUNDARY=b", b"boundary*=us-ascii''b",
                                      b'boundary*0="b"', b'boundary = "b"'])
def test_precheck_finds_boundaries_however_declared(boundary):
    bomb = part_bomb(2000).replace(b'boundary="b"', boundary)
    assert precheck(bomb) == "more than 1000 MIME parts"


def test_precheck_size():
    assert precheck(b"x" * 2001, Budgets(max_bytes=2000)) == "larger than 2000 bytes"
    assert inspect(message(("a.exe", b"x" * 3000)), Budgets(max_bytes=2000)).beyond == "larger than 2000 bytes"


def test_parts_budget_inside_an_encoded_message():
    # precheck cannot see into base64; the walk counts every part it meets and stops.
    inner = part_bomb(1500)
    raw = mixed(EXE_PART, b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + base64.encodebytes(inner))
    assert precheck(raw) == ""
    result = inspect(raw)
    assert set(result.findings) == {Finding(*f) for f in TOOL} and result.beyond == "more than 1000 MIME parts"


def test_a_spent_parts_budget_is_never_clean():
    raw = mixed(b"Content-Type: text/plain\r\n\r\na", b"Content-Type: text/plain\r\n\r\nb", EXE_PART)
    result = inspect(raw, Budgets(max_parts=2))
    assert result == Inspection((), "more than 2 MIME parts")
    assert find_executables(raw)   # the defaults see the program
    assert whys(raw, Budgets(max_parts=4)) == TOOL


def test_readings_that_multiply_stay_within_the_parts_budget():
    # A line that is not a field in each header block: two readings reach the next level, at every
    # level, 2**12 in all were it not for the parts budget.
    raw = message(("tool.exe", pe_blob()))
    for _ in range(12):
        raw = b"Content-Type: message/rfc822\r\nJUNK\r\nContent-Type: message/rfc822\r\n\r\n" + raw
    result = inspect(raw)
    assert result.beyond == "more than 1000 MIME parts" and set(result.findings) == {Finding(*f) for f in TOOL}


def test_depth_budget():
    body = EXE_PART
    for level in range(31):
        b = b"b%d" % level
        body = b'Content-Type: multipart/mixed; boundary="' + b + b'"\r\n\r\n--' + b + b"\r\n" + body + b"\r\n--" + b + b"--\r\n"
    raw = b"From: a@b\r\nMIME-Version: 1.0\r\n" + body
    assert inspect(raw) == Inspection((), "MIME nesting deeper than 30")
    assert whys(raw, Budgets(max_depth=32)) == TOOL


def test_time_budget_checked_between_parts():
    ticks = count()
    clock = lambda: next(ticks) * 1.0   # noqa: E731 - every look at the clock is a second later
    result = inspect(mixed(*[b"Content-Type: text/plain\r\n\r\nx"] * 20, EXE_PART), clock=clock)
    assert result.findings == () and result.beyond == "took more than 5 s to inspect"


# -- ordinary mail: fully inspected, nothing found ------------------------------------------------------

def test_plain_text_ham():
    assert inspect(samples.ham()) == Inspection(())


def newsletter(images: int) -> bytes:
    """multipart/alternative: text, and HTML related to its inline images."""
    msg = EmailMessage()
    msg["From"], msg["Subject"] = "news@shop.example", "Offers"
    msg.set_content("Offers of the week")
    msg.add_alternative("<html>" + "".join('<img src="cid:i%d">' % i for i in range(images)) + "</html>",
                        subtype="html")
    html = msg.get_payload()[1]
    for i in range(images):
        html.add_related(os.urandom(3000), maintype="image", subtype="png", cid="<i%d>" % i, filename="i%d.png" % i)
    return bytes(msg)


def test_html_with_inline_images():
    assert inspect(newsletter(3)) == Inspection(())


def test_a_newsletter_of_200_parts():
    assert inspect(newsletter(200)) == Inspection(())


def test_a_20_mb_pdf():
    assert inspect(message(("report.pdf", b"%PDF-1.7\n" + os.urandom(20 * 1024 * 1024)))) == Inspection(())


def test_a_chain_of_forwarded_messages():
    raw = message(("report.pdf", b"%PDF-1.7\n"))
    for n in range(10):
        outer = EmailMessage()
        outer["From"], outer["Subject"] = "fwd%d@example.com" % n, "Fwd: report"
        outer.set_content("forwarding")
        outer.add_alternative("<p>forwarding</p>", subtype="html")
        outer.add_attachment(message_from_bytes(raw, policy=policy.default))
        raw = bytes(outer)
    assert inspect(raw) == Inspection(())


def test_sql_dump_attached_as_text():
    dump = b"".join(b"-- Table structure for table `t%d`\n--\n\nCREATE TABLE t%d (id int);\n" % (i, i) for i in range(3000))
    part = b'Content-Type: text/plain; name="site.sql"\r\nContent-Disposition: attachment; filename="site.sql"\r\n\r\n' + dump
    assert inspect(mixed(part)) == Inspection(())


# -- hostile bytes ---------------------------------------------------------------------------------------

CORPUS = [
    mixed(EXE_PART, top=b'Content-Type : multipart/mixed; boundary="BOUND"'),
    mixed(tnef_part(containers.tnef([{"title": b"SETUP.EXE", "data": pe_blob(),
                                      "props": containers.tnef_properties({(containers.PT_UNICODE, 0x3707): b"a\0"})}]))),
    message(("a.7z", containers.sevenzip(["a.txt", "b.exe"], header="lzma")),
            ("b.rar", containers.rar4([(b"setup.txt\0\x00\xc0\x04exe", b"x")], unicode=True)),
            ("c.rar", containers.rar5([("a.exe", b"x")], encrypted_members=True))),
    b"From: a@b.example\n\n" + uu(pe_blob()) + b"\n------ This is a copy of your message, including all the headers. ------\n\n"
    + ORIGINAL,
]


@pytest.mark.parametrize("seed", range(40))
def test_damaged_messages_never_raise(seed):
    rng = random.Random(seed)
    raw = bytearray(CORPUS[seed % len(CORPUS)])
    for _ in range(rng.randrange(1, 40)):
        at = rng.randrange(len(raw))
        choice = rng.randrange(3)
        if choice == 0:
            raw[at] = rng.randrange(256)
        elif choice == 1:
            del raw[at:at + rng.randrange(1, 50)]
        else:
            raw[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 20)))
    result = inspect(bytes(raw))
    # A bug would show as "could not be inspected (SomeError)": damaged input is not a bug.
    assert isinstance(result, Inspection) and "could not be inspected" not in result.beyond
