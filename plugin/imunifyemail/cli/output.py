"""What ``ie-cli`` and ``ie-config`` print as text: one renderer per output layout of the seed document.

Renderers return the lines without a final newline; the JSON shapes are
:mod:`imunifyemail.shapes` (shared with the pages).
Text taken from mail (subjects, addresses, header values) is printed on one
line with control characters replaced, so a hostile message cannot move the
cursor or forge extra lines on the administrator's terminal.
"""
import json
import time
import unicodedata
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..core import trust
from ..ops.emails import HeldEmail
from ..shapes import human_size
from ..store.accounts import AccountInfo, QuarantineDefaults
from ..store.listing import StoredMessage

DASHES = "-" * 107
LIST_KEY_WIDTH = 18      # emails list: "Account_Name" and friends, padded
SHOW_KEY_WIDTH = 30      # emails show: "Key:" padded, as the seed's example
NO_DATA = "No available data"


def oneline(value: Any) -> str:
    text = str(value)
    return "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)


def to_json(obj: Any, indent: int = 2, sort_keys: bool = False) -> str:
    return json.dumps(obj, indent=indent, sort_keys=sort_keys)


# -- emails -----------------------------------------------------------------

def _list_row(key: str, value: Any) -> str:
    return f"{key:<{LIST_KEY_WIDTH}}{oneline(value)}".rstrip()


