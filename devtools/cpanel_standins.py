"""Recording stand-ins for the cPanel programs the product calls (DESIGN §6):
``buildeximconf``, ``restartsrv_exim`` and ``systemctl``, installed under a
``$IMUNIFYEMAIL_ROOT`` at their real paths.

They are faithful to CPANEL.md where it matters to the product:

* ``/usr/local/cpanel/scripts/buildeximconf`` merges ``/etc/exim.conf.local``
  into the template at its ``@SECTION@`` markers (``@CONFIG@``: ``opt = v``
  replaces the template's ``opt``, ``opt =`` removes it), validates with
  ``exim -C tmp -bV``, keeps the old ``/etc/exim.conf`` and exits 1 on bad
  syntax, and runs ``prebuildeximconf`` before and ``postbuildeximconf
  --version V --hasdkim 1 --hasmaildir 1 --status ok|fail`` after, when they
  are executable. The new config is written over the old one *in place*: a
  mount namespace binds that file over Exim's default path (EXIM.md).
* ``/usr/local/cpanel/scripts/restartsrv_exim`` sends SIGHUP to the Exim
  daemon (Exim re-executes itself and reads its config) and waits until the
  new one logged its start and accepts SMTP (a connection made to the old
  one during the re-exec would be reset).
* ``/usr/bin/systemctl`` only records and keeps each unit's state in a file:
  ``start|stop|restart|enable|disable [--now] UNIT...``, ``is-active UNIT``.
* ``/usr/local/cpanel/bin/whmapi1 [--output=json] hold_outgoing_email|release_outgoing_email user=NAME``
  (CPANEL.md, cPanel's own hold of outgoing mail) answers as WHM API 1 does, ``{"metadata": {"command",
  "reason", "result", "version"}}`` (JSON; YAML without ``--output=json``), exiting 0 even when it
  refuses (``result`` 0): an account with no ``/var/cpanel/users/NAME``, or while the fail flag
  ``/var/cpanel/whmapi1.fail`` exists (its text is the reason). It keeps the held accounts one a line in
  ``/etc/outgoing_mail_hold_users``, the state file CPANEL.md names; other functions are refused.

Every call is appended to ``/var/log/cpanel-standins.log`` under the root as
one JSON line, so tests can assert what was run.
"""
import json
from pathlib import Path
from typing import List

BUILDEXIMCONF = "/usr/local/cpanel/scripts/buildeximconf"
RESTARTSRV_EXIM = "/usr/local/cpanel/scripts/restartsrv_exim"
SYSTEMCTL = "/usr/bin/systemctl"
WHMAPI1 = "/usr/local/cpanel/bin/whmapi1"
WHMAPI1_FAIL = "/var/cpanel/whmapi1.fail"
HOLD_USERS = "/etc/outgoing_mail_hold_users"
TEMPLATE = "/usr/local/cpanel/etc/exim/distconfig/exim.conf.dist"
CALL_LOG = "/var/log/cpanel-standins.log"
UNIT_STATE_DIR = "/run/systemctl-standin"

_COMMON = r'''
import json, os, sys, time
def record(name, **extra):
    with open(os.path.join(ROOT, "var/log/cpanel-standins.log"), "a") as fh:
        fh.write(json.dumps({"program": name, "argv": sys.argv[1:], "time": time.time(), **extra}) + "\n")
'''

