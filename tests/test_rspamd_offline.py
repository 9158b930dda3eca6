"""The shipped Rspamd config works offline: a private Rspamd (devtools.rspamd.RspamdProcess, the shipped
rspamd-standalone.conf + local.d/override.d) rejects GTUBE, passes plain ham, runs none of the
network modules and listens on the production unix sockets only (no TCP, no UDP). How long a scan
takes is the bench's figure (``make bench``).

Runs as root with Debian's rspamd (``make deps``), as the whole suite does: without them it fails."""
from __future__ import annotations

import email.utils
import os
import pwd
import re
import shutil
import subprocess
import time

import pytest

from devtools.rspamd import RspamdProcess
from devtools.waiting import eventually

# Symbols of the modules local.d disables (fuzzy_check, rbl/surbl/emails, dkim, spf, dmarc, arc, asn,
# phishing, whitelist, mx_check, hfilter, greylist, neural, ratelimit, replies, reputation).
FORBIDDEN = re.compile(
    r"^(HFILTER_|R_SPF_|SPF_|R_DKIM_|DKIM_|DMARC_|ARC_|FUZZY_|RBL_|RWL_|RCVD_IN_|RECEIVED_|DWL_|"
    r"SPAMHAUS|URIBL_|SURBL_|DBL_|SEM_|MSBL_|RSPAMD_URIBL|RSPAMD_EMAILBL|MAILSPIKE|BLOCKLISTDE|"
    r"PHISH|ASN|WHITELIST_|BLACKLIST_|MX_|GREYLIST|NEURAL_|RATELIMIT|REPLY|SENDER_REP|"
    r"FREEMAIL_|DISPOSABLE_)"
)


def _ham() -> bytes:
    return (
        "From: Sender <sender@example.com>\r\n"
        "To: Recipient <recipient@example.org>\r\n"
        "Subject: Lunch tomorrow\r\n"
        f"Date: {email.utils.formatdate()}\r\n"
        "Message-ID: <ham-offline-test@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "Hi,\r\n\r\nshall we meet for lunch tomorrow at noon, at the usual place?\r\n\r\nCheers\r\n"
    ).encode()


HAM_ENVELOPE = dict(From="sender@example.com", Rcpt="recipient@example.org", IP="127.0.0.1",
                    User="demo1", Hostname="localhost")

GTUBE = (
    b"From: sender@example.com\r\nTo: recipient@example.org\r\nSubject: gtube\r\n"
    b"Message-ID: <gtube-offline-test@example.com>\r\n\r\n"
    b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"
)

# Bait for the network modules: external relay IP and HELO, a DKIM signature, URLs, shorteners,
# a freemail sender, a phishing-looking link.
PROBE = (
    b"Received: from mail.example.net (mail.example.net [203.0.113.5])\r\n"
    b"\tby mx.example.org with ESMTP id 1abcde; Tue, 24 Nov 2026 10:00:00 +0000\r\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; d=gmail.com; s=20210112; c=relaxed/relaxed;\r\n"
    b"\th=from:to:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
    b"From: Alice <alice@gmail.com>\r\n"
    b"To: bob@yahoo.com\r\n"
    b"Subject: your account, see http://bit.ly/abc\r\n"
    b"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <probe-offline-test@gmail.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    b'<html><body><a href="http://paypal.example.com.evil.example.ru/login">https://www.paypal.com/</a>'
    b" and http://tinyurl.com/xyz and https://example.org/page</body></html>\r\n"
)
PROBE_ENVELOPE = dict(From="alice@gmail.com", Rcpt="bob@yahoo.com", IP="203.0.113.5",
                      Helo="mail.example.net", Hostname="mail.example.net")


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    proc = RspamdProcess(tmp_path_factory.mktemp("rspamd"))
    started = time.monotonic()
    proc.start()
    print(f"\nrspamd ready in {time.monotonic() - started:.2f} s at {proc.url} (log {proc.log_path})")
    yield proc
    proc.stop()


def _log_line(rspamd: RspamdProcess, message_id: str) -> str:
    """The task log line of a scanned message (written before the reply; retry briefly anyway)."""
    def found() -> str:
        return next((line for line in rspamd.log_path.read_text(errors="replace").splitlines()
                     if "rspamd_task_write_log" in line and f"<{message_id}>" in line), "")
    return eventually(found, f"the task log line for {message_id}", 3, describe=rspamd.log_tail)


def test_gtube_is_rejected(rspamd):
    result = rspamd.scan(GTUBE, **HAM_ENVELOPE)
    assert result["action"] == "reject"
    assert result["score"] >= 15


def test_ham_is_not_actioned_every_time(rspamd):
    """What a user sees of it: the same ham, scanned over and over (a new connection each), is never
    actioned."""
    results = [rspamd.scan(_ham(), **HAM_ENVELOPE) for _ in range(31)]
    assert [r for r in results if r["action"] != "no action"] == []


def test_no_symbols_from_disabled_modules(rspamd):
    ham = rspamd.scan(_ham(), **HAM_ENVELOPE)
    probe = rspamd.scan(PROBE, **PROBE_ENVELOPE)
    print(f"\nprobe: {probe['action']} {probe['score']} {sorted(probe['symbols'])}")
    for result in (ham, probe):
        bad = sorted(s for s in result["symbols"] if FORBIDDEN.match(s))
        assert not bad, f"symbols of disabled modules: {bad}"


def test_no_dns_or_remote_maps(rspamd):
    rspamd.scan(PROBE, **PROBE_ENVELOPE)
    line = _log_line(rspamd, "probe-offline-test@gmail.com")
    assert re.search(r"dns req: 0\b", line), line
    log = rspamd.log_path.read_text(errors="replace")
    for needle in ("maps.rspamd.com", "updates.rspamd.com", "cannot resolve", "fuzzy1.rspamd.com",
                   "cannot connect to redis"):
        assert needle not in log, f"{needle!r} in rspamd.log"


def _group_pids(pgid: int) -> set[int]:
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ...
                pids.add(int(entry))
    return pids


def _listeners(pids: set[int], *kinds: str) -> set[str]:
    """Local addresses of the sockets ``pids`` listen on (``ss`` kinds: -t -u -w -x)."""
    out = subprocess.run(["ss", "-H", "-l", "-n", "-p", *kinds], capture_output=True, text=True, check=True).stdout
    return {line.split()[4] for line in out.splitlines()   # Netid State Recv-Q Send-Q Local Peer Process
            if any(f"pid={pid}," in line for pid in pids)}


def test_listens_on_the_production_unix_sockets_only(rspamd):
    stat = rspamd.controller_get("/stat")   # the controller's socket: root needs no password
    assert stat["version"].startswith("3.")

    assert shutil.which("ss"), "ss missing: make deps installs iproute2"
    pids = _group_pids(rspamd.pid)
    assert rspamd.pid in pids
    inet = _listeners(pids, "-t", "-u", "-w")
    unix = _listeners(pids, "-x")
    print(f"\nrspamd (pids {sorted(pids)}) listens on {sorted(inet | unix)}")
    assert inet == set()
    assert unix == {str(rspamd.socket), str(rspamd.controller_socket), str(rspamd.rundir / "rspamd.sock")}
    assert rspamd.socket_problem() == ""   # _rspamd:_imunifyemail 0660, as rpm/rspamd/override.d says
    control = os.stat(rspamd.rundir / "rspamd.sock")   # rspamadm's control socket: Rspamd's alone
    assert control.st_mode & 0o777 == 0o600 and control.st_uid == pwd.getpwnam("_rspamd").pw_uid
