"""Exim → sink throughput and latency: Exim alone, Exim with the ``spam =`` ACL recipe admins use by
hand, Exim with imunifyemail (its router asks the daemon: one pass). One stack in a private network
namespace (no DNS stall, nothing leaves), the same corpus and load for each; the ACL and imunifyemail
rounds are interleaved (which goes first alternates), and each figure is given as the median of its
per-round values with their range: on a 2-core VM one round's throughput moves by 10% either way.

A message is done when it reached the sink, was refused at DATA (the ACL, spam) or was held in the
quarantine. Latency is from the start of the SMTP transaction to the sink's copy. CPU per message is
the machine's busy time over the round (/proc/stat), with the daemon's and Rspamd's own shares.
"""
import os
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Tuple

from bench import features
from bench.stats import line, pct
from devtools import samples
from devtools.stack import MailStack
from devtools.waiting import TimedOut, eventually

MESSAGES = 600
ROUNDS = 5
HAM_ROUNDS = 3
PACED = 300
PACED_RATE = 40.0   # msg/s: about a third of what Exim sustains here
CLIENTS = 4
WARMUP = 40
# Exim's smtp_accept_queue_per_connection (10, cPanel's too): later messages of a connection are
# only queued, so a client that sends more opens a new connection, as bulk senders do.
PER_CONNECTION = 10

# The hand-made recipe: Rspamd in Exim's DATA ACL (what a global spamd_address does on cPanel). Exim's ACL
# runs as Exim's user, who may not use Rspamd's socket (_rspamd:_imunifyemail 0660): the bench alone gives
# the scanner a TCP listener too, on the private network namespace's loopback, where admins point it.
ACL_RSPAMD_PORT = 11333
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


def _corpus(tag: str, count: int, spam_every: int = 10) -> List[Tuple[str, str, bytes, bool]]:
    """``count`` messages, every ``spam_every``-th GTUBE (0: none)."""
    items = []
    for i in range(count):
        sender = f"user{i % 50}@demo{1 + i % 2}.test"
        rcpt = f"rcpt{i}@remote{i % 7}.example"
        spam = bool(spam_every) and i % spam_every == spam_every - 1
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

    def done() -> int:
        return len(_arrivals(stack, tag)) + refused[0] + (_held(stack) - held_before)
    eventually(lambda: done() >= len(items), f"{tag}: all {len(items)} messages done", 180, interval=0.02,
               describe=lambda: f"only {done()} done")
    elapsed = time.perf_counter() - started
    arrived = _arrivals(stack, tag)
    latencies = [(arrived[s] - sent_at[s]) / 1e9 for s in arrived if s in sent_at]
    return len(items) / elapsed, latencies


def _busy_seconds() -> float:
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")   # all but idle and iowait


def _cpu_of(pids) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _rspamd_pids(stack: MailStack):
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"rspamd" in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0]:
                out.append(int(pid))
        except OSError:
            continue
    return out


def _paced(stack: MailStack, tag: str, rate: float, count: int = PACED) -> List[float]:
    """Latency at a steady load below saturation: one message every 1/rate s, over one connection per
    message (a web application's mail), each from the start of its SMTP transaction to the sink."""
    items = _corpus(tag, count)
    sent_at: Dict[str, int] = {}
    interval = 1.0 / rate
    started = time.monotonic()
    threads = []

    def one(sender, rcpt, raw) -> None:
        smtp = stack.smtp_connection()
        try:
            subject = raw.split(b"Subject: ", 1)[1].split(b"\n", 1)[0].decode().strip()
            sent_at[subject] = time.time_ns()
            try:
                smtp.sendmail(sender, [rcpt], raw)
            except Exception:
                pass
        finally:
            smtp.sock.close()

    for n, (sender, rcpt, raw, _) in enumerate(items):
        time.sleep(max(0.0, started + n * interval - time.monotonic()))
        t = threading.Thread(target=one, args=(sender, rcpt, raw))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    hams = sum(1 for *_, spam in items if not spam)
    try:
        eventually(lambda: len(_arrivals(stack, tag)) >= hams, f"{tag}: every ham at the sink", 120)
    except TimedOut:
        pass   # the latencies of those that arrived
    arrived = _arrivals(stack, tag)
    return [(arrived[s] - sent_at[s]) / 1e9 for s in arrived if s in sent_at]