_BUILDEXIMCONF = r'''
import re, subprocess
SECTION = re.compile(r"^@([A-Z]+)@\s*$")
OPTION = re.compile(r"^\s*([a-z_0-9]+)\s*=(.*)$")

def sections(text):
    out, name = {}, None
    for line in text.splitlines(keepends=True):
        m = SECTION.match(line)
        if m:
            name = m.group(1)
            out.setdefault(name, "")
        elif name is not None:
            out[name] += line
    return out

def merge(template, local):
    found = sections(local)
    config = found.get("CONFIG", "")
    overridden = {m.group(1) for m in map(OPTION.match, config.splitlines()) if m}
    out, main = [], True
    for line in template.splitlines(keepends=True):
        if line.startswith("begin "):
            main = False
        m = SECTION.match(line)
        if m:
            body = found.get(m.group(1), "")
            if m.group(1) == "CONFIG":   # "opt =" only removes cPanel's value
                body = "".join(l for l in body.splitlines(keepends=True)
                               if not (OPTION.match(l) and not OPTION.match(l).group(2).strip()))
            out.append(body if not body or body.endswith("\n") else body + "\n")
            continue
        opt = OPTION.match(line)
        if main and opt and opt.group(1) in overridden:
            continue
        out.append(line)
    return "".join(out)

def hook(name, *args):
    path = os.path.join(ROOT, "usr/local/cpanel/scripts", name)
    if os.path.isfile(path) and os.access(path, os.X_OK):
        subprocess.run([path, *args], check=False)

def main():
    record("buildeximconf")
    hook("prebuildeximconf")
    with open(os.path.join(ROOT, TEMPLATE.lstrip("/"))) as fh:
        template = fh.read()
    local_path = os.path.join(ROOT, "etc/exim.conf.local")
    local = open(local_path).read() if os.path.exists(local_path) else ""
    merged = merge(template, local)
    target = os.path.join(ROOT, "etc/exim.conf")
    tmp = target + ".buildeximconf"
    with open(tmp, "w") as fh:
        fh.write(merged)
    os.chmod(tmp, 0o644)
    check = subprocess.run([EXIM, "-C", tmp, "-bV"], capture_output=True, text=True)
    status = "ok" if check.returncode == 0 else "fail"
    if status == "ok":
        # In place: a bind mount of this file over Exim's default path keeps its inode.
        with open(target, "a+") as fh:
            fh.seek(0)
            fh.truncate()
            fh.write(merged)
        os.chmod(target, 0o644)
        os.unlink(tmp)
    else:
        err = (check.stdout + check.stderr).strip().splitlines()
        sys.stderr.write("Configuration file has invalid syntax, keeping the previous exim.conf:\n"
                         + "\n".join(err[-5:]) + "\n")
    hook("postbuildeximconf", "--version", "4.96", "--hasdkim", "1", "--hasmaildir", "1", "--status", status)
    return 0 if status == "ok" else 1

sys.exit(main())
'''

_RESTARTSRV_EXIM = r'''
import signal, socket
record("restartsrv_exim")
pidfile = os.path.join(ROOT, "var/run/exim.pid")
def starts(pid):   # Exim logs this line once it listens again after re-executing itself
    try:
        return open(MAINLOG, errors="replace").read().count("daemon started: pid=%d," % pid)
    except OSError:
        return 0
try:
    pid = int(open(pidfile).read().split()[0])
    before = starts(pid)
    os.kill(pid, signal.SIGHUP)
except (OSError, ValueError, IndexError):
    print("exim is not running: nothing to restart")
    sys.exit(0)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    if starts(pid) > before:
        try:
            socket.create_connection(("127.0.0.1", SMTP_PORT), 1).close()
            print("exim restarted")
            sys.exit(0)
        except OSError:
            pass
    time.sleep(0.05)
print("exim did not come back", file=sys.stderr)
sys.exit(1)
'''

_SYSTEMCTL = r'''
state_dir = os.path.join(ROOT, "run/systemctl-standin")
os.makedirs(state_dir, exist_ok=True)
args = [a for a in sys.argv[1:] if not a.startswith("-")]
record("systemctl")
if not args:
    sys.exit(0)
verb, units = args[0], args[1:]
now = "--now" in sys.argv[1:]
def state(unit):
    try:
        return open(os.path.join(state_dir, unit)).read().strip()
    except OSError:
        return "inactive"
def put(unit, value):
    with open(os.path.join(state_dir, unit), "w") as fh:
        fh.write(value)
if verb == "is-active":
    for u in units:
        print(state(u))
    sys.exit(0 if all(state(u) == "active" for u in units) else 3)
for u in units:
    if verb in ("start", "restart", "reload-or-restart") or (verb == "enable" and now):
        put(u, "active")
    elif verb == "stop" or (verb == "disable" and now):
        put(u, "inactive")
sys.exit(0)
'''

