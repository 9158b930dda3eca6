"""The whole product on this machine, as a newcomer would try it (``make run``).

Builds a cPanel-shaped root under ``.sandbox/root`` (accounts ``demo1``/``demo1.test`` and
``demo2``/``demo2.test``, real OS users), a cPanel-like Exim with the filter enabled by
``ie-config enable``, Rspamd and ``imunifyemaild``; Exim listens on 127.0.0.1:2525 and relays
for loopback clients, every remote domain goes to a local SMTP sink that keeps each message as one
``.eml`` under ``.sandbox/sink/``. Exim's config is bound over its default path in a private
*mount* namespace (hosted users' ``sendmail`` must use that path); the network is the machine's,
so the sandbox is reachable on its loopback. Nothing leaves the machine: there is no route out in
Exim's configuration and no DNS lookup in it. The web app runs under the real gunicorn on its two
unix sockets, plus a loopback HTTP listener with an identity chooser ("WHM (root)" or a hosted
account) that exists only here: http://127.0.0.1:8765/ (``IE_SANDBOX_WEB_PORT``). A first start
sends the demo mail, so the pages have something held to show.

    python -m devtools.sandbox run        # foreground until Ctrl-C (make run)
    python -m devtools.sandbox start      # in the background, returns when ready (make sandbox-start)
    python -m devtools.sandbox stop       # (make sandbox-stop)
    python -m devtools.sandbox demo       # sample mail: ham, GTUBE, an EXE, a burst over a limit (make demo)
    python -m devtools.sandbox sendmail --as demo1 -- -f a@demo1.test b@remote.example < message
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional

from devtools import samples
from devtools.exim import SANDBOX_PASSWORD
from devtools.stack import ADMIN_CONTACT, OWNERS_DOMAIN, PYTHON, MailStack
from devtools.waiting import TimedOut, eventually

REPO = Path(__file__).resolve().parent.parent
SANDBOX = REPO / ".sandbox"
ROOT = SANDBOX / "root"
SMTP_PORT = 2525
SINK_PORT = int(os.environ.get("IE_SANDBOX_SINK_PORT", "2526"))
WEB_PORT = int(os.environ.get("IE_SANDBOX_WEB_PORT", "8765"))
PIDFILE = SANDBOX / "sandbox.pid"          # the runner
NSFILE = SANDBOX / "namespace.pid"         # the mount namespace's holder, for nsenter
READY = SANDBOX / "ready"
LOG = SANDBOX / "sandbox.log"
WRAPPER = SANDBOX / "bin/sendmail"
TRUSTED_CONFIGS = Path("/etc/exim4/trusted_configs")
NOTIFY_INTERVAL = 60   # seconds, as imunifyemail-notify.timer


def make_stack() -> MailStack:
    return MailStack(SANDBOX, net=False, smtp_port=SMTP_PORT, sink_port=SINK_PORT,
                     config_extra={"reinject": {"sendmail": str(WRAPPER)}})


def install_sendmail_wrapper(config: Path) -> None:
    """Re-injection and release reach the sandbox's Exim from anywhere (a root shell's ``ie-cli
    emails release`` runs outside the mount namespace): ``exim -C <sandbox config>``, run as the
    Exim user. Debian's Exim keeps its privilege for that only if the file is listed in
    ``/etc/exim4/trusted_configs`` (root-owned, not writable by others): the sandbox adds it."""
    WRAPPER.parent.mkdir(parents=True, exist_ok=True)
    WRAPPER.parent.chmod(0o755)
    WRAPPER.write_text(f"#!/bin/sh\n# Exim's sendmail for the imunifyemail sandbox\nexec /usr/sbin/exim -C {config} \"$@\"\n")
    WRAPPER.chmod(0o755)
    listed = TRUSTED_CONFIGS.read_text().split() if TRUSTED_CONFIGS.exists() else []
    if str(config) not in listed:
        with open(TRUSTED_CONFIGS, "a") as fh:
            fh.write(f"{config}\n")
        TRUSTED_CONFIGS.chmod(0o644)


def banner(stack: MailStack) -> str:
    venv = Path(PYTHON).parent
    rel_root = os.path.relpath(ROOT, Path.cwd())
    return f"""
