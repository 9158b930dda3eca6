"""The product on this machine, for a newcomer: ``make run``.

Builds a cPanel-shaped root under ``.sandbox/root`` (demo accounts ``demo1``
and ``demo2``), starts Rspamd (offline configuration) and ``imunifyemaild``
against it, and waits in the foreground until interrupted. Re-injected mail
lands in ``.sandbox/outbox`` (the Exim integration replaces that recorder).
"""
import argparse
import grp
import pwd
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from devtools.recorder import install_recorder
from devtools.rspamd import RspamdProcess
from devtools.users import ensure_system_user

REPO = Path(__file__).resolve().parent.parent
SANDBOX = REPO / ".sandbox"
ROOT = SANDBOX / "root"
OUTBOX = SANDBOX / "outbox"
ACCOUNTS = {"demo1": ["demo1.test"], "demo2": ["demo2.test"]}
RSPAMD_PORT = int(os.environ.get("IE_SANDBOX_RSPAMD_PORT", "11333"))
CONTROLLER_PORT = int(os.environ.get("IE_SANDBOX_RSPAMD_CONTROLLER_PORT", "11334"))
DAEMON_USER = "_imunifyemail"


def build_root() -> None:
    ensure_system_user(DAEMON_USER)
    for d in (SANDBOX, ROOT, ROOT / "etc/imunifyemail", ROOT / "var/cpanel/users", OUTBOX):
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
    user = pwd.getpwnam(DAEMON_USER)
    os.chown(OUTBOX, user.pw_uid, user.pw_gid)
    userdomains = ROOT / "etc/userdomains"
    userdomains.write_text("".join(f"{d}: {u}\n" for u, ds in ACCOUNTS.items() for d in ds) + "*: nobody\n")
    os.chown(userdomains, 0, grp.getgrnam("mail").gr_gid)
    userdomains.chmod(0o640)
    for user, domains in ACCOUNTS.items():
        (ROOT / "var/cpanel/users" / user).write_text(f"DNS={domains[0]}\nOWNER=root\n")
    sendmail = SANDBOX / "bin/sendmail"
    install_recorder(sendmail, OUTBOX, SANDBOX / "sendmail.fail")
    sendmail.parent.chmod(0o755)
    (ROOT / "etc/imunifyemail/config.yaml").write_text(yaml.safe_dump({
        "rspamd": {"url": f"http://127.0.0.1:{RSPAMD_PORT}", "timeout": 10},
        "reinject": {"sendmail": str(sendmail)},
    }))


def wait_for_socket(path: Path, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"imunifyemaild exited with status {proc.returncode}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("imunifyemaild did not open its socket")


def run() -> int:
    if os.geteuid() != 0:
        raise SystemExit("make run needs root (it creates users and drops privileges like the product)")
    build_root()
    rspamd = RspamdProcess(SANDBOX / "rspamd", RSPAMD_PORT, CONTROLLER_PORT)
    print(f"starting Rspamd on 127.0.0.1:{RSPAMD_PORT} (the first start compiles its rules: ~15 s)")
    rspamd.start()
    env = dict(os.environ, IMUNIFYEMAIL_ROOT=str(ROOT))
    daemon = subprocess.Popen([sys.executable, "-m", "imunifyemail.daemon.main"], env=env, cwd="/")
    sock = ROOT / "var/run/imunifyemail/filter.sock"
    try:
        wait_for_socket(sock, daemon)
        venv = Path(sys.executable).parent
        print(f"""
imunifyemail is running (Ctrl-C stops it).
  filter socket (LMTP): {sock}
  send samples:         {venv}/python -m devtools.send ham|gtube|exe|zip [--from alice@demo1.test] [--to x@remote.example]
  re-injected mail:     {OUTBOX}/
  the quarantine:       IMUNIFYEMAIL_ROOT={ROOT} {venv}/ie-cli emails list -a root
""", flush=True)
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        while not stop and daemon.poll() is None and rspamd.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if daemon.poll() is None:
            daemon.terminate()
            daemon.wait(40)
        rspamd.stop()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.sandbox")
    parser.add_argument("command", choices=["run", "build"])
    args = parser.parse_args(argv)
    if args.command == "build":
        build_root()
        return 0
    return run()


if __name__ == "__main__":
    sys.exit(main())
