"""``/etc/imunifyemail/config.yaml``: one schema declares every key, its default and its meaning.

The file is optional; a missing key takes its default. A bad file is a
:class:`ConfigError` whose one-line message names the file and the key, and
the daemon refuses to start on it (never a silent default).
"""
import copy
from dataclasses import dataclass
from typing import Any, Dict

import jsonschema
import yaml

from . import paths
from .core import headroom


def _obj(properties: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "default": {},
    }


_TCP_ADDRESS = {"type": "string", "pattern": "^([A-Za-z0-9][A-Za-z0-9.-]*|\\[[0-9A-Fa-f:.]+\\]):[0-9]{1,5}$",
                "pattern_means": "host:port"}
_REDIS_ADDRESS = {"type": "string",
                  "pattern": "^(/[A-Za-z0-9._/-]+|([A-Za-z0-9][A-Za-z0-9.-]*|\\[[0-9A-Fa-f:.]+\\]):[0-9]{1,5})$",
                  "pattern_means": "a unix socket's path or host:port"}

SCHEMA: Dict[str, Any] = _obj({
    "rspamd": _obj({
        "url": {"type": "string", "pattern": "^(unix:/.*[^/]|http://[^/:]+(:[0-9]{1,5})?/?|http://\\[[0-9A-Fa-f:.]+\\](:[0-9]{1,5})?/?)$",
                "pattern_means": "unix:/path/to/socket or http://host:port",
                "default": "unix:" + paths.RSPAMD_SOCKET,
                "description": "where Rspamd's scanner (normal worker) answers /checkv2: its unix socket "
                               "(unix:/path, resolved under $IMUNIFYEMAIL_ROOT; rpm/rspamd/override.d binds it "
                               "for _imunifyemail and root only) or http://host:port"},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 600, "default": 20,
                    "description": "seconds before a scan counts as failed (Rspamd down: see unavailable; Rspamd "
                                   "up but failing this message twice: it is held as unscannable)"},
        "unavailable": {"enum": ["defer", "pass"], "default": "defer",
                        "description": "when Rspamd does not answer: defer (Exim keeps the mail; it is handed back "
                                       "as soon as Rspamd answers, and passes unscanned, flagged, once it has "
                                       "waited max_wait) or pass (at once, unscanned, flagged); executables and "
                                       "sender limits are checked either way"},
        "max_wait": {"type": "integer", "minimum": 0, "maximum": 345600, "default": 3600,
                     "description": "seconds a message may wait for Rspamd (from when Exim received it) before "
                                    "it passes unscanned, with unavailable: defer"},
        "controller": {"type": "string", "pattern": "^unix:/.*[^/]$", "pattern_means": "unix:/path/to/socket",
                       "default": "unix:" + paths.RSPAMD_CONTROLLER,
                       "description": "Rspamd's controller, where the administrator's decisions are learned "
                                      "(/learnspam, /fuzzyadd, ...): its unix socket only (resolved under "
                                      "$IMUNIFYEMAIL_ROOT; rpm/rspamd/override.d binds it for _imunifyemail "
                                      "and root only: Rspamd trusts any peer of it without a password)"},
        "redis": _obj({
            "servers": {"type": "array", "minItems": 1, "items": _REDIS_ADDRESS,
                        "default": [paths.REDIS_SOCKET],
                        "description": "the Redis where Rspamd's fuzzy storage and Bayes keep what the "
                                       "administrator taught: a unix socket path or host:port; a shared one "
                                       "makes a fleet learn together (with sentinels: the masters Rspamd "
                                       "starts with). Rendered by `ie-config rspamd-redis`"},
            "sentinels": {"type": "array", "items": _TCP_ADDRESS, "default": [],
                          "description": "Redis Sentinels (host:port) Rspamd asks for the master (and follows "
                                         "its fail-over); needs master_name"},
            "master_name": {"type": ["string", "null"], "pattern": "^[A-Za-z0-9._-]{1,64}$",
                            "pattern_means": "a Sentinel master name (letters, digits, . _ -)", "default": None,
                            "description": "the master's name in the Sentinels' configuration"},
            "sentinel_watch_time": {"type": "integer", "minimum": 1, "maximum": 3600, "default": 60,
                                    "description": "seconds between two questions to the Sentinels"},
            "db": {"type": "integer", "minimum": 0, "maximum": 255, "default": 0,
                   "description": "the Redis database number (0: the default one)"},
        }),
        "concurrency": {"type": "integer", "minimum": 1, "maximum": 1024, "default": 8,
                        "description": "scans sent to Rspamd at once; one account's at most half of them, so one "
                                       "account's flood or slow message never holds up the others' mail"},
    }),
    "reinject": _obj({
        "sendmail": {"type": "string", "pattern": "^/", "default": "/usr/sbin/sendmail",
                     "description": "Exim's sendmail: released mail goes back through it (and exim -M asks "
                                    "for a delivery now)"},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600, "default": 120,
                    "description": "seconds before a re-inject attempt is abandoned (the message is kept)"},
        "user": {"type": ["string", "null"], "minLength": 1, "default": "mailnull",
                 "description": "the Exim user: a release runs sendmail as this user (cPanel: "
                                "mailnull; Debian: Debian-exim); null runs sendmail as the caller"},
    }),
    "quarantine": _obj({
        "default_limit_bytes": {"type": "integer", "minimum": 0, "default": 104857600,
                                "description": "the default quarantine space of an account until `ie-cli "
                                               "quarantine-defaults set -s` (or WHM Settings) stores one in the "
                                               "database, which then rules"},
        "min_free_bytes": {"type": ["integer", "null"], "minimum": 0, "default": None,
                           "description": "free-space floor of the quarantine's filesystem: below it, mail "
                                          "that would be held is deferred (Exim keeps it); null = the larger "
                                          "of 1% of the filesystem and 64 MiB"},
        "min_free_inodes": {"type": ["integer", "null"], "minimum": 0, "default": None,
                            "description": "free-inode floor of the same filesystem; null = the larger of 1% "
                                           "of its inodes and 1000"},
        "reserve_bytes": {"type": "integer", "minimum": 0, "default": 8 << 20,
                          "description": "preallocated file given back to the filesystem while mail is "
                                         "deleted, so that deleting works on a 100% full disk; must be "
                                         "smaller than the floor"},
    }),
    "exim": _obj({
        "socket": {"type": "string", "pattern": "^/", "default": paths.FILTER_SOCKET,
                   "description": "socket Exim's router asks for each message's verdict (resolved under "
                                  "$IMUNIFYEMAIL_ROOT)"},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600, "default": 60,
                    "description": "seconds the router waits for a verdict before it defers the address "
                                   "(Exim retries); more than rspamd.timeout"},
        "spool_directory": {"type": "string", "pattern": "^/", "default": "/var/spool/exim",
                            "description": "Exim's spool_directory: the daemon reads each message there"},
    }),
    "daemon": _obj({
        "user": {"type": "string", "minLength": 1, "default": "_imunifyemail",
                 "description": "the daemon drops to this user when started as root"},
        "extra_groups": {"type": "array", "items": {"type": "string", "minLength": 1}, "default": ["mail"],
                         "description": "supplementary groups kept after the drop: Exim's group, to read its "
                                        "spool (cPanel: mail, which also reads /etc/userdomains, root:mail 0640)"},
        "log_level": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"], "default": "INFO"},
    }),
    "activity_monitor": _obj({
        "retention_days": {"type": "integer", "minimum": 1, "maximum": 3650, "default": 30,
                           "description": "how long per-minute sender statistics are kept (am stats --since)"},
    }),
    "metrics": _obj({
        "textfile": {"type": "string", "pattern": "^/", "default": paths.METRICS_FILE,
                     "description": "the Prometheus metrics file the daemon rewrites for node_exporter's "
                                    "textfile collector (point its --collector.textfile.directory at this "
                                    "directory, or set a file in that directory); must end in .prom; resolved "
                                    "under $IMUNIFYEMAIL_ROOT; written only while the metrics setting is on"},
        "interval": {"type": "number", "minimum": 0.1, "maximum": 3600, "default": 30,
                     "description": "seconds between two writes of the metrics file"},
        "top_accounts": {"type": "integer", "minimum": 0, "maximum": 1000, "default": 10,
                         "description": "how many accounts (those holding the most mail) get per-account "
                                        "quarantine metrics"},
        "group": {"type": ["string", "null"], "minLength": 1, "default": None,
                  "description": "the group that may read the metrics file (mode 0640; it names accounts): "
                                 "the group node_exporter runs as. null: the daemon's own group, so only the "
                                 "daemon and root read it. The daemon's metrics directory is set-group-id "
                                 "to it; a directory of node_exporter's gives the file its own group only "
                                 "if it is set-group-id (chgrp GROUP DIR; chmod g+s DIR)"},
    }),
    "filter": _obj({
        "spam_actions": {"type": "array", "minItems": 1, "uniqueItems": True,
                         "items": {"enum": ["reject", "rewrite subject", "add header", "greylist",
                                            "soft reject"]},
                         "default": ["reject"],
                         "description": "Rspamd actions that send a message to the quarantine as spam"},
    }),
})