def _phase(stack: MailStack, tag: str, spam_every: int = 10) -> Dict[str, object]:
    _load(stack, _corpus(f"{tag}w", WARMUP, spam_every), f"{tag}w")
    daemon = [stack.daemon.pid] if stack.daemon is not None else []
    rspamd = _rspamd_pids(stack)
    busy, own, scanner = _busy_seconds(), _cpu_of(daemon), _cpu_of(rspamd)
    rate, latencies = _load(stack, _corpus(tag, MESSAGES, spam_every), tag)
    return {"rate": rate, "lat": latencies, "cpu": (_busy_seconds() - busy) / MESSAGES,
            "daemon": (_cpu_of(daemon) - own) / MESSAGES, "rspamd": (_cpu_of(rspamd) - scanner) / MESSAGES}


def _use_acl(stack: MailStack) -> None:
    stack.ie_config("disable")
    stack.layout.local_config.write_text(SINGLE_PASS % stack.rspamd_tcp_port)
    stack.run([str(stack.root / "usr/local/cpanel/scripts/buildeximconf")])
    stack.run([str(stack.root / "usr/local/cpanel/scripts/restartsrv_exim")])


def _use_imunifyemail(stack: MailStack) -> None:
    stack.layout.local_config.unlink()
    stack.ie_config("enable")
    if stack.daemon is None:
        stack.start_daemon()


def _median(rounds, key) -> float:
    return statistics.median(r[key] for r in rounds)


def _p(rounds, q) -> float:
    return statistics.median(pct(r["lat"], q) for r in rounds)


def _spread(values: List[float], fmt: str) -> str:
    """The median of per-round figures, with their range and every round's."""
    return (f"{fmt.format(statistics.median(values))} (range {fmt.format(min(values))}-{fmt.format(max(values))};"
            f" rounds " + ", ".join(fmt.format(v) for v in values) + ")")


def run() -> None:
    print(f"Exim -> sink ({MESSAGES} messages, 90% ham / 10% GTUBE, {CLIENTS} SMTP clients, {PER_CONNECTION} "
          f"messages a connection, private network namespace; ACL and imunifyemail interleaved, {ROUNDS} rounds "
          f"each (then {HAM_ROUNDS} on ham alone), which goes first alternating; figures per round, then their "
          f"median; "
          f"{features.DEFAULT_SUMMARY})")
    base = Path(tempfile.mkdtemp(prefix="ie-bench-exim-", dir="/tmp"))
    base.chmod(0o755)
    stack = MailStack(base, net=True, rspamd_tcp_port=ACL_RSPAMD_PORT,
                      config_extra={"daemon": {"log_level": "WARNING"}, **features.DEFAULT_CONFIG})
    try:
        stack.build()
        stack.start(enable=False)
        stack.ie_cli(*features.ALL_ON)
        alone = [_phase(stack, "alone")]
        acl, ours = [], []
        paced_acl: List[float] = []
        paced_ours: List[float] = []

        def acl_round(n: int) -> None:
            _use_acl(stack)
            acl.append(_phase(stack, f"acl{n}"))
            paced_acl.extend(_paced(stack, f"pacl{n}", PACED_RATE))

        def our_round(n: int) -> None:
            _use_imunifyemail(stack)
            ours.append(_phase(stack, f"ie{n}"))
            paced_ours.extend(_paced(stack, f"pie{n}", PACED_RATE))

        for n in range(ROUNDS):   # the order alternates: neither setup always runs on a warmer machine
            for one in ((acl_round, our_round) if n % 2 == 0 else (our_round, acl_round)):
                one(n)
        # The same on ham alone: what holding spam costs Exim (accepted, spooled, delivered to
        # :blackhole:) against refusing it at DATA, apart from what the router and the daemon cost.
        ham_acl, ham_ours = [], []
        pair = ((_use_acl, ham_acl, "hacl"), (_use_imunifyemail, ham_ours, "hie"))
        for n in range(HAM_ROUNDS):
            for use, into, name in (pair if n % 2 == 0 else pair[::-1]):
                use(stack)
                into.append(_phase(stack, f"{name}{n}", spam_every=0))
        _report(alone, acl, ours, paced_acl, paced_ours)
        _report_ham(acl, ours, ham_acl, ham_ours)
    finally:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)
    print()


