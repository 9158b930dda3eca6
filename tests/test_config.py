"""config.yaml: documented defaults, one-line errors naming file and key."""
import re
from pathlib import Path

import pytest

from imunifyemail import config


def test_defaults_without_a_file(tmp_path):
    cfg = config.load(tmp_path / "absent.yaml")
    assert cfg["rspamd"]["url"] == "unix:/var/run/rspamd/normal.sock"   # rpm/rspamd/override.d/worker-normal.inc
    assert cfg["reinject"]["sendmail"] == "/usr/sbin/sendmail"
    assert cfg["quarantine"]["default_limit_bytes"] == 104857600
    assert cfg["filter"]["spam_actions"] == ["reject"]
    assert cfg["metrics"] == {"textfile": "/var/imunifyemail/metrics/imunifyemail.prom", "interval": 30,
                              "top_accounts": 10, "group": None}


def test_partial_file_keeps_other_defaults(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("rspamd:\n  timeout: 3\n")
    cfg = config.load(f)
    assert cfg["rspamd"] == {"url": "unix:/var/run/rspamd/normal.sock", "timeout": 3, "unavailable": "defer",
                             "max_wait": 3600, "concurrency": 8,
                             "controller": "unix:/var/run/rspamd/controller.sock",
                             "redis": {"servers": ["/var/run/redis/redis.sock"], "sentinels": [],
                                       "master_name": None, "sentinel_watch_time": 60, "db": 0}}


@pytest.mark.parametrize("text,key", [
    ("rspamd:\n  controller: http://127.0.0.1:11334\n", "rspamd.controller"),
    ("rspamd:\n  redis:\n    servers: []\n", "rspamd.redis.servers"),
    ("rspamd:\n  redis:\n    servers: ['redis host:6379']\n", "rspamd.redis.servers.0"),
    ("rspamd:\n  redis:\n    servers: ['10.0.0.1:6379\"; x = 1']\n", "rspamd.redis.servers.0"),
    ("rspamd:\n  redis:\n    sentinels: ['/run/sentinel.sock']\n    master_name: m\n", "rspamd.redis.sentinels.0"),
    ("rspamd:\n  redis:\n    sentinels: ['10.0.0.5:26379']\n", "rspamd.redis.master_name"),
    ("rspamd:\n  redis:\n    sentinels: ['10.0.0.5:26379']\n    master_name: 'a$b'\n", "rspamd.redis.master_name"),
    ("rspamd:\n  redis:\n    sentinel_watch_time: 0\n", "rspamd.redis.sentinel_watch_time"),
    ("rspamd:\n  redis:\n    password: x\n", "rspamd.redis.password"),
    ("rspamd:\n  timeout: -1\n", "rspamd.timeout"),
    ("rspamd:\n  url: ftp://x\n", "rspamd.url"),
    ("rspamd:\n  url: https://127.0.0.1:11333\n", "rspamd.url"),
    ("rspamd:\n  url: unix:run/rspamd/normal.sock\n", "rspamd.url"),
    ("rspamd:\n  url: unix:/var/run/rspamd/\n", "rspamd.url"),
    ("rspamd:\n  url: /var/run/rspamd/normal.sock\n", "rspamd.url"),
    ("rspamd:\n  url: http://127.0.0.1:11333/checkv2\n", "rspamd.url"),
    ("rspamd:\n  url: 11333\n", "rspamd.url"),
    ("quarantine:\n  default_limit_bytes: lots\n", "quarantine.default_limit_bytes"),
    ("reinject:\n  sendmail: sendmail\n", "reinject.sendmail"),
    ("rspamd:\n  tiemout: 3\n", "rspamd.tiemout"),
    ("filter:\n  spam_actions: [maybe]\n", "filter.spam_actions.0"),
    ("- a list\n", "(top level)"),
    ("metrics:\n  textfile: /var/lib/node_exporter/ie.txt\n", "metrics.textfile"),
    ("metrics:\n  textfile: /var/lib/node_exporter/.prom\n", "metrics.textfile"),
    ("metrics:\n  textfile: relative.prom\n", "metrics.textfile"),
    ("metrics:\n  interval: 0\n", "metrics.interval"),
    ("metrics:\n  top_accounts: -1\n", "metrics.top_accounts"),
])
def test_errors_name_file_and_key(tmp_path, text, key):
    f = tmp_path / "config.yaml"
    f.write_text(text)
    with pytest.raises(config.ConfigError) as err:
        config.load(f)
    msg = str(err.value)
    assert msg.startswith(f"{f}: {key}:") and "\n" not in msg


@pytest.mark.parametrize("url", ["unix:/var/run/rspamd/normal.sock", "unix:/run/rspamd/normal.sock",
                                 "http://127.0.0.1:11333", "http://127.0.0.1:11333/", "http://[::1]:11333",
                                 "http://localhost"])
def test_rspamd_url_is_a_unix_socket_or_http(tmp_path, url):
    # http://127.0.0.1:11333 is what every config.yaml said before Rspamd moved to its socket: it still loads
    f = tmp_path / "config.yaml"
    f.write_text(f"rspamd:\n  url: '{url}'\n")
    assert config.load(f)["rspamd"]["url"] == url


def test_a_bad_rspamd_url_says_what_is_expected(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text("rspamd:\n  url: /run/rspamd/normal.sock\n")
    with pytest.raises(config.ConfigError) as err:
        config.load(f)
    assert str(err.value) == (f"{f}: rspamd.url: '/run/rspamd/normal.sock' must be unix:/path/to/socket "
                              "or http://host:port")


def test_the_documented_example_names_the_default_rspamd_url():
    example = (Path(__file__).resolve().parent.parent / "rpm/config.yaml").read_text()
    [url] = re.findall(r"^#   url: (\S+)", example, re.MULTILINE)
    assert url == config.validate({}, "defaults")["rspamd"]["url"]


def test_yaml_syntax_error_names_line(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text("rspamd:\n  url: [\n")
    with pytest.raises(config.ConfigError, match=r"not valid YAML \(line \d+\)"):
        config.load(f)