_WHMAPI1 = r'''
args = sys.argv[1:]
as_json = "--output=json" in args
words = [a for a in args if not a.startswith("--")]
function = words[0] if words else ""
params = dict(w.split("=", 1) for w in words[1:] if "=" in w)
record("whmapi1", function=function, params=params)
user = params.get("user", "")
hold_file = os.path.join(ROOT, "etc/outgoing_mail_hold_users")
fail_flag = os.path.join(ROOT, "var/cpanel/whmapi1.fail")

def answer(result, reason, data=None):
    meta = {"command": function, "reason": reason, "result": result, "version": 1}
    out = {"metadata": meta, **({"data": data} if data is not None else {})}
    if as_json:
        print(json.dumps(out))
    else:   # whmapi1's default output is YAML
        print("---\nmetadata:\n" + "".join("  %s: %s\n" % kv for kv in sorted(meta.items())), end="")
    sys.exit(0)

def held():
    try:
        return [line.strip() for line in open(hold_file) if line.strip()]
    except FileNotFoundError:
        return []

if function not in ("hold_outgoing_email", "release_outgoing_email"):
    answer(0, "Unknown app (%s) requested for this version (1) of the API." % function)
if not user:
    answer(0, "The 'user' argument is required.")
if not os.path.isfile(os.path.join(ROOT, "var/cpanel/users", user)):
    answer(0, "'%s' is not a cPanel user." % user)
if os.path.exists(fail_flag):
    answer(0, open(fail_flag).read().strip() or "failed (simulated)")
users = [u for u in held() if u != user] + ([user] if function == "hold_outgoing_email" else [])
os.makedirs(os.path.dirname(hold_file), exist_ok=True)
with open(hold_file + ".tmp", "w") as fh:
    fh.write("".join(u + "\n" for u in users))
os.replace(hold_file + ".tmp", hold_file)
answer(1, "OK")
'''


def _write(path: Path, constants: dict, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = "#!/usr/bin/python3\n# Stand-in written by devtools/cpanel_standins.py\n"
    head += "".join(f"{k} = {v!r}\n" for k, v in constants.items())
    path.write_text(head + _COMMON + body)
    path.chmod(0o755)


def install(root: Path, smtp_port: int, mainlog: Path, exim: str = "/usr/sbin/exim", runtime_root: str = "",
            systemctl: bool = True) -> None:
    """Write the stand-ins under ``root``; they act on ``runtime_root`` (default ``root``: a
    different one when they run inside a namespace where ``root`` is mounted as ``/``).
    ``systemctl=False``: the root has a real systemd (devtools.booted_system), its systemctl stays."""
    root = Path(root)
    (root / "var/log").mkdir(parents=True, exist_ok=True)
    base = {"ROOT": runtime_root or str(root)}
    _write(root / BUILDEXIMCONF.lstrip("/"), {**base, "TEMPLATE": TEMPLATE, "EXIM": exim}, _BUILDEXIMCONF)
    _write(root / RESTARTSRV_EXIM.lstrip("/"), {**base, "SMTP_PORT": smtp_port, "MAINLOG": str(mainlog)},
           _RESTARTSRV_EXIM)
    if systemctl:
        _write(root / SYSTEMCTL.lstrip("/"), base, _SYSTEMCTL)
    install_whmapi1(root, runtime_root)


def install_whmapi1(root: Path, runtime_root: str = "") -> None:
    """The ``whmapi1`` stand-in alone (for a root without Exim: the notification job's tests)."""
    root = Path(root)
    (root / "var/log").mkdir(parents=True, exist_ok=True)
    _write(root / WHMAPI1.lstrip("/"), {"ROOT": runtime_root or str(root)}, _WHMAPI1)


def held_outgoing(root: Path) -> List[str]:
    """The accounts whose outgoing mail cPanel holds now (the stand-in's state file)."""
    try:
        return [line for line in (Path(root) / HOLD_USERS.lstrip("/")).read_text().splitlines() if line]
    except FileNotFoundError:
        return []


def calls(root: Path, program: str = "") -> List[dict]:
    """What the stand-ins were asked to do, oldest first."""
    try:
        lines = (Path(root) / CALL_LOG.lstrip("/")).read_text().splitlines()
    except FileNotFoundError:
        return []
    found = [json.loads(line) for line in lines if line.strip()]
    return [c for c in found if not program or c["program"] == program]


def unit_state(root: Path, unit: str) -> str:
    try:
        return (Path(root) / UNIT_STATE_DIR.lstrip("/") / unit).read_text().strip()
    except FileNotFoundError:
        return "inactive"
