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
from typing import List

from bench import exim_bench
from bench.stats import line
from devtools import samples
from devtools.exim import maildir
from devtools.stack import MailStack
from devtools.waiting import eventually

MESSAGES = 400
ROUNDS = 3
CLIENTS = 4
PER_CONNECTION = 10
MAILBOXES = ("info@demo1.test", "sales@demo1.test", "info@demo2.test", "sales@demo2.test")


def _delivered(boxes: List[Path]) -> int:
    return sum(len(list((b / sub / "new").glob("*"))) for b in boxes for sub in ("", ".Junk"))


def _round(stack: MailStack, boxes: List[Path], tag: str) -> float:
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
                except Exception:   # refused at DATA by the ACL recipe (GTUBE)
                    refused[0] += 1
        finally:
            if smtp is not None:
                smtp.sock.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(items[n::CLIENTS],)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    eventually(lambda: _delivered(boxes) - before + refused[0] >= MESSAGES, f"{tag}: {MESSAGES} delivered", 300,
               interval=0.02)
    return MESSAGES / (time.perf_counter() - started)


def _product(stack: MailStack) -> None:
    """Our blocks in Exim's configuration again after an ACL round."""
    if stack.layout.local_config.exists() and "rspamd_check" in stack.layout.local_config.read_text():
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
    exim_bench._use_acl(stack)


def _spread(values: List[float], fmt: str) -> str:
    return exim_bench._spread(values, fmt)


def run() -> None:
    print(f"Inbound -> Maildir ({MESSAGES} messages to {len(MAILBOXES)} mailboxes, 90% ham / 10% GTUBE, "
          f"{CLIENTS} SMTP clients, private network namespace; Exim alone, incoming filter, `spam =` ACL "
          f"interleaved, {ROUNDS} rounds each)")
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
        _round(stack, boxes, "warmup")
        for n in range(ROUNDS):
            for name, use in modes[n % 3:] + modes[:n % 3]:
                use(stack)
                rates[name].append(_round(stack, boxes, f"{name}{n}"))
        for name, label in (("alone", "Exim alone -> Maildir"), ("incoming", "Exim + incoming filter -> Maildir"),
                            ("acl", "Exim + Rspamd `spam =` ACL -> Maildir")):
            line(label, _spread(rates[name], "{:.1f} msg/s"))
        ratios = [i / a for i, a in zip(rates["incoming"], rates["alone"])]
        line("throughput incoming filter / Exim alone", _spread(ratios, "{:.2f}"))
        line("throughput incoming filter / `spam =` ACL",
             _spread([i / a for i, a in zip(rates["incoming"], rates["acl"])], "{:.2f}"))
        line("median ratio, incoming / alone",
             f"{statistics.median(rates['incoming']) / statistics.median(rates['alone']):.2f}")
    finally:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    run()