class ConfigError(Exception):
    """A bad configuration file; the message is one line naming file and key."""


@dataclass(frozen=True)
class Config:
    raw: Dict[str, Any]

    def __getitem__(self, section: str) -> Dict[str, Any]:
        return self.raw[section]


def _fill_defaults(schema: Dict[str, Any], value: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(value)
    for key, sub in schema.get("properties", {}).items():
        if key not in out and "default" in sub:
            out[key] = copy.deepcopy(sub["default"])
        if sub.get("type") == "object" and isinstance(out.get(key), dict):
            out[key] = _fill_defaults(sub, out[key])
    return out


def validate(data: Any, source: str) -> Config:
    if data is None:
        data = {}
    errors = sorted(jsonschema.Draft7Validator(SCHEMA).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        if err.validator == "additionalProperties":
            key = ".".join([*(str(p) for p in err.absolute_path), *sorted(
                set(err.instance) - set(err.schema.get("properties", {})))]) or key
            raise ConfigError(f"{source}: {key}: unknown key")
        if err.validator == "pattern" and "pattern_means" in err.schema:   # the regex said in words
            raise ConfigError(f"{source}: {key}: {err.instance!r} must be {err.schema['pattern_means']}")
        raise ConfigError(f"{source}: {key}: {err.message}")
    cfg = Config(_fill_defaults(SCHEMA, data))
    _check_reserve_below_floor(cfg, source)
    if not cfg["metrics"]["textfile"].endswith(".prom") or cfg["metrics"]["textfile"].endswith("/.prom"):
        raise ConfigError(f"{source}: metrics.textfile: {cfg['metrics']['textfile']!r} must be a file name "
                          "ending in .prom (node_exporter's textfile collector reads only those)")
    if cfg["exim"]["timeout"] <= cfg["rspamd"]["timeout"]:
        raise ConfigError(f"{source}: exim.timeout: {cfg['exim']['timeout']} must be more than rspamd.timeout "
                          f"({cfg['rspamd']['timeout']}): Exim would give up before the scan")
    redis = cfg["rspamd"]["redis"]
    if redis["sentinels"] and redis["master_name"] is None:
        raise ConfigError(f"{source}: rspamd.redis.master_name: needed with rspamd.redis.sentinels (the name "
                          "of the master the Sentinels watch)")
    return cfg


def _check_reserve_below_floor(cfg: Config, source: str) -> None:
    # Released while deleting, the reserve must not lift a full disk above the floor.
    q = cfg["quarantine"]
    floor = q["min_free_bytes"] if q["min_free_bytes"] is not None else headroom.AUTO_FLOOR_BYTES
    if q["reserve_bytes"] and q["reserve_bytes"] >= floor:
        raise ConfigError(f"{source}: quarantine.reserve_bytes: {q['reserve_bytes']} must be smaller than the "
                          f"free-space floor ({floor} bytes, quarantine.min_free_bytes)")


def load(path=None) -> Config:
    """Load and validate the config file (missing file = all defaults)."""
    file = path or paths.system_path(paths.CONFIG_FILE)
    try:
        with open(file, "rb") as fh:
            text = fh.read()
    except FileNotFoundError:
        return validate({}, str(file))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{file}: not valid YAML{where}") from None
    return validate(data, str(file))
