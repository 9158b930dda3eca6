"""Who is told about which events, and when: the rules of the digests and the webhook (no I/O).

Events (held mail, accounts contained, mail released automatically) are read in order of their
id. Each *channel* keeps a cursor — the last event it has dealt with and when it last sent —
in the table ``notified``:

* ``mail-admin``: the administrator's digest, of every account;
* ``mail-owner:<account>``: the digest of that account's owner, of their account only;
* ``mail-to:<addresses>``: when a digest last went to those addresses. The period is kept per
  address, so an address that owns several accounts, or is the administrator's as well, gets one
  digest per period with all of it (the administrator's, if it is theirs);
* ``webhook``: the last event posted.

Cursors are kept per role, not per address: when a contact address changes, the new one carries
on where the old one stopped. A channel without a cursor yet (the first run, a notification just
switched on, an account's first held mail) starts with the events of the last period, never with
older history; a channel switched off is forgotten. A channel whose recipient has no usable
address moves past its events: there is nobody to keep them for.
"""
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .addresses import normalize_email

ADMIN = "mail-admin"
OWNER = "mail-owner:"
SENT_TO = "mail-to:"
WEBHOOK = "webhook"
UNATTRIBUTED = "root"   # mail of no account is the administrator's alone
HELD, CONTAINED, AUTO_RELEASED = "held", "contained", "auto_released"   # as store/events.py


@dataclass(frozen=True)
class Cursor:
    last_event: int
    sent_at: int = 0


@dataclass(frozen=True)
class Channel:
    name: str
    account: Optional[str]   # None: every account (the administrator)


@dataclass(frozen=True)
class Digest:
    """One message to hand to the MTA, and the channels it brings up to date."""
    addresses: Tuple[str, ...]
    channels: Tuple[str, ...]
    accounts: Optional[Tuple[str, ...]]   # None: the administrator's digest, of every account
    events: Tuple = ()

    @property
    def sent_to(self) -> str:
        return sent_to_channel(self.addresses)


@dataclass
class Plan:
    digests: List[Digest] = field(default_factory=list)
    moved: Dict[str, Cursor] = field(default_factory=dict)     # on past events nobody is waiting for
    unmailed: Dict[str, int] = field(default_factory=dict)     # channel -> events with nobody to send to
    expired: List[str] = field(default_factory=list)           # mail-to rows older than the period


def owner_channel(account: str) -> str:
    return OWNER + account


def sent_to_channel(addresses: Iterable[str]) -> str:
    return SENT_TO + ",".join(sorted(set(addresses)))


_SPLIT = re.compile(r"[\s,;]+")


def parse_contacts(value: str) -> Tuple[Tuple[str, ...], List[str]]:
    """cPanel's CONTACTEMAIL (one address, or several separated by commas): the usable addresses,
    normalized, and what could not be used."""
    good: List[str] = []
    bad: List[str] = []
    for part in _SPLIT.split(value.strip()):
        if not part:
            continue
        try:
            address = normalize_email(part)
        except ValueError:
            bad.append(part)
            continue
        if address not in good:
            good.append(address)
    return tuple(good), bad


def forgotten(names: Iterable[str], notify_admin: bool, notify_owner: bool, webhook: bool) -> List[str]:
    """The cursors of channels switched off: they go, so that switched on again they start afresh."""
    return [n for n in names if (n == ADMIN and not notify_admin) or (n.startswith(OWNER) and not notify_owner)
            or (n == WEBHOOK and not webhook)]


def channels(notify_admin: bool, notify_owner: bool, cursors: Iterable[str], events: Sequence) -> List[Channel]:
    """The digest channels in force: the administrator's, and each owner's that has a cursor or an
    event among ``events``."""
    out = [Channel(ADMIN, None)] if notify_admin else []
    if notify_owner:
        accounts = {n[len(OWNER):] for n in cursors if n.startswith(OWNER)}
        accounts.update(e.account for e in events)
        accounts.discard(UNATTRIBUTED)
        out.extend(Channel(owner_channel(a), a) for a in sorted(accounts))
    return out


def pending(chans: Sequence[Channel], cursors: Mapping[str, Cursor], events: Sequence,
            start: int) -> Dict[str, List]:
    """Channel name -> its events after its cursor (``start`` for a channel without one); only the
    channels that have some."""
    by_account: Dict[str, List] = {}
    for e in events:
        by_account.setdefault(e.account, []).append(e)
    out: Dict[str, List] = {}
    for ch in chans:
        after = cursors[ch.name].last_event if ch.name in cursors else start
        mine = [e for e in (events if ch.account is None else by_account.get(ch.account, ())) if e.id > after]
        if mine:
            out[ch.name] = mine
    return out


def plan(chans: Sequence[Channel], waiting: Mapping[str, List], addresses: Mapping[str, Tuple[str, ...]],
         cursors: Mapping[str, Cursor], last_id: int, start: int, now: int, period: int) -> Plan:
    """What to send now. ``waiting``: :func:`pending`; ``addresses``: channel -> where it goes
    (empty: nobody); ``last_id``: the newest event read; ``start``: where a channel without a cursor
    starts (the last period). The channels sharing an address make one digest, when the address is
    due (its last digest is at least ``period`` old). The rest waits for a later run."""
    result = Plan()
    groups: Dict[str, List[Channel]] = {}
    for ch in chans:
        cursor = cursors.get(ch.name, Cursor(start))
        mine = waiting.get(ch.name)
        if not mine:
            # Nothing of its own since its cursor: moved on once it falls behind the window, so that
            # no run has to read from further back than that for it (and idle rows are not rewritten
            # every minute).
            if cursor.last_event < start:
                result.moved[ch.name] = Cursor(last_id, cursor.sent_at)
            continue
        if not addresses.get(ch.name):
            result.unmailed[ch.name] = len(mine)
            result.moved[ch.name] = Cursor(last_id, cursor.sent_at)
            continue
        groups.setdefault(sent_to_channel(addresses[ch.name]), []).append(ch)
    for key, members in groups.items():
        last = cursors.get(key)
        if last is not None and now - last.sent_at < period:
            continue
        events = {e.id: e for ch in members for e in waiting[ch.name]}
        admin = any(ch.account is None for ch in members)
        result.digests.append(Digest(
            addresses=addresses[members[0].name], channels=tuple(ch.name for ch in members),
            accounts=None if admin else tuple(sorted(str(ch.account) for ch in members)),
            events=tuple(events[i] for i in sorted(events))))
    result.expired = [n for n, c in cursors.items()
                      if n.startswith(SENT_TO) and now - c.sent_at >= period and n not in groups]
    return result


def delivered(digest: Digest, last_id: int, now: int) -> Dict[str, Cursor]:
    """The cursors once ``digest`` is in the MTA's hands."""
    done = Cursor(last_id, now)
    return {**{name: done for name in digest.channels}, digest.sent_to: done}
