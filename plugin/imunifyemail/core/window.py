"""The one time window the product counts in: the last hour.

Sender limits, containment of a compromised account, a hosted user's release quota, what a full
quarantine deleted lately and the statistics' default timeframe all mean these same 60 minutes.
"""
HOUR = 3600
DAY = 86400   # the daily sender limits' window (core/limits.py)


def hour_before(now: float) -> float:
    """Where the last hour up to ``now`` starts (exclusive)."""
    return now - HOUR
