"""Windows executable detection: names, PE headers, ZIPs, nesting, and hostile input."""
import base64
import io
import struct
import zipfile
from email.message import EmailMessage

import pytest

from imunifyemail.core import winexec
from imunifyemail.core.winexec import EXECUTABLE_EXTENSIONS, Budgets, Finding, find_executables, inspect


def pe_blob(junk: bytes = b"\x90" * 200) -> bytes:
    """Smallest thing that passes the check: MZ, e_lfanew=0x40 at 0x3C, PE\\0\\0 there."""
    return b"MZ" + b"\0" * (0x3C - 2) + struct.pack("<I", 0x40) + b"PE\0\0" + junk


def zip_bytes(members, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def message(*attachments) -> bytes:
    msg = EmailMessage()
    msg["From"] = "alice@example.com"
    msg["To"] = "bob@example.org"
    msg["Subject"] = "hello"
    msg.set_content("Hi Bob,\nsee attached.\n")
    for name, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def raw_message(part_headers: bytes, body: bytes) -> bytes:
    return (b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="BOUND"\r\n\r\n'
            b"--BOUND\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
            b"--BOUND\r\n" + part_headers + b"\r\n\r\n" + body + b"\r\n--BOUND--\r\n")


def whys(raw: bytes):
    return {(f.location, f.why) for f in find_executables(raw)}


def test_plain_text_ham():
    assert find_executables(message()) == []


def test_pdf_attachment_ham():
    assert find_executables(message(("report.pdf", b"%PDF-1.7\n" + b"x" * 5000))) == []


def test_exe_by_name():
    assert whys(message(("setup.exe", b"not really a program"))) == {("setup.exe", "extension .exe")}


def test_pe_content_under_harmless_name():
    assert whys(message(("invoice.pdf", pe_blob()))) == {("invoice.pdf", "PE header")}


def test_exe_by_name_and_content_reports_both():
    assert whys(message(("setup.exe", pe_blob()))) == {
        ("setup.exe", "extension .exe"), ("setup.exe", "PE header")}


def test_mz_text_without_pe_signature_is_not_executable():
    text = b"MZ is the name of our band\n" + b"la " * 100
    assert find_executables(message(("notes.txt", text))) == []


def test_mz_with_e_lfanew_out_of_bounds():
    blob = b"MZ" + b"\0" * (0x3C - 2) + struct.pack("<I", 0xFFFFFFF0) + b"\0" * 100
    assert find_executables(message(("data.bin", blob))) == []


def test_pe_in_nameless_part():
    raw = raw_message(b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64",
                      base64.encodebytes(pe_blob()))
    assert whys(raw) == {("part 2", "PE header")}


@pytest.mark.parametrize("ext", sorted(EXECUTABLE_EXTENSIONS))
def test_every_extension(ext):
    assert whys(message(("file." + ext, b"x"))) == {("file." + ext, "extension ." + ext)}


@pytest.mark.parametrize("name", ["X.EXE.", "x.exe ", "x.exe. . ", "Invoice.PdF.Exe"])
def test_windows_trailing_dots_spaces_and_case(name):
    assert [f.why for f in find_executables(message((name, b"x")))] == ["extension .exe"]


@pytest.mark.parametrize("name", ["exe", "x.exe.txt", "x.exe_", "x.docx", "x"])
def test_harmless_names(name):
    assert find_executables(message((name, b"x"))) == []


def test_rfc2231_filename():
    raw = raw_message(b"Content-Type: application/octet-stream\r\n"
                      b"Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.exe", b"x")
    assert whys(raw) == {("r\u00e9sum\u00e9.exe", "extension .exe")}


def test_rfc2231_continuations_in_content_type_name():
    raw = raw_message(b"Content-Type: application/octet-stream; name*0*=UTF-8''set; name*1=\"up.e\";"
                      b" name*2=\"xe\"", b"x")
    assert whys(raw) == {("setup.exe", "extension .exe")}


def test_rfc2047_filename():
    raw = raw_message(b"Content-Type: application/octet-stream\r\n"
                      b'Content-Disposition: attachment; filename="=?UTF-8?B?0YHRh9C10YIuZXhl?="', b"x")
    assert whys(raw) == {("\u0441\u0447\u0435\u0442.exe", "extension .exe")}


def test_rfc2047_broken_charset_falls_back_to_raw_name():
    raw = raw_message(b"Content-Type: application/octet-stream\r\n"
                      b'Content-Disposition: attachment; filename="=?no-such-charset?Q?a?=.exe"', b"x")
    assert [f.why for f in find_executables(raw)] == ["extension .exe"]


def test_content_type_name_counts_even_when_filename_differs():
    raw = raw_message(b'Content-Type: application/octet-stream; name="tool.scr"\r\n'
                      b'Content-Disposition: attachment; filename="tool.pdf"', b"x")
    assert whys(raw) == {("tool.scr", "extension .scr")}


def test_zipped_exe_by_name_only():
    archive = zip_bytes([("readme.txt", b"hello"), ("bin/setup.exe", b"not a program")])
    assert whys(message(("invoice.zip", archive))) == {("invoice.zip/bin/setup.exe", "extension .exe")}


def test_zipped_pe_named_txt():
    archive = zip_bytes([("readme.txt", pe_blob())])
    assert whys(message(("invoice.zip", archive))) == {("invoice.zip/readme.txt", "PE header")}


def test_stored_zip_detected_by_content_without_zip_name():
    archive = zip_bytes([("a.txt", pe_blob())], compression=zipfile.ZIP_STORED)
    assert whys(message(("photo.jpg", archive))) == {("photo.jpg/a.txt", "PE header")}


def test_pe_deep_in_large_member_header_window():
    blob = b"MZ" + b"\0" * (0x3C - 2) + struct.pack("<I", 60000) + b"\0" * (60000 - 0x40) + b"PE\0\0"
    archive = zip_bytes([("data.bin", blob + b"\0" * 500000)])
    assert whys(message(("a.zip", archive))) == {("a.zip/data.bin", "PE header")}


def test_pe_signature_beyond_header_window_in_zip_is_not_read():
    blob = b"MZ" + b"\0" * (0x3C - 2) + struct.pack("<I", 70000) + b"\0" * (70000 - 0x40) + b"PE\0\0"
    assert find_executables(message(("a.zip", zip_bytes([("data.bin", blob)])))) == []
    # the attachment itself is already decoded in memory: checked whole
    assert whys(message(("data.bin", blob))) == {("data.bin", "PE header")}


def test_bzip2_member_name_checked_content_not_read():
    # zipfile does not bound bzip2/lzma output: a 1 KB member can inflate to gigabytes.
    archive = zip_bytes([("a.txt", pe_blob()), ("b.exe", b"x")], compression=zipfile.ZIP_BZIP2)
    assert whys(message(("a.zip", archive))) == {("a.zip/b.exe", "extension .exe")}


def test_member_limit_still_checks_every_name():
    archive = zip_bytes([("a.txt", b"x"), ("b.txt", pe_blob()), ("c.exe", b"x")])
    result = inspect(message(("a.zip", archive)), Budgets(archive_members=1))
    assert set(result.findings) == {Finding("a.zip/c.exe", "extension .exe")}
    assert result.beyond == "an archive with more than 1 members"


def test_spent_read_budget_still_checks_names():
    archive = zip_bytes([("b.txt", pe_blob()), ("c.exe", b"x")])
    result = inspect(message(("a.zip", archive), ("top.doc", pe_blob())), Budgets(archive_read=0))
    assert set(result.findings) == {Finding("a.zip/c.exe", "extension .exe"), Finding("top.doc", "PE header")}
    assert result.beyond == "archives expand to more than 0 bytes"


def test_zip_in_zip():
    inner = zip_bytes([("payload.dat", pe_blob()), ("run.bat", b"@echo off")])
    outer = zip_bytes([("inner.zip", inner)])
    assert whys(message(("outer.zip", outer))) == {
        ("outer.zip/inner.zip/payload.dat", "PE header"),
        ("outer.zip/inner.zip/run.bat", "extension .bat"),
    }


def test_zip_nesting_is_bounded():
    archive = zip_bytes([("deep.doc", pe_blob())])
    for level in range(5):
        archive = zip_bytes([("level%d.zip" % level, archive)])
    assert inspect(message(("nest.zip", archive))) == winexec.Inspection((), "archives nested deeper than 3")
    archive = zip_bytes([("deep.doc", pe_blob())])
    for level in range(3):
        archive = zip_bytes([("level%d.zip" % level, archive)])
    result = inspect(message(("nest.zip", archive)))
    assert [f.why for f in result.findings] == ["PE header"] and result.beyond == ""


def test_encrypted_member_name_still_counts():
    # A member flagged encrypted (general purpose bit 0): zipfile refuses to read it.
    archive = bytearray(zip_bytes([("setup.exe", pe_blob()), ("doc.txt", pe_blob())],
                                  compression=zipfile.ZIP_STORED))
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while True:
            start = archive.find(sig, start)
            if start < 0:
                break
            archive[start + flag_at] |= 1
            start += 4
    assert whys(message(("secret.zip", bytes(archive)))) == {
        ("secret.zip/setup.exe", "extension .exe"), ("secret.zip", "encrypted archive, cannot be inspected")}


@pytest.mark.parametrize("cut", [10, 100, -30, -5])
def test_corrupt_zip_does_not_raise(cut):
    archive = zip_bytes([("setup.exe", pe_blob()), ("a.txt", b"x" * 1000)])
    truncated = archive[:cut]
    assert whys(message(("broken.zip", truncated))) == set()


def test_zip_with_bad_crc_still_inspected():
    archive = bytearray(zip_bytes([("a.txt", pe_blob())], compression=zipfile.ZIP_STORED))
    archive[14] ^= 0xFF  # CRC-32 in the local header
    central = archive.find(b"PK\x01\x02")
    archive[central + 16] ^= 0xFF  # and in the central directory
    assert whys(message(("a.zip", bytes(archive)))) == {("a.zip/a.txt", "PE header")}


def test_zip_garbage_named_zip():
    assert find_executables(message(("x.zip", b"PK\x03\x04" + b"\xff" * 300))) == []


def test_attached_message_carrying_exe():
    inner = EmailMessage()
    inner["From"] = "mallory@example.net"
    inner["Subject"] = "fwd"
    inner.set_content("see attached")
    inner.add_attachment(pe_blob(), maintype="application", subtype="octet-stream", filename="tool.exe")
    outer = EmailMessage()
    outer["From"] = "alice@example.com"
    outer.set_content("forwarding")
    outer.add_attachment(inner)
    assert whys(outer.as_bytes()) == {("tool.exe", "extension .exe"), ("tool.exe", "PE header")}


def test_base64_encoded_attached_message():
    inner = message(("tool.exe", pe_blob()))
    raw = raw_message(b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64",
                      base64.encodebytes(inner))
    assert whys(raw) == {("part 2/tool.exe", "extension .exe"), ("part 2/tool.exe", "PE header")}


def test_deeply_nested_multiparts():
    body = b'Content-Type: application/octet-stream; name="a.exe"\r\n\r\nx\r\n'
    for level in range(29):
        b = b"b%d" % level
        body = (b'Content-Type: multipart/mixed; boundary="' + b + b'"\r\n\r\n--' + b + b"\r\n"
                + body + b"\r\n--" + b + b"--\r\n")
    assert whys(b"From: a@b\r\nMIME-Version: 1.0\r\n" + body) == {("a.exe", "extension .exe")}


def test_absurd_nesting_fails_closed():
    body = b"x"
    for level in range(3000):
        b = b"b%d" % level
        body = (b'Content-Type: multipart/mixed; boundary="' + b + b'"\r\n\r\n--' + b + b"\r\n"
                + body + b"\r\n--" + b + b"--\r\n")
    findings = find_executables(b"From: a@b\r\nMIME-Version: 1.0\r\n" + body)
    assert [f.location for f in findings] == ["message"]


def test_broken_base64():
    raw = raw_message(b'Content-Type: application/octet-stream; name="a.dat"\r\n'
                      b"Content-Transfer-Encoding: base64", b"TVqQ!!!@@@###\r\nnot base64 at all===\r\n==")
    assert find_executables(raw) == []


def test_missing_boundary_and_8bit_junk_headers():
    raw = (b"From: \xff\xfe\xfd\r\nSubject: =?bogus?Q?\xc3\x28?=\r\nContent-Type: multipart/mixed\r\n"
           b"Content-Disposition: attachment; filename=\"\xff\xfe.exe\"\r\n\r\n--nope\r\nbody\r\n")
    assert [f.why for f in find_executables(raw)] == ["extension .exe"]


@pytest.mark.parametrize("raw", [
    b"",
    b"\r\n\r\n",
    bytes(range(256)) * 50,
    b"\x00" * 10000,
    b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!",
    b"Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n",
])
def test_garbage_never_raises(raw):
    assert all(isinstance(f, Finding) for f in find_executables(raw))


def test_large_message_completes():
    big = bytes(range(256)) * (15 * 1024 * 1024 // 256)  # ~20 MB once base64-encoded
    raw = message(("backup.tar", big), ("photos.zip", zip_bytes([("a.jpg", big[:5_000_000])])))
    assert len(raw) > 20_000_000
    assert find_executables(raw) == []


@pytest.mark.parametrize("head", [
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n",          # binary can hide here
    b"Content-Type: text/plain; name=\"setup.exe\"\r\n",                              # a named part
    b"Content-Type: text/plain\r\nContent-Disposition: attachment; filename=a.exe\r\n",
    b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n",
])
def test_only_plain_text_is_let_through_unparsed(head):
    body = base64.encodebytes(pe_blob()) if b"base64" in head else b"MZ text\r\n"
    found = find_executables(b"From: a@b.example\r\n" + head + b"\r\n" + body)
    assert found, head


def test_plain_text_has_no_executables_to_find():
    raw = b"From: a@b.example\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nMZ"
    assert find_executables(raw) == []
