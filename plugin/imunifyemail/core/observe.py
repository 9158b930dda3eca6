"""Observe mode: sender limits that count and report, holding nothing.

Server-wide (the Activity Monitor's server setting ``observe``) or per sender object (its own
setting, which wins; unset, it follows the server). A message that would be held for ``ratelimit``
passes when every limit it found full is observed; it is then counted as sent (it is sent) and
recorded as a would-be hold, one row per limit it found full. A limit that is enforced still
holds the message, observed ones beside it or not. Spam and winexec holds are not limits: observe
mode never touches them.
"""
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

from .limits import Usage

FOLLOW_SERVER = -1   # `am limit set --observe -1`: the server's setting applies again
ENFORCE = 0
OBSERVE = 1


def observe_error(value, minus_one: Optional[str]) -> Optional[str]:
    """Why ``value`` is no observe setting (1 observe, 0 enforce, and -1 meaning ``minus_one`` when
    that is allowed), or None."""
    allowed = (OBSERVE, ENFORCE) if minus_one is None else (OBSERVE, ENFORCE, FOLLOW_SERVER)
    if isinstance(value, bool) or value not in allowed:
        extra = f", or -1 {minus_one}" if minus_one is not None else ""
        return f"invalid observe {value!r}: use 1 (observe: count and report, hold nothing) or 0 (enforce){extra}"
    return None


def own_setting(value: int) -> Optional[int]:
    """What to store for `am limit set --observe`: None follows the server (-1)."""
    return None if value == FOLLOW_SERVER else value


def observing(own: Optional[int], server_observe: int) -> bool:
    """Whether an object's limits only observe: its own setting, else the server's."""
    return bool(own if own is not None else server_observe)


@dataclass(frozen=True)
class Judgement:
    """What a message's full limits (``offenders``) come to: held for them, or passed and observed."""
    hold: Tuple[Usage, ...] = ()
    observed: Tuple[Usage, ...] = ()


def judge(offenders: Sequence[Usage], own: Mapping[str, Optional[int]], server_observe: int) -> Judgement:
    """``own``: each object's own observe setting by id. Held when any full limit is enforced (then
    for all of them: the held message found them all full); else passed, every one observed."""
    if any(not observing(own.get(u.object_id), server_observe) for u in offenders):
        return Judgement(hold=tuple(offenders))
    return Judgement(observed=tuple(offenders))
