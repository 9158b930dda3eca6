"""Inbound throughput to a local mailbox (Maildir): Exim alone, Exim with the incoming filter (its
router asks the daemon, which has Rspamd score the message once), and, for the choice between the two
ways of scoring, Exim with Rspamd's ``spam =`` condition in the DATA ACL. One stack in a private network
namespace; rounds interleaved, the order rotating; figures are medians of per-round values with their
range, and the incoming filter's throughput as a ratio to Exim alone's of the same run.

A message is done when its file is in the mailbox's Maildir (inbox or Junk).
"""
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Tuple

from bench import exim_bench
from bench.stats import line
from devtools import samples
from devtools.exim import maildir
from devtools.stack import MailStack
from devtools.waiting import eventually

MESSAGES = 400
ROUNDS = 5
CLIENTS = 4
PER_CONNECTION = 10
MAILBOXES = ("info@demo1.test", "sales@demo1.test", "info@demo2.test", "sales@demo2.test")
# The other way to score inbound mail: Rspamd's `spam =` condition in Exim's DATA ACL (Exim's user asks
# Rspamd; the bench alone gives it a TCP listener). It only scores: nothing refused, every message
# delivered, as the incoming filter does.
ACL = """@BEGINACL@
incoming_rspamd:
  warn    spam = nobody:true/defer_ok
          add_header = X-Spam-Action: $spam_action
  accept

@CONFIG@
spamd_address = 127.0.0.1 %d variant=rspamd
acl_smtp_data = incoming_rspamd
"""


def _delivered(boxes: List[Path], folders=("", ".Junk")) -> int:
    return sum(len(list((b / sub / "new").glob("*"))) for b in boxes for sub in folders)


def _round(stack: MailStack, boxes: List[Path], tag: str) -> Tuple[float, float, float]:
    """Throughput (msg/s), the machine's CPU per message and the daemon's (ms)."""
    items = [(MAILBOXES[i % len(MAILBOXES)],
              (samples.gtube if i % 10 == 0 else samples.ham)(sender="someone@outside.example",
                                                              to=(MAILBOXES[i % len(MAILBOXES)],),
                                                              subject=f"{tag} {i}"))
             for i in range(MESSAGES)]
    before = _delivered(boxes)
    refused = [0]

    def client(chunk) -> None:
        smtp = None
        try:
            for n, (rcpt, raw) in enumerate(chunk):
                if n % PER_CONNECTION == 0:
                    if smtp is not None:
                        smtp.sock.close()   # no QUIT: Exim waits 200 ms before answering it
                    smtp = stack.smtp_connection()
                try:
                    smtp.sendmail("someone@outside.example", [rcpt], raw)
                except Exception:   # refused: counted as done, so that a round never hangs
                    refused[0] += 1
        finally:
            if smtp is not None:
                smtp.sock.close()

    daemon = [stack.daemon.pid] if stack.daemon is not None else []
    busy, own = exim_bench._busy_seconds(), exim_bench._cpu_of(daemon)
    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(items[n::CLIENTS],)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    eventually(lambda: _delivered(boxes) - before + refused[0] >= MESSAGES, f"{tag}: {MESSAGES} delivered", 300,
               interval=0.02)
    rate = MESSAGES / (time.perf_counter() - started)
    return (rate, (exim_bench._busy_seconds() - busy) / MESSAGES * 1000,
            (exim_bench._cpu_of(daemon) - own) / MESSAGES * 1000)


def _product(stack: MailStack) -> None:
    """Our blocks in Exim's configuration again after an ACL round."""
    if stack.layout.local_config.exists() and "incoming_rspamd" in stack.layout.local_config.read_text():
        stack.layout.local_config.unlink()
        stack.ie_config("enable")


def _alone(stack: MailStack) -> None:
    _product(stack)
    stack.ie_config("disable-incoming")   # the outbound router never sees local recipients


def _incoming(stack: MailStack) -> None:
    _product(stack)
    stack.ie_config("enable-incoming")


def _acl(stack: MailStack) -> None:
    stack.ie_config("disable-incoming")
    stack.ie_config("disable")
    stack.layout.local_config.write_text(ACL % stack.rspamd_tcp_port)
    stack.run([str(stack.root / "usr/local/cpanel/scripts/buildeximconf")])
    stack.run([str(stack.root / "usr/local/cpanel/scripts/restartsrv_exim")])


def _spread(values: List[float], fmt: str) -> str:
    return exim_bench._spread(values, fmt)


def run() -> None:
    print(f"Inbound -> Maildir ({MESSAGES} messages to {len(MAILBOXES)} mailboxes, 90% ham / 10% GTUBE, "
          f"{CLIENTS} SMTP clients, private network namespace; Exim alone, incoming filter, `spam =` ACL "
          f"interleaved, {ROUNDS} rounds each; the machine is shared: CPU is all of it, busy)")
    base = Path(tempfile.mkdtemp(prefix="ie-bench-incoming-", dir="/tmp"))
    base.chmod(0o755)
    stack = MailStack(base, net=True, rspamd_tcp_port=exim_bench.ACL_RSPAMD_PORT,
                      config_extra={"daemon": {"log_level": "WARNING"}})
    try:
        stack.build()
        stack.start()
        boxes = [maildir(stack.root, a.split("@")[1].split(".")[0], a) for a in MAILBOXES]
        modes = (("alone", _alone), ("incoming", _incoming), ("acl", _acl))
        rates = {name: [] for name, _ in modes}
        cpu = {name: [] for name, _ in modes}
        daemon_cpu = []
        junked = 0
        _round(stack, boxes, "warmup")
        for n in range(ROUNDS):
            for name, use in modes[n % 3:] + modes[:n % 3]:
                use(stack)
                before = _delivered(boxes, (".Junk",))
                rate, machine, own = _round(stack, boxes, f"{name}{n}")
                rates[name].append(rate)
                cpu[name].append(machine)
                if name == "incoming":
                    daemon_cpu.append(own)
                if _delivered(boxes, (".Junk",)) != before and name != "incoming":
                    raise AssertionError(f"{name}: mail in Junk without the incoming filter")
                junked += _delivered(boxes, (".Junk",)) - before
        for name, label in (("alone", "Exim alone -> Maildir"), ("incoming", "Exim + incoming filter -> Maildir"),
                            ("acl", "Exim + Rspamd `spam =` ACL -> Maildir")):
            line(label, _spread(rates[name], "{:.1f} msg/s"))
        for name, label in (("alone", "CPU per message (machine), Exim alone"),
                            ("incoming", "CPU per message (machine), incoming filter"),
                            ("acl", "CPU per message (machine), `spam =` ACL")):
            line(label, _spread(cpu[name], "{:.1f} ms"))
        line("the daemon's CPU per message, incoming filter", _spread(daemon_cpu, "{:.2f} ms"))
        line("CPU per message, incoming filter - `spam =` ACL",
             _spread([i - a for i, a in zip(cpu["incoming"], cpu["acl"])], "{:+.1f} ms"))
        ratios = [i / a for i, a in zip(rates["incoming"], rates["alone"])]
        line("throughput incoming filter / Exim alone", _spread(ratios, "{:.2f}"))
        line("throughput incoming filter / `spam =` ACL",
             _spread([i / a for i, a in zip(rates["incoming"], rates["acl"])], "{:.2f}"))
        line("GTUBE delivered to Junk by the incoming filter", f"{junked} of {ROUNDS * MESSAGES // 10}")
        line("median ratio, incoming / alone",
             f"{statistics.median(rates['incoming']) / statistics.median(rates['alone']):.2f}")
    finally:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    run()
