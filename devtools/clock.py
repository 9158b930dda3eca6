"""The clock a test (or a benchmark) sets, injected wherever the product takes ``clock=``.

In-process only: a daemon in a process of its own gets its time from :mod:`devtools.clocked_daemon`.
"""


class Clock:
    """``clock()`` reads ``clock.t``, which only the test moves (``clock.t += 3600``)."""

    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t
