"""The server settings of what goes beyond the seed: notifications, the webhook, automatic release of
rate-limited mail, containment of a compromised account, metrics.

One declaration per setting: its kind, default (the safe one), bounds and what it means. ``ie-cli
settings``, WHM → Settings and the daemon all read it from here; :func:`check` is the one validation.
"""
from dataclasses import dataclass, fields, replace
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit


# How a switch is written: on the command line (on/off, true/false, yes/no, 1/0) and by a form's checkbox.
SWITCH_ON = ("on", "true", "yes", "1")
SWITCH_OFF = ("off", "false", "no", "0")


def switched_on(word: str) -> bool:
    """Whether a switch word means on (any other word, or none, means off)."""
    return word.strip().lower() in SWITCH_ON


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str                 # "switch", "seconds", "count", "url"
    help: str
    minimum: int = 0
    maximum: int = 0
    flag: str = ""            # the ie-cli option


SETTINGS: Tuple[Setting, ...] = (
    Setting("notify_admin", "switch",
            "Email the administrator (CONTACTEMAIL in /etc/wwwacct.conf) a digest of held mail and "
            "limits hit", flag="--notify-admin"),
    Setting("notify_owner", "switch",
            "Email each account's owner (their cPanel contact address) a digest of their own held mail",
            flag="--notify-owner"),
    Setting("notify_period", "seconds", "At most one digest per recipient per this many seconds",
            minimum=300, maximum=7 * 86400, flag="--notify-period"),
    Setting("webhook_url", "url", "POST each batch of events as JSON to this http(s) URL (empty: none)",
            maximum=2048, flag="--webhook-url"),
    Setting("webhook_timeout", "seconds", "Seconds a webhook POST may take", minimum=1, maximum=60,
            flag="--webhook-timeout"),
    Setting("webhook_retries", "count", "Further attempts at a failed webhook POST", minimum=0, maximum=10,
            flag="--webhook-retries"),
    Setting("auto_release", "switch",
            "Release mail held only for a sender limit, oldest first, as soon as every limit it counts "
            "against has room again", flag="--auto-release"),
    Setting("containment_threshold", "count",
            "Block an account holding more than this many spam or Windows-executable messages within "
            "an hour (0: never)", minimum=0, maximum=1_000_000, flag="--containment-threshold"),
    Setting("metrics", "switch",
            "Write Prometheus metrics for node_exporter's textfile collector (metrics.textfile in "
            "config.yaml)", flag="--metrics"),
)
BY_NAME: Dict[str, Setting] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Features:
    """The settings in force; the defaults here are the safe ones."""
    notify_admin: bool = True
    notify_owner: bool = False
    notify_period: int = 3600
    webhook_url: str = ""
    webhook_timeout: int = 5
    webhook_retries: int = 3
    auto_release: bool = False
    containment_threshold: int = 50
    metrics: bool = True

    def as_dict(self) -> Dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def changed(self, changes: Dict[str, Any]) -> "Features":
        return replace(self, **changes)


def _url_error(value: str) -> Optional[str]:
    if value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host, or empty"
    if any(c.isspace() or ord(c) < 32 for c in value):
        return "must not contain spaces or control characters"
    return None


def redacted_url(url: str) -> str:
    """What the audit trail and the log say of a URL: its scheme and host only. A webhook's URL
    usually carries its secret (a token in the query, or the path itself, as Slack's), and may carry
    a user and password."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:   # an IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}/…"


def redacted(name: str, value: Any) -> Any:
    """A setting's value as it may be recorded (the URL settings: :func:`redacted_url`)."""
    setting = BY_NAME.get(name)
    if setting is not None and setting.kind == "url" and isinstance(value, str):
        return redacted_url(value)
    return value


def error(name: str, value: Any) -> Optional[str]:
    """Why ``value`` cannot be setting ``name`` (None: it can)."""
    setting = BY_NAME.get(name)
    if setting is None:
        return f"unknown setting: {name}"
    if setting.kind == "switch":
        return None if isinstance(value, bool) else f"{name}: must be on or off"
    if setting.kind == "url":
        if not isinstance(value, str):
            return f"{name}: must be a URL"
        if len(value) > setting.maximum:
            return f"{name}: longer than {setting.maximum} characters"
        problem = _url_error(value)
        return f"{name}: {problem}" if problem else None
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{name}: must be a whole number"
    if not setting.minimum <= value <= setting.maximum:
        return f"{name}: {value} is out of range ({setting.minimum} to {setting.maximum})"
    return None


def check(changes: Dict[str, Any]) -> Dict[str, Any]:
    """The changes, all valid; else ValueError naming the first bad one (and nothing applies)."""
    if not changes:
        raise ValueError("nothing to change")
    for name, value in changes.items():
        problem = error(name, value)
        if problem:
            raise ValueError(problem)
    return dict(changes)


def from_stored(stored: Dict[str, Any]) -> Features:
    """What the database holds, over the defaults; a value no longer valid keeps its default."""
    good = {k: v for k, v in stored.items() if k in BY_NAME and error(k, v) is None}
    return Features().changed(good)
