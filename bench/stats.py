"""Small helpers to report timings."""
import statistics
from typing import Sequence


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def line(label: str, value: str, goal: str = "") -> None:
    print(f"  {label:<52} {value:<28} {goal}".rstrip(), flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
