"""A suggested limit for a sender object, from what it has sent: twice the 95th percentile of its
hourly counts (and, for a daily limit, of its daily counts) over the last 30 days.

Only the hours (days) in which it sent anything count: an idle hour says nothing about what the
object needs when it sends, and counting them would suggest next to nothing for an object that sends
now and then. The percentile is the nearest-rank one (a count it really reached), so the suggestion is
a whole number; never 0, which would mean "unlimited". No mail in the period: no suggestion.
"""
import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

HISTORY_DAYS = 30
PERCENTILE = 95
FACTOR = 2


def nearest_rank(values: Iterable[int], percentile: int = PERCENTILE) -> Optional[int]:
    """The smallest value that at least ``percentile`` % of ``values`` do not exceed; None if empty."""
    ordered: List[int] = sorted(values)
    if not ordered:
        return None
    return ordered[max(math.ceil(percentile / 100 * len(ordered)), 1) - 1]


def suggested_limit(totals: Iterable[int]) -> Optional[int]:
    """Twice the p95 of the periods' totals (those above 0); None without any."""
    p95 = nearest_rank(t for t in totals if t > 0)
    return None if p95 is None else max(FACTOR * p95, 1)


@dataclass(frozen=True)
class Suggestion:
    """For one object, in its limit mode's unit (messages or recipients)."""
    hourly: Optional[int]
    daily: Optional[int]

    def as_dict(self) -> Dict[str, Optional[int]]:
        return {"suggested_limit": self.hourly, "suggested_daily_limit": self.daily}


def suggest(hourly_totals: Iterable[int], daily_totals: Iterable[int]) -> Suggestion:
    return Suggestion(suggested_limit(hourly_totals), suggested_limit(daily_totals))