imunifyemail sandbox is running.
  the pages (WHM and cPanel):   http://127.0.0.1:{WEB_PORT}/  (choose "WHM (root)" or a hosted account)
  SMTP:                         127.0.0.1:{SMTP_PORT} (AUTH PLAIN <account or mailbox>/sandbox; without a login: "sender not verified")
  accounts:                     demo1 (demo1.test), demo2 (demo2.test) — real OS users
  send as a hosted user:        {PYTHON} -m devtools.sandbox sendmail --as demo1 -- -f a@demo1.test b@remote.example < msg.eml
  sample mail:                  make demo
  delivered ("the Internet"):   {stack.sink_dir}/*.eml
  local mailboxes:              {stack.layout.mailbox}
  Exim log:                     {stack.layout.mainlog}
  daemon log:                   {SANDBOX}/daemon.log
  Rspamd (no TCP; root only):   rspamc -h {stack.rspamd_rundir}/controller.sock stat
  what it learned (Redis):      redis-cli -s {stack.redis_socket} dbsize   (ie-cli emails remove --as-spam, release --not-spam)
  notifications (every minute):  digests to the contacts, {ADMIN_CONTACT} and <account>-owner@{OWNERS_DOMAIN}, in the sink
  the CLIs:                     IMUNIFYEMAIL_ROOT={rel_root} {venv}/ie-cli emails list -a root
                                IMUNIFYEMAIL_ROOT={rel_root} {venv}/ie-config status
""".rstrip("\n")


def run(detached: bool = False) -> int:
    if os.geteuid() != 0:
        raise SystemExit("the sandbox needs root (it creates users, namespaces, and drops privileges like the product)")
    for f in (READY, NSFILE):
        f.unlink(missing_ok=True)
    stack = make_stack()
    SANDBOX.mkdir(exist_ok=True)
    SANDBOX.chmod(0o755)
    install_sendmail_wrapper(stack.layout.config)
    stack.build()
    stop: List[int] = []
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print(f"starting Rspamd, imunifyemaild and Exim (127.0.0.1:{SMTP_PORT}); Rspamd's first start compiles "
          "its rules (~15 s)", flush=True)
    try:
        stack.start()
        stack.start_web(dev_port=WEB_PORT)
        NSFILE.write_text(str(stack.ns.pid))
        if not _ie_cli("emails", "list", "-a", "root", "--json").stdout.count('"email_id"'):
            demo()   # a first start: something held to look at
        threading.Thread(target=notify_loop, args=(stack, stopping), name="notify", daemon=True).start()
        READY.write_text(str(os.getpid()))
        print(banner(stack), flush=True)
        print("\nCtrl-C stops it." if not detached else "\n(make sandbox-stop stops it)", flush=True)
        while not stop:
            if stack.daemon is not None and stack.daemon.poll() is not None:
                print(f"imunifyemaild exited with status {stack.daemon.returncode}; see {SANDBOX}/daemon.log",
                      flush=True)
                return 1
            if stack.exim is not None and stack.exim.proc is not None and stack.exim.proc.poll() is not None:
                print("exim exited", flush=True)
                return 1
            if stack.web is not None and stack.web.proc is not None and stack.web.proc.poll() is not None:
                print(f"imunifyemail-web exited; see {SANDBOX}/web.log", flush=True)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stopping.set()
        print("stopping the sandbox", flush=True)
        for f in (READY, NSFILE):
            f.unlink(missing_ok=True)
        stack.stop()
    return 0


def notify_loop(stack: MailStack, stopping: threading.Event) -> None:
    """What imunifyemail-notify.timer does on a server: ``ie-config notify`` every minute (digests to the
    sandbox's contact addresses, which are remote: they land in the sink)."""
    while not stopping.wait(NOTIFY_INTERVAL):
        proc = stack.ie_config("notify", check=False)
        out = (proc.stdout + proc.stderr).decode("utf-8", "replace").strip()
        if out:
            print(f"ie-config notify: {out}", flush=True)


def _running_pid() -> Optional[int]:
    try:
        pid = int(PIDFILE.read_text())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None


def start() -> int:
    if _running_pid():
        print(f"the sandbox is already running (pid {_running_pid()})")
        return 0
    SANDBOX.mkdir(exist_ok=True)
    log = open(LOG, "ab")
    proc = subprocess.Popen([PYTHON, "-m", "devtools.sandbox", "run", "--detached"], cwd=str(REPO),
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    log.close()
    PIDFILE.write_text(str(proc.pid))
    eventually(lambda: READY.exists() or proc.poll() is not None, "the sandbox to start", timeout=None, interval=0.2)
    if not READY.exists():
        print(f"the sandbox did not start (status {proc.returncode}); see {LOG}:\n"
              + LOG.read_text(errors="replace")[-3000:])
        PIDFILE.unlink(missing_ok=True)
        return 1
    print(banner(make_stack()))
    return 0


def stop() -> int:
    pid = _running_pid()
    if pid is None:
        print("the sandbox is not running")
        PIDFILE.unlink(missing_ok=True)
        return 0
    os.kill(pid, signal.SIGTERM)

    def gone() -> bool:
        try:   # reap it when we started it in this process group; harmless otherwise
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return _running_pid() != pid
    eventually(gone, "the sandbox to stop", timeout=None, interval=0.2)
    PIDFILE.unlink(missing_ok=True)
    print("the sandbox stopped")
    return 0


def _ns_pid() -> int:
    try:
        return int(NSFILE.read_text())
    except (FileNotFoundError, ValueError):
        raise SystemExit("the sandbox is not running: make sandbox-start (or make run in another terminal)") from None


def sendmail_as(user: str, args: List[str], message: bytes) -> subprocess.CompletedProcess:
    """A hosted user's ``sendmail``, inside the sandbox's mount namespace."""
    argv = ["nsenter", "-t", str(_ns_pid()), "-m", "--", "setpriv", f"--reuid={user}", f"--regid={user}",
            "--init-groups", "--", "/usr/sbin/sendmail", "-oi", *args]
    return subprocess.run(argv, input=message, capture_output=True, cwd="/")


def _ie_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "imunifyemail.cli.ie_cli", *args], capture_output=True, text=True,
                          env={**os.environ, "IMUNIFYEMAIL_ROOT": str(ROOT)}, cwd="/")


def demo() -> int:
    import smtplib

    _ns_pid()
    stamp = time.strftime("%H:%M:%S")
    for sender, to, raw in (
            ("alice@demo1.test", "bob@remote.example",
             samples.ham(sender="alice@demo1.test", subject=f"Quarterly report ({stamp})")),
            ("sales@demo2.test", "buyer@remote.example",
             samples.with_exe(sender="sales@demo2.test", to=("buyer@remote.example",), subject=f"Your invoice ({stamp})"))):
        with smtplib.SMTP("127.0.0.1", SMTP_PORT, local_hostname="demo.client") as smtp:
            smtp.login(sender, SANDBOX_PASSWORD)   # the mailbox's own login: its account's mail
            smtp.sendmail(sender, [to], raw)
    print("ham from alice@demo1.test and an EXE attachment from sales@demo2.test, over SMTP AUTH")
    with smtplib.SMTP("127.0.0.1", SMTP_PORT, local_hostname="demo.client") as smtp:
        smtp.sendmail("ceo@demo2.test", ["payments@remote.example"],
                      samples.gtube(sender="ceo@demo2.test", subject=f"Urgent wire transfer ({stamp})"))
    print("GTUBE claiming ceo@demo2.test over SMTP without a login: held under unverified:demo2 (sender not verified)")
    out = sendmail_as("demo1", ["-f", "news@demo1.test", "list@remote.example"],
                      samples.gtube(sender="news@demo1.test", to=("list@remote.example",),
                                    subject=f"Cheap pills ({stamp})"))
    print("GTUBE from news@demo1.test, through sendmail as the hosted user demo1"
          + ("" if out.returncode == 0 else f" — failed: {out.stderr.decode().strip()}"))
    burst = "burst@demo2.test"
    if _ie_cli("am", "--help").returncode != 0:
        print("burst over a limit: skipped (ie-cli am is not there yet)")
        return 0
    sendmail_as("demo2", ["-f", burst, "first@remote.example"], samples.ham(sender=burst, subject=f"Burst 0 ({stamp})"))

    def burst_ids() -> List[str]:
        stats = json.loads(_ie_cli("am", "stats", "--sender-email", burst).stdout or "{}")
        return [e["id"] for a in stats.get("accounts") or [] for d in a.get("domains") or []
                for e in d.get("sender_emails") or [] if e["name"] == burst]
    try:   # once the daemon has counted the first one
        ids = eventually(burst_ids, f"{burst} in the Activity Monitor", timeout=30, interval=0.2)
    except TimedOut:
        ids = []
    if ids:
        _ie_cli("am", "limit", "set", f"--id={ids[0]}", "--limit=3", "--so-type=sender_email")
    for n in range(1, 6):
        sendmail_as("demo2", ["-f", burst, f"r{n}@remote.example"],
                    samples.ham(sender=burst, subject=f"Burst {n} ({stamp})"))
    print(f"a burst of 6 from {burst} with a limit of 3 per hour for it: the last ones are held (ratelimit)")
    print(f"\nsee: IMUNIFYEMAIL_ROOT={os.path.relpath(ROOT)} {Path(PYTHON).parent}/ie-cli emails list -a root")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.sandbox", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run")
    run_p.add_argument("--detached", action="store_true", help=argparse.SUPPRESS)
    sub.add_parser("start")
    sub.add_parser("stop")
    sub.add_parser("demo")
    send_p = sub.add_parser("sendmail")
    send_p.add_argument("--as", dest="user", required=True, choices=["demo1", "demo2"])
    send_p.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.detached)
    if args.command == "start":
        return start()
    if args.command == "stop":
        return stop()
    if args.command == "demo":
        return demo()
    extra = args.args[1:] if args.args[:1] == ["--"] else args.args
    out = sendmail_as(args.user, extra, sys.stdin.buffer.read())
    sys.stderr.write(out.stderr.decode())
    return out.returncode


if __name__ == "__main__":
    sys.exit(main())
