"""Router question → verdict throughput through the daemon with real Rspamd (each message spooled in
Exim's format beforehand, read from the spool by the daemon, as in production), against Rspamd's own
scan rate of the same corpus; the daemon's CPU per message and its RSS."""
import asyncio
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench import features
from bench.stats import line, pct
from devtools import samples, spool
from devtools.rspamd import RspamdProcess
from devtools.testroot import TestRoot
from devtools.users import ensure_system_user
from imunifyemail.rspamd import RspamdClient

CONCURRENCY = 8
CORPUS_SIZE = 800


def corpus():
    out = []
    for i in range(CORPUS_SIZE):
        kind = i % 10
        sender = f"user{i % 50}@demo{1 + i % 2}.test"
        to = [f"rcpt{i}@remote{i % 7}.example"]
        if kind < 7:
            raw = samples.ham(sender=sender, to=to, subject=f"Report {i}",
                              body=("Dear colleague,\n\nplease find the figures below.\n" * 20))
        elif kind < 9:
            raw = samples.gtube(sender=sender, to=to)
        else:
            raw = samples.with_exe(zipped=bool(i % 2), sender=sender, to=to)
        out.append((sender, to, raw))
    return out


def rspamd_rate(url: str, items) -> float:
    async def go():
        client = RspamdClient(url, 30)
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(sender, to, raw):
            async with sem:
                result = await client.scan(raw, sender, to, user="demo1", ip="127.0.0.1")
                assert result is not None

        started = time.perf_counter()
        await asyncio.gather(*(one(*item) for item in items))
        elapsed = time.perf_counter() - started
        await client.close()
        return len(items) / elapsed
    return asyncio.run(go())


def rspamd_ham_latency(rspamd: RspamdProcess, count: int = 30):
    """One ham at a time, a new connection each: what a lone message waits for Rspamd."""
    raw = samples.ham(sender="alice@demo1.test", to=["bob@remote.example"], subject="Lunch tomorrow")
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        rspamd.scan(raw, From="alice@demo1.test", Rcpt="bob@remote.example", IP="127.0.0.1", User="demo1",
                    Hostname="localhost")
        latencies.append(time.perf_counter() - started)
    return latencies


def verdict_rate(root: TestRoot, items):
    """Every message spooled first; then the router's question for each, from CONCURRENCY clients."""
    asks = []
    for sender, to, raw in items:
        exim_id = spool.new_id()
        spool.write(root.spool, exim_id, raw, sender, to)
        asks.append((exim_id, to[0]))
    latencies = []
    lock = threading.Lock()
    errors = []

    def worker(chunk):
        for exim_id, rcpt in chunk:
            t0 = time.perf_counter()
            answer = spool.ask(root.socket, exim_id, rcpt)
            dt = time.perf_counter() - t0
            if answer.get("verdict") not in ("pass", "hold"):
                errors.append(answer)
            with lock:
                latencies.append(dt)

    chunks = [asks[i::CONCURRENCY] for i in range(CONCURRENCY)]
    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} message(s) without a verdict: {errors[:3]}")
    return len(items) / elapsed, latencies


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for row in fh:
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
    return float("nan")


def run() -> None:
    print(f"filter daemon (corpus: {CORPUS_SIZE} messages, 70% ham / 20% GTUBE / 10% executables; "
          f"{CONCURRENCY} concurrent clients; {features.SUMMARY})")
    ensure_system_user("_imunifyemail")
    workdir = Path(tempfile.mkdtemp(prefix="ie-bench-rspamd-", dir="/tmp"))
    rspamd = RspamdProcess(workdir)
    rspamd.start()
    root = TestRoot.create(rspamd_url=rspamd.url, daemon_user="_imunifyemail", rspamd={"timeout": 30},
                           daemon={"log_level": "WARNING"}, **features.CONFIG)
    try:
        items = corpus()
        rspamd_rate(rspamd.url, items[:100])            # warm-up
        direct = rspamd_rate(rspamd.url, items)
        alone = rspamd_ham_latency(rspamd)
        root.start()
        time.sleep(1.0)
        idle = rss_mb(root.proc.pid)
        verdict_rate(root, items[:100])                 # warm-up
        # Interleaved rounds, all of issue 10's features off then on: what they cost the mail path.
        rounds = {"off": [], "on": []}
        for state in ("off", "on") * 3:
            root.cli(*(features.ALL_OFF if state == "off" else features.ALL_ON))
            cpu_before = cpu_seconds(root.proc.pid)
            rate, latencies = verdict_rate(root, items)
            rounds[state].append((rate, (cpu_seconds(root.proc.pid) - cpu_before) / len(items), latencies))
        through = statistics.median(r[0] for r in rounds["on"])
        cpu = statistics.median(r[1] for r in rounds["on"])
        cpu_off = statistics.median(r[1] for r in rounds["off"])
        through_off = statistics.median(r[0] for r in rounds["off"])
        latencies = [x for r in rounds["on"] for x in r[2]]
        time.sleep(1.0)
        after = rss_mb(root.proc.pid)
        line("Rspamd /checkv2 alone, same corpus", f"{direct:.0f} msg/s")
        line("Rspamd ham scan, one at a time (new connection each)",
             f"p50 {pct(alone, 50) * 1000:.2f} ms  max {max(alone) * 1000:.2f} ms")
        line("router question -> verdict through imunifyemaild", f"{through:.0f} msg/s",
             "(median of 3 rounds: " + ", ".join(f"{r[0]:.0f}" for r in rounds["on"]) + ")")
        line("ratio daemon / Rspamd alone", f"{through / direct:.2f}", "(goal >= 0.5)")
        line("question -> answer latency per message", f"p50 {pct(latencies, 50) * 1000:.1f} ms  "
             f"p99 {pct(latencies, 99) * 1000:.1f} ms")
        line("daemon CPU per message (spool read, scan call, store)", f"{cpu * 1000:.2f} ms")
        line("issue 10's features: daemon CPU per message off / on",
             f"{cpu_off * 1000:.2f} / {cpu * 1000:.2f} ms = {cpu / cpu_off:.3f}", "(goal <= 1.05)")
        line("issue 10's features: verdicts per second off / on",
             f"{through_off:.0f} / {through:.0f} = {through / through_off:.3f}", "(goal >= 0.95)")
        line("daemon idle RSS (after start-up)", f"{idle:.1f} MB", "(goal <= 60 MB)")
        line("daemon RSS after the corpus", f"{after:.1f} MB")
    finally:
        root.discard()
        rspamd.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