def _exim_side(rounds, ours: bool) -> List[float]:
    """Each round's CPU per message of Exim, the sink and the clients (ms)."""
    return [(r["cpu"] - r["rspamd"] - (r["daemon"] if ours else 0)) * 1000 for r in rounds]


def _report_ham(acl, ours, ham_acl, ham_ours) -> None:
    ratios = [o["rate"] / a["rate"] for o, a in zip(ham_ours, ham_acl)]
    line(f"ham only ({HAM_ROUNDS} rounds): throughput imunifyemail / ACL", _spread(ratios, "{:.2f}"))
    ham_gap = [o - a for o, a in zip(_exim_side(ham_ours, True), _exim_side(ham_acl, False))]
    line("ham only: CPU of Exim + sink + clients, ours - ACL's", _spread(ham_gap, "{:+.2f} ms"),
         "(the router's question, child and headers)")
    mixed_gap = statistics.median(o - a for o, a in zip(_exim_side(ours, True), _exim_side(acl, False)))
    line("so holding a GTUBE message instead of refusing it costs Exim",
         f"{(mixed_gap - statistics.median(ham_gap)) * 10:+.1f} ms per held message",
         "(accepted, spooled, a delivery run to :blackhole:)")


def _report(alone, acl, ours, paced_acl: List[float], paced_ours: List[float]) -> None:
    for label, rounds in (("Exim alone -> sink", alone), ("Exim + Rspamd `spam =` ACL -> sink", acl),
                          ("Exim + imunifyemail (router + daemon) -> sink", ours)):
        line(label, f"{_median(rounds, 'rate'):.0f} msg/s",
             f"(p50 {_p(rounds, 50) * 1000:.0f} ms, p99 {_p(rounds, 99) * 1000:.0f} ms, "
             f"CPU {_median(rounds, 'cpu') * 1000:.1f} ms/msg)")
    ratios = [o["rate"] / a["rate"] for o, a in zip(ours, acl)]
    line("throughput imunifyemail / ACL", _spread(ratios, "{:.2f}"), "(goal >= 0.92)")
    line("  (the ratio of the two medians, as benches before issue 18 gave it)",
         f"{_median(ours, 'rate') / _median(acl, 'rate'):.2f}")
    exim_ours, exim_acl = _exim_side(ours, True), _exim_side(acl, False)
    line("CPU per message of Exim + sink + clients, ours - ACL's",
         _spread([o - a for o, a in zip(exim_ours, exim_acl)], "{:+.2f} ms"), "(goal <= +0.8 ms)")
    line("daemon CPU per message / Rspamd's, same round",
         _spread([r["daemon"] / r["rspamd"] for r in ours], "{:.2f}x"), "(goal <= 1.0x)")
    line(f"latency at a steady {PACED_RATE:.0f} msg/s, ACL", f"p50 {pct(paced_acl, 50) * 1000:.0f} ms",
         f"p99 {pct(paced_acl, 99) * 1000:.0f} ms")
    line(f"latency at a steady {PACED_RATE:.0f} msg/s, imunifyemail", f"p50 {pct(paced_ours, 50) * 1000:.0f} ms",
         f"p99 {pct(paced_ours, 99) * 1000:.0f} ms")
    line("added p99 latency, imunifyemail vs ACL, steady load",
         f"{(pct(paced_ours, 99) - pct(paced_acl, 99)) * 1000:+.0f} ms", "(goal <= 50 ms)")
    line("added p99 latency, imunifyemail vs ACL, saturated", f"{(_p(ours, 99) - _p(acl, 99)) * 1000:+.0f} ms",
         "(both at full load: the gap is the throughput gap)")
    daemon, rspamd, total = _median(ours, "daemon"), _median(ours, "rspamd"), _median(ours, "cpu")
    line("where a message's CPU goes (imunifyemail)", f"{total * 1000:.1f} ms in all:",
         f"daemon {daemon * 1000:.2f} ms, Rspamd {rspamd * 1000:.2f} ms, Exim + sink + clients "
         f"{statistics.median(exim_ours):.2f} ms")
    line("  the same with the ACL", f"{_median(acl, 'cpu') * 1000:.1f} ms in all:",
         f"Rspamd {_median(acl, 'rspamd') * 1000:.2f} ms, Exim + sink + clients "
         f"{statistics.median(exim_acl):.2f} ms")


if __name__ == "__main__":
    run()
