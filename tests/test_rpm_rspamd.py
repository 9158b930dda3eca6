"""The production Rspamd set the RPM ships (rpm/rspamd/, installed as /usr/share/imunifyemail/rspamd and
included from a block in each /etc/rspamd/{local.d,override.d} file: imunifyemail.rspamd_files), on a
server without Rspamd files of its own and on one whose administrator has some: valid against the
system's stock rspamd.conf; the scanner and the controller on unix sockets only the product's user and
root may use, the proxy worker off, the fuzzy storage on loopback UDP only, no TCP listener at all, whatever the administrator's
local.d and override.d say; Rspamd's limits as options.inc writes them, merged with the administrator's
options (ours over their local.d, their override.d over ours); greylisting and Rspamd's rate limits
off, every network check left as Rspamd ships it; the offline overrides stay in devtools/ (sandbox and
tests only).

rspamadm and Rspamd run in a private network namespace: config loading resolves hostnames, and
nothing may leave the machine."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from devtools.namespace import Namespace
from devtools.redis import RedisProcess
from devtools.rspamd import SYSTEM_CONFDIR, layered_confdir
from devtools.stack import NsRspamd
from devtools.users import ensure_hosted_user
from imunifyemail import config

pytestmark = pytest.mark.rpm

REPO = Path(__file__).resolve().parent.parent
PRODUCTION = REPO / "rpm/rspamd"
OFFLINE = REPO / "devtools/rspamd_offline"
NETWORK_MODULES = ("spf", "dkim", "dmarc", "rbl", "hfilter")


def switched_off(config_text: str) -> bool:
    """The module's own top-level ``enabled = false;`` (not one of its sub-rules'), and no other value."""
    return re.findall(r"^enabled = (.*);$", config_text, re.MULTILINE) == ["false"]


# An administrator's own files (or an older release's local.d binds), there before the install: their
# binds and switches must not open TCP again; their other keys stay theirs.
ADMIN_LOCAL_D = {"worker-normal.inc": 'bind_socket = "127.0.0.1:11333";\n',
                 "worker-controller.inc": 'bind_socket = "127.0.0.1:11334";\n',
                 "worker-proxy.inc": 'bind_socket = "localhost:11332";\n',
                 "worker-fuzzy.inc": 'bind_socket = "localhost:11335";\ncount = 1;\n'}
ADMIN_FILES = {**{f"local.d/{name}": text for name, text in ADMIN_LOCAL_D.items()},
               # a key of ours (task_timeout), one of Rspamd's we leave alone (check_all_filters)
               "local.d/options.inc": "# the administrator's\ntask_timeout = 30s;\ncheck_all_filters = true;",
               "override.d/options.inc": "max_urls = 99;\n",     # the administrator's word on one of ours
               "local.d/greylist.conf": "enabled = true;\nexpire = 2d;\n",
               "override.d/worker-normal.inc": 'bind_socket = "*:11333";\ncount = 2;\n',
               "override.d/worker-controller.inc": 'bind_socket = "*:11334";\n',
               "override.d/worker-proxy.inc": "enabled = true;\n"}
SERVERS = ("without files of its own", "with the administrator's files")


def admin_layer(base: Path, files: dict) -> Path:
    for name, text in files.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text(text)
    return base


@pytest.fixture(scope="module")
def confdirs():
    """server -> its /etc/rspamd (LOCAL_CONFDIR) after the install: the administrator's files, if any,
    then our blocks (devtools.rspamd.layered_confdir, as the RPM's %post does it)."""
    base = Path(tempfile.mkdtemp(prefix="ie-rspamd-installed-", dir="/tmp"))
    admin = admin_layer(base / "admin", ADMIN_FILES)
    yield {SERVERS[0]: layered_confdir(base / "plain", layers=()),
           SERVERS[1]: layered_confdir(base / "administered", layers=(admin,))}
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module", params=SERVERS)
def confdir(request, confdirs):
    return confdirs[request.param]


def rspamadm(confdir: Path, *args: str) -> subprocess.CompletedProcess:
    # RUNDIR as Debian's build has it (EL's is /var/run/rspamd: the same directory)
    return subprocess.run(["unshare", "--net", "--", "rspamadm", f"--var=LOCAL_CONFDIR={confdir}",
                           "--var=RUNDIR=/run/rspamd", *args], capture_output=True, text=True, timeout=120)


def section(confdir: Path, name: str) -> str:
    proc = rspamadm(confdir, "configdump", "-c", "/etc/rspamd/rspamd.conf", name)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def dumped_options(confdir: Path) -> dict:
    """options {} as Rspamd reads it; a key given twice at one priority would be a list: refused."""
    found = re.findall(r"^(\w+) = (\S+);$", section(confdir, "options"), re.MULTILINE)
    keys = [k for k, _ in found]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    return dict(found)


def values(text: str, key: str) -> list:
    return re.findall(r"^    " + key + r" = (.*);$", text, re.MULTILINE)


def test_configtest_accepts_the_production_set(confdir):
    proc = rspamadm(confdir, "configtest", "-c", "/etc/rspamd/rspamd.conf")
    assert proc.returncode == 0 and "syntax OK" in proc.stdout, proc.stdout + proc.stderr


def worker(dump: str, name: str) -> str:
    """One worker's section of ``configdump worker``."""
    found = re.search(r"^" + name + r" \{\n(.*?)^\}", dump, re.MULTILINE | re.DOTALL)
    assert found, f"no worker {name} in:\n{dump}"
    return found.group(1)


def test_scanner_and_controller_on_product_only_sockets_proxy_off_fuzzy_on_loopback(confdir):
    workers = section(confdir, "worker")
    for name, sock in (("normal", "normal.sock"), ("controller", "controller.sock")):
        binds = re.findall(r'bind_socket = "([^"]*)";', worker(workers, name))
        assert binds == [f"/run/rspamd/{sock} mode=0660 owner=_rspamd group=_imunifyemail"], (name, binds)
    text = worker(workers, "rspamd_proxy")
    assert values(text, "enabled") == ["false"]
    assert re.findall(r'bind_socket = "([^"]*)";', text) == ["/run/rspamd/proxy.sock mode=0600 owner=_rspamd"]
    # The fuzzy storage (what the administrator taught): UDP only in Rspamd 3.4, on loopback, and no
    # address may write there (allow_update empty): only a client with its secret key
    # (imunifyemail.rspamd_learning; tests/system/test_learning.py)
    text = worker(workers, "fuzzy")
    assert re.findall(r'bind_socket = "([^"]*)";', text) == ["127.0.0.1:11335"]
    assert values(text, "count") == ["1"] and values(text, "backend") == ['"redis"']
    assert "localhost" not in text and values(text, "allow_update") in ([], ["[]"]), text


def test_rspamd_limits_are_written_out_and_read(confdirs):
    written = dict(re.findall(r"^(\w+) = (\S+);$", (PRODUCTION / "local.d/options.inc").read_text(), re.MULTILINE))
    assert {"task_timeout", "max_message", "max_urls", "max_lua_urls", "max_recipients",
            "dns_max_requests"} <= set(written)
    read = dumped_options(confdirs[SERVERS[0]])
    assert read["task_timeout"] == "8" and read["max_message"] == str(64 * 1024 * 1024)
    for key in ("max_urls", "max_lua_urls", "max_recipients", "dns_max_requests"):
        assert read[key] == written[key], key
    # Rspamd answers (with what it found) before the daemon gives up on it
    assert float(read["task_timeout"]) < config.validate({}, "defaults")["rspamd"]["timeout"]


def test_the_administrators_options_merge_with_ours(confdirs):
    """Their local.d keys we do not set apply; for a key both set, ours (priority 2 over their 1); their
    override.d (10) has the last word on one of ours. The file is theirs, our block at its end."""
    read = dumped_options(confdirs[SERVERS[1]])
    assert read["check_all_filters"] == "true"                   # theirs
    assert read["task_timeout"] == "8"                           # ours, not their local.d 30s
    assert read["max_urls"] == "99"                              # their override.d
    assert read["max_message"] == str(64 * 1024 * 1024)         # ours
    text = (confdirs[SERVERS[1]] / "local.d/options.inc").read_text()
    assert text.startswith(ADMIN_FILES["local.d/options.inc"] + "\n# BEGIN imunifyemail rspamd")


def test_the_administrators_worker_keys_stay_but_our_binds_and_switches_win(confdirs):
    workers = section(confdirs[SERVERS[1]], "worker")
    assert values(worker(workers, "normal"), "count") == ["2"]                  # their override.d
    assert values(worker(workers, "rspamd_proxy"), "enabled") == ["false"]      # over their enabled = true


@pytest.mark.parametrize("module", ["greylist", "ratelimit"])
def test_outbound_needs_no_greylisting_nor_rspamd_rate_limits(confdir, module):
    assert switched_off(section(confdir, module))


@pytest.mark.parametrize("module", NETWORK_MODULES)
def test_network_checks_stay_on_in_production(confdirs, module):
    assert not (PRODUCTION / "local.d" / f"{module}.conf").exists()
    assert not (PRODUCTION / "override.d" / f"{module}.conf").exists()
    assert not switched_off(section(confdirs[SERVERS[0]], module))
    # ...and the sandbox's offline set is where they are switched off
    assert switched_off((OFFLINE / "local.d" / f"{module}.conf").read_text())


def test_the_package_carries_no_rspamd_files():
    assert not list((REPO / "plugin/imunifyemail").rglob("*rspamd*.conf"))
    assert not (REPO / "plugin/imunifyemail/data/rspamd").exists()


# -- Rspamd started from the stock rspamd.conf with the production set ---------------------------------

PYTHON = sys.executable


@pytest.fixture(scope="module")
def production_rspamd():
    """/etc/rspamd/rspamd.conf as it is, LOCAL_CONFDIR = ADMIN_FILES with our blocks installed over them,
    run as _rspamd with its groups (systemd's User=_rspamd) in a private network namespace. A DBDIR of
    its own: Rspamd deletes the hyperscan files of other rule sets from the one it uses."""
    assert os.geteuid() == 0 and shutil.which("rspamd"), "needs root and rspamd (make deps installs it)"
    base = Path(tempfile.mkdtemp(prefix="ie-rspamd-production-", dir="/tmp"))
    base.chmod(0o755)
    admin = admin_layer(base / "admin", ADMIN_FILES)
    ns = Namespace(net=True).start()
    # with a Redis and the learning files `ie-config rspamd-learning` writes (the RPM's %post). Rspamd 3.4's
    # controller crashes on /stat (and is respawned) when Bayes's Redis is unreachable.
    redis = RedisProcess(base / "redis", wrap=ns.enter_argv)
    proc = NsRspamd(ns, base / "rspamd", dbdir=base / "db", main_config=SYSTEM_CONFDIR / "rspamd.conf",
                    layers=(admin,), redis=config.validate({"rspamd": {"redis": {"servers": [str(redis.socket)]}}},
                                                           "test")["rspamd"]["redis"])
    try:
        redis.start()
        proc.start()
        yield proc
    finally:
        proc.stop()
        redis.stop()
        ns.stop()
        shutil.rmtree(base, ignore_errors=True)


def listeners(ns: Namespace, pids, *kinds: str):
    out = ns.run(["ss", "-H", "-l", "-n", "-p", *kinds]).stdout.decode()
    return sorted(line.split()[4] for line in out.splitlines() if any(f"pid={p}," in line for p in pids))


def test_production_rspamd_listens_on_its_sockets_only(production_rspamd):
    rspamd = production_rspamd
    pids = {int(p) for p in subprocess.run(["pgrep", "-g", str(rspamd.pid)], capture_output=True,
                                           text=True).stdout.split()}
    assert rspamd.pid in pids and len(pids) >= 3   # main, normal, controller (+ hs_helper)
    inet = listeners(rspamd.ns, pids, "-t", "-u", "-w")
    unix = listeners(rspamd.ns, pids, "-x")
    print(f"\nss -ltuwnp: {inet}\nss -lxnp: {unix}")
    assert inet == ["127.0.0.1:11335"]   # the fuzzy storage, UDP (tests/system/test_learning.py)
    assert unix == sorted([str(rspamd.socket), str(rspamd.controller_socket),
                           str(rspamd.dbdir / "rspamd.sock")])   # + the stock control socket, 0600
    # _rspamd:_imunifyemail 0660, given by Rspamd running unprivileged (a member of _imunifyemail)
    assert rspamd.socket_problem() == ""
    log = (rspamd.logdir / "rspamd.log").read_text(errors="replace")
    assert "cannot change owner" not in log and "cannot change mode" not in log
    assert re.search(r"worker of type rspamd_proxy\(\S+proxy.sock mode=0600 owner=_rspamd\) is disabled", log)


def probe(user: str, address: str, *requests: str, drop_groups: bool = False) -> dict:
    """devtools.rspamd_probe as ``user`` (every request unless some are named): with the user's groups
    (a login), or none (the daemon after its drop)."""
    groups = ["--clear-groups"] if drop_groups else ["--init-groups"]
    only = [arg for r in requests for arg in ("--request", r)]
    out = subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", *groups, PYTHON, "-m",
                          "devtools.rspamd_probe", "--address", address, *only],
                         capture_output=True, text=True, cwd="/", env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)[address]


def test_production_sockets_admit_the_product_user_and_root_only(production_rspamd):
    ensure_hosted_user("demo1")
    for sock, request in ((production_rspamd.socket, "POST /checkv2"),
                          (production_rspamd.controller_socket, "GET /history")):
        address = f"unix:{sock}"
        assert set(probe("demo1", address).values()) == {"refused EACCES"}
        # the daemon's user, with no supplementary group at all: its own group is the socket's
        assert probe("_imunifyemail", address, request, drop_groups=True) == {request: "answered 200"}
    assert production_rspamd.controller_get("/stat")["version"].startswith("3.")   # root
