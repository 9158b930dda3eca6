"""The two sockets' formats (protocol.scan, protocol.control), end to end in memory: what one side
builds the other side parses. Over real sockets: test_daemon_flow.py, test_control.py, tests/system."""
import pytest

from imunifyemail.errors import ActionError, Forbidden
from imunifyemail.ops import caller as callers
from imunifyemail.protocol import control, scan

from devtools import spool


def test_a_scan_request_reads_back_as_built_and_anything_else_is_malformed():
    exim_id = spool.new_id()
    for rcpt in ("bob@remote.example", "Jürgen@exämple.de"):
        assert scan.parse_request(scan.build_request(exim_id, rcpt)) == (exim_id, rcpt, "SCAN")
    assert scan.parse_request(scan.build_request("", "x@y.example")) == ("", "x@y.example", "SCAN")   # exim -bt
    for line, why in ((b"DELIVER all\n", "not a SCAN request"),
                      (b"SCAN id=x rcpt=YUBi\n", "not an Exim message id"),
                      (b"SCAN id= rcpt=@@@\n", "recipient is not base64 UTF-8"),
                      (b"SCAN id= rcpt=/w==\n", "recipient is not base64 UTF-8")):
        with pytest.raises(scan.MalformedRequest, match=why):
            scan.parse_request(line)


def test_a_scan_answer_cannot_be_given_fields_by_a_value():
    """Exim's ${extract} reads the answer: a quote or a newline in a header-borne value must not
    end the value and start a field of its own."""
    answer = scan.build_answer(scan.PASS, {"action": "no action", "info": 'evil" verdict=hold email_id="x\nbad'})
    assert not answer.endswith(b"\n")
    assert scan.parse_answer(answer) == {"verdict": "pass", "action": "no action",
                                         "info": "evil verdict=hold email_id=xbad"}
    assert scan.parse_answer(scan.BAD_REQUEST_ANSWER) == {"verdict": "defer", "reason": "bad request"}


def test_a_control_request_reads_back_as_built():
    caller = callers.hosted_user("demo1")
    line = control.build_request(control.release_request(caller, ["a", "b"]))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert control.parse_request(line) == control.Release(caller, ("a", "b"))
    assert control.parse_request(control.build_request({"op": "ping"})) == control.Ping()


def test_error_kinds_travel_by_name():
    class NotifyFailed(ActionError):   # one of ours the client does not know: it travels as ActionError
        pass

    class Refused(Forbidden):
        pass

    for exc, kind in [(k("why"), k) for k in control.ERROR_KINDS.values()] + \
            [(NotifyFailed("why"), ActionError), (Refused("why"), Forbidden)]:
        answer = control.parse_answer(control.build_answer(control.error_answer(exc)))
        assert answer == {"ok": False, "kind": kind.__name__, "error": "why"}
        assert type(control.answer_error(answer)) is kind and str(control.answer_error(answer)) == "why"
    assert type(control.answer_error({"ok": False, "kind": "SystemExit", "error": "x"})) is ActionError
    assert control.internal_error_answer() == {"ok": False, "kind": "InternalError",
                                               "error": "internal error: see the daemon's log"}
