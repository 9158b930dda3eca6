"""Exim → sink throughput and latency: Exim alone, Exim with the single-pass ``spam =`` recipe admins
use by hand, Exim with imunifyemail (dual pass). One stack in a private network namespace (no DNS
stall, nothing leaves), the same corpus and load for the three, one after the other.

A message is done when it reached the sink, was refused at DATA (single pass, spam) or was held in
the quarantine (dual pass). Latency is from the start of the SMTP transaction to the sink's copy.
"""
import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Tuple

from bench.stats import line, pct
from devtools import samples
from devtools.stack import MailStack

MESSAGES = 600
CLIENTS = 4
WARMUP = 40
# Exim's smtp_accept_queue_per_connection (10, cPanel's too): later messages of a connection are
# only queued, so a client that sends more opens a new connection, as bulk senders do.
PER_CONNECTION = 10

# The hand-made recipe: Rspamd in Exim's DATA ACL (what a global spamd_address does on cPanel).
SINGLE_PASS = """@BEGINACL@
rspamd_check:
  warn    spam = nobody:true/defer_ok
          add_header = X-Spam-Score: $spam_score
          add_header = X-Spam-Action: $spam_action
  deny    condition = ${if eq{$spam_action}{reject}}
          message = Message rejected as spam
  accept

@CONFIG@
spamd_address = 127.0.0.1 %d variant=rspamd
acl_smtp_data = rspamd_check
"""


def _corpus(tag: str, count: int) -> List[Tuple[str, str, bytes, bool]]:
    items = []
    for i in range(count):
        sender = f"user{i % 50}@demo{1 + i % 2}.test"
        rcpt = f"rcpt{i}@remote{i % 7}.example"
        spam = i % 10 == 9
        subject = f"{tag}-{i:05d}"
        raw = (samples.gtube(sender=sender, to=(rcpt,), subject=subject) if spam else
               samples.ham(sender=sender, to=(rcpt,), subject=subject,
                           body="Dear colleague,\n\nplease find the figures below.\n" * 20))
        items.append((sender, rcpt, raw, spam))
    return items


def _held(stack: MailStack) -> int:
    db = stack.root / "var/imunifyemail/quarantine/storage/quarantine.db"
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    finally:
        conn.close()


def _arrivals(stack: MailStack, tag: str) -> Dict[str, int]:
    out = {}
    for path in stack.sink_dir.iterdir():
        if path.suffix != ".eml" or path.name.startswith("."):
            continue
        with open(path, "rb") as fh:
            head = fh.read(4096)
        at = head.find(f"Subject: {tag}-".encode())
        if at >= 0:
            out[head[at + 9:at + 9 + len(tag) + 6].decode()] = int(path.name.split("-")[0])
    return out


def _load(stack: MailStack, items, tag: str) -> Tuple[float, List[float]]:
    sent_at: Dict[str, int] = {}
    refused = [0]
    lock = threading.Lock()
    held_before = _held(stack)

    def client(chunk) -> None:
        smtp = None
        try:
            for n, (sender, rcpt, raw, _) in enumerate(chunk):
                if n % PER_CONNECTION == 0:
                    if smtp is not None:
                        smtp.sock.close()   # no QUIT: Exim waits 200 ms before answering it
                    smtp = stack.smtp_connection()
                subject = raw.split(b"Subject: ", 1)[1].split(b"\n", 1)[0].decode().strip()
                sent_at[subject] = time.time_ns()
                try:
                    smtp.sendmail(sender, [rcpt], raw)
                except Exception:   # refused at DATA by the single-pass ACL
                    with lock:
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
    deadline = time.monotonic() + 180
    while True:
        arrived = _arrivals(stack, tag)
        done = len(arrived) + refused[0] + (_held(stack) - held_before)
        if done >= len(items) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if done < len(items):
        raise RuntimeError(f"{tag}: only {done} of {len(items)} messages done")
    latencies = [(arrived[s] - sent_at[s]) / 1e9 for s in arrived if s in sent_at]
    return len(items) / elapsed, latencies


def _phase(stack: MailStack, tag: str) -> Tuple[float, List[float]]:
    _load(stack, _corpus(f"{tag}w", WARMUP), f"{tag}w")
    return _load(stack, _corpus(tag, MESSAGES), tag)


def run() -> None:
    print(f"Exim -> sink ({MESSAGES} messages, 90% ham / 10% GTUBE, {CLIENTS} SMTP clients, {PER_CONNECTION} "
          "messages a connection, private network namespace)")
    base = Path(tempfile.mkdtemp(prefix="ie-bench-exim-", dir="/tmp"))
    base.chmod(0o755)
    stack = MailStack(base, net=True, config_extra={"daemon": {"log_level": "WARNING"}})
    try:
        stack.build()
        stack.start(enable=False)
        alone, lat_alone = _phase(stack, "alone")
        stack.layout.local_config.write_text(SINGLE_PASS % stack.rspamd_port)
        stack.run([str(stack.root / "usr/local/cpanel/scripts/buildeximconf")])
        stack.run([str(stack.root / "usr/local/cpanel/scripts/restartsrv_exim")])
        single, lat_single = _phase(stack, "single")
        stack.layout.local_config.unlink()
        stack.ie_config("enable")
        dual, lat_dual = _phase(stack, "dual")
        line("Exim alone -> sink", f"{alone:.0f} msg/s", f"(p50 {pct(lat_alone, 50) * 1000:.0f} ms, "
             f"p99 {pct(lat_alone, 99) * 1000:.0f} ms)")
        line("Exim + Rspamd `spam =` ACL (single pass) -> sink", f"{single:.0f} msg/s",
             f"(p50 {pct(lat_single, 50) * 1000:.0f} ms, p99 {pct(lat_single, 99) * 1000:.0f} ms)")
        line("Exim + imunifyemail (dual pass) -> sink", f"{dual:.0f} msg/s",
             f"(p50 {pct(lat_dual, 50) * 1000:.0f} ms, p99 {pct(lat_dual, 99) * 1000:.0f} ms)")
        line("ratio dual / single", f"{dual / single:.2f}", "(goal >= 0.8)")
        line("added p99 latency per message, dual vs single",
             f"{(pct(lat_dual, 99) - pct(lat_single, 99)) * 1000:+.0f} ms")
    finally:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)
    print()


if __name__ == "__main__":
    run()
