"""Run every benchmark and print the figures (``make bench``)."""
import sys

from bench import activity_bench, exim_bench, incoming_bench, quarantine_bench, throughput_bench, web_bench


def main() -> int:
    print("imunifyemail benchmarks (this machine, one run)\n")
    quarantine_bench.run()
    throughput_bench.run()
    activity_bench.run()
    web_bench.run()
    exim_bench.run()
    incoming_bench.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
