"""Waiting for a state, never for a time: the one polling loop of the tests, the harness and the sandbox.

A test that sleeps "long enough" is slow when the machine is idle and flaky when it is not; one that
polls the state it needs goes on as soon as that state is there, and says what never came.
"""
import time
from typing import Callable, Optional, TypeVar

T = TypeVar("T")


class TimedOut(AssertionError):
    """The awaited state never came: a failed expectation, like any failed assertion."""


def eventually(predicate: Callable[[], T], what: str, timeout: Optional[float] = 60.0, interval: float = 0.05,
               describe: Optional[Callable[[], str]] = None) -> T:
    """The first true value of ``predicate()``, asked every ``interval`` seconds.

    After ``timeout`` seconds (``None``: as long as it takes, for the interactive sandbox) it raises
    :class:`TimedOut` naming ``what``, followed by ``describe()`` (the logs worth reading). The timeout
    only turns a hang into a failure; nothing is ever asserted about how long it took. ``predicate``
    may raise to give up at once (a process that died will never become ready).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if deadline is not None and time.monotonic() > deadline:
            detail = describe() if describe is not None else ""
            raise TimedOut(f"timed out after {timeout:g} s waiting for {what}" + (f"\n{detail}" if detail else ""))
        time.sleep(interval)