def local_time(at: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def emails_list_text(items: Sequence[StoredMessage], total: int, expected: Optional[Mapping[str, int]] = None) -> str:
    """The seed's layout; a message expected to leave on its own (automatic release) has one more line."""
    expected = expected or {}
    lines: List[str] = []
    for m in items:
        lines += [
            DASHES,
            _list_row("Email_ID", m.email_id),
            _list_row("Size_Bytes", m.size_bytes),
            _list_row("Account_Name", m.account),
            _list_row("Recipients", ", ".join(m.recipients)),
            _list_row("Subject", m.subject),
        ]
        if m.email_id in expected:
            lines.append(_list_row("Expected_Release", local_time(expected[m.email_id])))
        lines.append("")
    lines += [DASHES, _list_row("Max Count", total)]
    return "\n".join(lines)


def _show_row(key: str, value: Any) -> str:
    return f"{key + ':':<{SHOW_KEY_WIDTH - 1}} {oneline(value)}".rstrip()


def email_show_text(held: HeldEmail) -> str:
    m = held.message
    lines = [
        _show_row("EmailID", m.email_id),
        _show_row("SizeBytes", m.size_bytes),
        _show_row("AccountName", m.account),
        _show_row("Sender", m.sender),
        _show_row("Recipients", ", ".join(m.recipients)),
        _show_row("ReceivedDate", m.received_at),
        _show_row("Subject", m.subject),
        _show_row("Reasons", ", ".join(m.reasons)),
    ]
    for group in held.judged.header_groups():
        if group:
            lines.append("")
            lines += [_show_row(name, value) for name, value in group]
    lines += ["", f"Body: {held.judged.body_base64()}"]
    return "\n".join(lines)


# -- accounts ---------------------------------------------------------------

# The seed's four columns, then ours: a hosted user's releases per hour (in recipients).
_ACCOUNT_COLUMNS = (("Name", 17), ("LimitBytes", 14), ("UsedBytes", 14), ("State", 9), ("ReleasesLimit", 0))


def accounts_table(accounts: Sequence[AccountInfo]) -> str:
    rows = [tuple(title for title, _ in _ACCOUNT_COLUMNS)]
    rows += [(oneline(a.name), str(a.limit_bytes), str(a.used_bytes), a.state, str(a.releases_limit))
             for a in accounts]
    widths = [max([minimum, *(len(r[i]) + 3 for r in rows)]) for i, (_, minimum) in enumerate(_ACCOUNT_COLUMNS)]
    return "\n".join("".join(f"{cell:<{w}}" for cell, w in zip(row, widths)).rstrip() for row in rows)


def accounts_list_text(accounts: Sequence[AccountInfo]) -> str:
    return f"{accounts_table(accounts)}\n\nMax Count {len(accounts)}"


def quarantine_defaults_text(values: QuarantineDefaults) -> str:
    """The defaults in the accounts table's columns (LimitBytes, ReleasesLimit)."""
    width = max(14, len(str(values.limit_bytes)) + 3)
    return f"{'LimitBytes':<{width}}ReleasesLimit\n{values.limit_bytes:<{width}}{values.releases_limit}"


# -- whitelist --------------------------------------------------------------

def whitelist_change_text(title: str, entries: Sequence[Tuple[str, str]]) -> str:
    lines = [title]
    lines += [f"{n}. {kind:<10}{value}" for n, (kind, value) in enumerate(entries, 1)]
    lines.append("OK")
    return "\n".join(lines)


def granted_text(granted, grant) -> str:
    """What ``emails release --whitelist-sender|--raise-limit`` granted besides the release."""
    until = trust.iso(granted.until)
    lines = [f"Whitelisted sender {v} until {until}" for v in granted.whitelisted]
    lines += [f"Raised the limit of {so_type} {name} to {grant.limit} an hour until {until}"
              for _, so_type, name in granted.raised]
    return "\n".join(lines)


def whitelist_list_text(entries: Dict[str, Any]) -> str:
    """The seed's layout; an entry that ends by itself says when (UTC)."""
    def shown(value: str) -> str:
        until = entries["expires_at"].get(value)
        return value if until is None else f"{value}  (until {trust.iso(until)})"
    emails = [shown(v) for v in entries["emails"]] or [NO_DATA]
    domains = [shown(v) for v in entries["domains"]] or [NO_DATA]
    return "\n".join(["EMAILS", *emails, "", "DOMAINS", *domains])


# -- filter settings --------------------------------------------------------

def filter_settings_text(values: Dict[str, bool]) -> str:
    return to_json(values, indent=4, sort_keys=True)


# -- server settings and the audit trail ----------------------------------------

def _setting(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return "(none)" if value == "" else oneline(value)


def features_text(values: Dict[str, Any]) -> str:
    width = max(len(k) for k in values) + 3
    return "\n".join(f"{k:<{width}}{_setting(v)}" for k, v in values.items())


_AUDIT_COLUMNS = ("Time", "Actor", "Role", "Via", "Account", "Action", "Ids", "Outcome")


def audit_text(items: Sequence, total: int) -> str:
    rows = [_AUDIT_COLUMNS]
    for e in items:
        rows.append((local_time(e.at), oneline(e.actor), e.role, e.via,
                     oneline(e.account or "-"), e.action, ",".join(e.ids) or "-", oneline(e.outcome)))
    widths = [max(len(r[i]) for r in rows) + 3 for i in range(len(_AUDIT_COLUMNS) - 1)]
    lines = ["".join(f"{cell:<{w}}" for cell, w in zip(row, widths)) + row[-1] for row in rows]
    return "\n".join([*lines, "", f"Max Count {total}"])


# -- activity monitor -------------------------------------------------------

def am_json(obj: Any) -> str:
    """``am stats`` and ``am server-settings``: the seed's key-sorted JSON."""
    return to_json(obj, indent=4, sort_keys=True)


# -- ie-config status -------------------------------------------------------
# Rendered from its --json shape (:func:`imunifyemail.shapes.status`): the text says what the JSON says.

def disk_line(disk: Dict[str, Any]) -> str:
    if "error" in disk:
        return f"unknown ({disk['error']})"
    line = (f"{human_size(disk['free_bytes'])} free of {human_size(disk['total_bytes'])}"
            f" (floor {human_size(disk['floor_bytes'])}")
    line += f", {disk['free_inodes']} inodes free, floor {disk['floor_inodes']})" if disk["total_inodes"] else ")"
    if disk["below_floor"]:
        line += ("; FLOOR REACHED: mail that would be held is deferred (Exim keeps it) until space is freed "
                 "(ie-cli emails remove, ie-cli accounts remove)")
    return line


def web_line(web: Dict[str, Any]) -> str:
    silent = [Path(web["sockets"][k]).name for k in ("admin_socket", "user_socket") if not web[k]]
    state = "running" if not silent else f"not answering on {' and '.join(silent)}"
    return f"{state} (service {web['service']}, GET /healthz on admin.sock and user.sock)"


def metrics_line(m: Dict[str, Any]) -> str:
    if m["enabled"] is False:
        return "off (ie-cli settings --metrics on)"
    if "samples" not in m:
        return f"unknown ({m.get('error', 'no file')}; {m['textfile']})"
    v = m["samples"]
    scanned, passed = v.get("imunifyemail_messages_scanned_total", 0), v.get("imunifyemail_messages_passed_total", 0)
    stale = " (STALE: the daemon has not rewritten it)" if m["age_seconds"] > 3 * m["interval"] + 60 else ""
    return (f"{m['textfile']} written {m['age_seconds']} s ago{stale}: since the daemon started "
            f"{scanned} scanned, {passed} passed, {scanned - passed} held, "
            f"{v.get('imunifyemail_rspamd_unreachable_total', 0)} passed unscanned (Rspamd unreachable)")


def incoming_line(st: Dict[str, Any]) -> str:
    i = st.get("incoming_filter", {})
    if i.get("enabled"):
        return "on (inbound spam is delivered to the recipient's Junk folder)"
    if i.get("requested"):
        return "on, but not in /etc/exim.conf" + ("" if st["filter"]["enabled"] else ": run ie-config enable")
    return "off (ie-config enable-incoming turns it on)"


def status_text(st: Dict[str, Any]) -> str:
    f, d, q, qa = st["filter"], st["daemon"], st["queue"], st["quarantine"]
    if f["enabled"]:
        exim = "enabled (outbound mail is scanned)"
    elif f["exim_conf_local"]:
        exim = "configured in exim.conf.local but not in /etc/exim.conf: run ie-config enable"
    elif f["exim_conf"]:
        exim = "in /etc/exim.conf but not in exim.conf.local: run ie-config enable or disable"
    else:
        exim = "disabled (mail is sent unscanned)"
    daemon = ("running" if d["running"] else "not answering") + f" (service {d['service']}, socket {d['socket']})"
    rspamd = ("reachable" if st["rspamd"]["reachable"] else "unreachable: mail passes unscanned for spam") \
        + f" ({st['rspamd']['url']})"
    if "error" in q:
        queue_line = f"unknown ({q['error']})"
    else:
        queue_line = f"{q['waiting_for_scanner']} message(s) waiting for the scanner, {q['total']} in the queue"
    if "error" in qa:
        quarantine_line = f"unknown ({qa['error']})"
    else:
        quarantine_line = (f"{qa['emails']} email(s), {human_size(qa['size_bytes'])}, "
                           f"{qa['accounts']} account(s)")
    rows = [("Version", st["version"]), ("Exim filter", exim), ("Incoming filter", incoming_line(st)),
            ("Filter daemon", daemon),
            ("Web application", web_line(st["web"])), ("Rspamd", rspamd),
            ("Exim queue", queue_line), ("Quarantine", quarantine_line), ("Quarantine disk", disk_line(st["disk"])),
            ("Metrics", metrics_line(st["metrics"]))]
    return "\n".join(f"{name + ':':<17}{value}" for name, value in rows)
