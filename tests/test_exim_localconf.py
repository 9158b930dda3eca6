"""Our blocks in exim.conf.local as text, and reading Exim's spool header files (no Exim needed)."""

import pytest

from imunifyemail.exim import localconf, spool

BLOCKS = {"router": ("POSTMAILCOUNT", "imunifyemail_scan:\n    driver = accept\n"),
          "transport": ("TRANSPORTSTART", "imunifyemail_example:\n    driver = smtp\n")}


@pytest.mark.parametrize("text", [
    localconf.SKELETON,
    "@CONFIG@\nx = 1\n\n@POSTMAILCOUNT@\nadmin:\n  driver = accept\n\n@TRANSPORTSTART@",   # no final newline
    "%RETRYBLOCK%\n* * F,1h,1m\n@POSTMAILCOUNT@\r\nsmart:\n  driver = manualroute\r\n",       # CRLF lines
    "",                                                                                     # empty file
    "@ROUTERSTART@\n",                                                                      # markers missing
    "@POSTMAILCOUNT@",                                                                      # only a bare marker
])
def test_insert_then_strip_gives_back_every_byte(text):
    patched = localconf.insert(text, BLOCKS)
    assert sorted(localconf.blocks_present(patched)) == ["router", "transport"]
    assert localconf.strip(patched) == text
    assert localconf.insert(localconf.strip(patched), BLOCKS) == patched   # idempotent


def test_blocks_follow_their_marker_and_a_missing_marker_comes_with_its_block():
    patched = localconf.insert("@POSTMAILCOUNT@\nadmin:\n  driver = accept\n", BLOCKS)
    lines = patched.splitlines()
    assert lines[0] == "@POSTMAILCOUNT@" and lines[1].startswith("# BEGIN imunifyemail router")
    assert lines.index("admin:") > lines.index("# END imunifyemail router")
    tail = patched[patched.index("# BEGIN imunifyemail transport"):]
    assert tail.splitlines()[1] == "@TRANSPORTSTART@"


def test_a_block_without_its_end_line_is_an_error_not_a_guess():
    broken = localconf.insert(localconf.SKELETON, BLOCKS).replace("# END imunifyemail router\n", "")
    with pytest.raises(localconf.LocalConfError, match="no END line"):
        localconf.strip(broken)


HEADER_FILE = b"""1xWA0I-00008L-06-H
Debian-exim 102 105
<a@demo1.test>
1795601610 0
-received_time_usec .033707
-aclm _note 12
two
lines ok
-host_address [127.0.0.1]:51622
--auth_id box@demo1.test
-received_protocol esmtpa
-body_linecount 1
NN c@demo1.test
3
b@remote.example
c@demo1.test
d@other.example x@y.example 14,0#1

050P Received: from [127.0.0.1] (helo=client)
\tby host
019F From: a@demo1.test
021* X-Secret: dropped me
015  Subject: hello
"""


def test_spool_header_file_as_exim_writes_it():
    msg = spool.parse_header_file("1xWA0I-00008L-06", HEADER_FILE, journal=b"b@remote.example\n")
    assert (msg.login, msg.uid, msg.sender, msg.protocol, msg.auth_id, msg.host) == \
        ("Debian-exim", 102, "a@demo1.test", "esmtpa", "box@demo1.test", "127.0.0.1")
    assert msg.recipients == ("b@remote.example", "c@demo1.test", "d@other.example")
    assert msg.undelivered == ["d@other.example"]
    assert msg.message(b"body\n") == (b"Received: from [127.0.0.1] (helo=client)\n\tby host\n"
                                      b"From: a@demo1.test\nSubject: hello\n\nbody\n")   # deleted one gone
    assert msg.meta().exim_id == "1xWA0I-00008L-06" and msg.meta().uid == 102


@pytest.mark.parametrize("good, bad", [(b"050P Received", b"090P Received"), (b"3\nb@remote", b"2\nb@remote"),
                                       (b"-06-H", b"-07-H"), (b"015  Subject", b"  Subject")])
def test_a_spool_file_that_is_not_one_is_refused(good, bad):
    with pytest.raises(spool.SpoolError):
        spool.parse_header_file("1xWA0I-00008L-06", HEADER_FILE.replace(good, bad, 1))


def test_the_snippets_fill_in_on_a_real_server_whose_root_is_slash(monkeypatch):
    """On the server itself ($IMUNIFYEMAIL_ROOT unset) the incoming router's paths are the system's own:
    the root is empty in them, and that is no error (the RPM's %post renders the snippets so)."""
    from imunifyemail import config, paths
    from imunifyemail.exim import snippets
    monkeypatch.delenv(paths.ROOT_ENV, raising=False)
    defaults = config.validate({}, "defaults")
    filled = snippets.values(defaults)
    assert (filled["ROOT"], filled["USERDOMAINS"]) == ("", "/etc/userdomains")
    monkeypatch.setenv(paths.ROOT_ENV, "/tmp/a root")   # a space would break Exim's syntax
    with pytest.raises(snippets.SnippetError, match="cannot be used in Exim.s configuration"):
        snippets.values(defaults)
