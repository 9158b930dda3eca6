"""The Activity Monitor's counters: sender objects, minute buckets and the
events of the last hour.

Buckets (one row per object and minute) answer statistics over any
``--since`` within the retention, and the daily limits over the last 24 hours
to the minute (the last 1440 buckets of an object; read only for an object
under a daily limit); events (one row per object and sent message, kept an
hour) answer the hourly limits over exactly the last 60 minutes.
Checking a message against its limits and counting it as sent happen in one
transaction (:meth:`Activity.reserve`), so concurrent messages cannot all
slip under a limit; a message whose re-injection then fails is uncounted.
"""
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..core import limits, observe, trust
from ..core.autorelease import Window
from ..core.limits import ServerLimits, Usage
from . import am_hours, audit, events, observed, verdicts
from .day_counts import DayCounts, bucket_of, day_start
from .db import Clock, system_clock, transaction
from .verdicts import Remembered

# The whole server's counts, a bucket series of its own (the Activity Monitor's chart);
# it has no sender_objects row, so statistics per object never see it.
SERVER_TOTAL = "server"


class ObjectNotFound(Exception):
    pass


@dataclass(frozen=True)
class Outcome:
    allowed: bool
    offenders: Tuple[limits.Over, ...] = ()
    observed: Tuple[limits.Over, ...] = ()   # passed by observe mode: the limits that would have held it


@dataclass(frozen=True)
class SenderObject:
    id: str
    type: str
    limit_override: Optional[int]
    daily_override: Optional[int] = None
    observe: Optional[int] = None   # its own observe setting (core/observe.py); None: the server's
    raised_limit: Optional[int] = None     # its hourly limit raised until raised_until (core/trust.py)
    raised_until: Optional[int] = None

    def override_at(self, now: float) -> Optional[int]:
        """Its own hourly limit in force at ``now`` (a raise while it lasts)."""
        return trust.override_at(self.limit_override, self.raised_limit, self.raised_until, now)

    def __getitem__(self, key: str):   # read like the row it came from
        return getattr(self, key)


# (connection, at, action, account, ids, detail): an audit entry in the caller's transaction
Note = Callable[[sqlite3.Connection, int, str, Optional[str], Sequence[str], Dict[str, object]], None]
_COLUMNS = "id, type, limit_override, daily_override, observe, raised_limit, raised_until"


def _sender_object(row: sqlite3.Row) -> SenderObject:
    return SenderObject(row["id"], row["type"], row["limit_override"], row["daily_override"], row["observe"],
                        row["raised_limit"], row["raised_until"])


class Activity:
    def __init__(self, conn: sqlite3.Connection, clock: Clock = system_clock):
        self.conn = conn
        self.clock = clock
        # Sender objects seen, by (type, parent, name): the mail path looks up four per message.
        # Forgotten whenever another connection has committed (an override set, an account renamed).
        self._objects_seen: Dict[Tuple[str, str, str], SenderObject] = {}
        self._seen_version: Optional[int] = None
        self.day_counts = DayCounts(conn)   # the daily limits' running sums (store/day_counts.py)
        self._counting = False              # this connection counts mail (the daemon's)

    # -- sender objects ----------------------------------------------------

    def _object(self, so_type: str, name: str, parent_id: str, account_id: Optional[str]) -> SenderObject:
        key = (so_type, parent_id, name)
        known = self._objects_seen.get(key)
        if known is not None:
            return known
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM sender_objects WHERE type = ? AND parent_id = ? AND name = ?", key).fetchone()
        if row is None:
            new_id = str(uuid.uuid4())
            self.conn.execute(
                "INSERT INTO sender_objects (id, type, name, account_id, parent_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (new_id, so_type, name, account_id or new_id, parent_id, int(self.clock())))
            return SenderObject(new_id, so_type, None)   # remembered once committed: read again next time
        found = _sender_object(row)
        self._objects_seen[key] = found
        return found

    def _objects(self, account: str, domain: str, sender_email: str, script: str) -> List[SenderObject]:
        """The message's objects, created on first sight (inside the caller's transaction)."""
        self._forget_if_changed()
        return self._tree(self._object, account, domain, sender_email, script)

    def _forget_if_changed(self) -> None:
        """What is kept from the database goes once another connection has committed. Past minutes'
        buckets are written only by the connection that counts mail (others only delete a whole
        account's objects, whose ids never come back): that one keeps its daily sums."""
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._seen_version:
            self._objects_seen.clear()
            if not self._counting:
                self.day_counts.forget()
            self._seen_version = version

    @staticmethod
    def _tree(get, account: str, domain: str, sender_email: str, script: str) -> List[SenderObject]:
        """A message's objects, each got by ``get(type, name, parent id, account id)``."""
        acct = get(limits.ACCOUNT, account, "", None)
        out = [acct]
        if domain:
            dom = get(limits.DOMAIN, domain, acct.id, acct.id)
            out.append(dom)
            if sender_email:
                out.append(get(limits.SENDER_EMAIL, sender_email, dom.id, acct.id))
        if script:
            out.append(get(limits.SCRIPT, script, acct.id, acct.id))
        return out

    def lookup(self, who: Tuple[str, str, str, str]) -> List[SenderObject]:
        """The message's objects as they are, creating none (readers): one never seen has no
        override and no mail, under a stand-in id of its own."""
        def find(so_type: str, name: str, parent_id: str, _account_id) -> SenderObject:
            row = self.conn.execute(f"SELECT {_COLUMNS} FROM sender_objects"
                                    " WHERE type = ? AND parent_id = ? AND name = ?", (so_type, parent_id, name)).fetchone()
            return (_sender_object(row) if row is not None
                    else SenderObject(f"unseen:{so_type}:{parent_id}:{name}", so_type, None))
        return self._tree(find, *who)

    def windows(self, objects: Sequence[SenderObject], now: float,
                server: ServerLimits) -> Dict[str, Tuple[Window, ...]]:
        """What each limited object sent in its limits' windows, weighed by the limit mode: the last
        60 minutes message by message, the last 24 hours minute by minute (a bucket counts as sent at
        its minute's start: :func:`day_start`)."""
        out: Dict[str, Tuple[Window, ...]] = {}
        for obj in objects:
            if obj.id in out:
                continue
            mine = []
            limit = limits.effective_limit(obj.type, obj.override_at(now), server)
            if limit > 0:
                rows = self.conn.execute("SELECT at, recipients FROM am_events WHERE object_id = ? AND at > ?"
                                         " ORDER BY at", (obj.id, now - limits.WINDOW_SECONDS)).fetchall()
                mine.append(Window(limit, tuple((r[0], limits.weight(server.limit_mode, r[1])) for r in rows)))
            daily = limits.effective_daily(obj.type, obj.daily_override, server)
            if daily > 0:
                column = "recipients" if server.limit_mode == limits.BY_RECIPIENTS else "messages"
                rows = self.conn.execute(f"SELECT bucket, {column} FROM am_buckets WHERE object_id = ? AND bucket >= ?"
                                         f" AND {column} > 0", (obj.id, day_start(now))).fetchall()
                mine.append(Window(daily, tuple((float(r[0]), r[1]) for r in rows), limits.DAY_SECONDS))
            if mine:
                out[obj.id] = tuple(mine)
        return out

    def usage(self, objects: Sequence[SenderObject], now: float, server: ServerLimits) -> List[Usage]:
        """What each object sent in the last 60 minutes and the last 24 hours — each counted only for
        objects with a limit over it."""
        out = []
        if not self._counting and (server.any_daily or any(obj.daily_override for obj in objects)):
            self._forget_if_changed()   # (the counting connection keeps its daily sums)
        daily = [obj.id for obj in objects if limits.effective_daily(obj.type, obj.daily_override, server) > 0]
        today = self.day_counts.of_many(daily, now) if daily else {}
        for obj in objects:
            messages = recipients = 0
            override = obj.override_at(now)
            if limits.effective_limit(obj.type, override, server) > 0:
                messages, recipients = self.conn.execute(
                    "SELECT COUNT(*), COALESCE(SUM(recipients), 0) FROM am_events WHERE object_id = ? AND at > ?",
                    (obj.id, now - limits.WINDOW_SECONDS)).fetchone()
            out.append(Usage(obj.type, obj.id, override, messages, recipients, obj.daily_override,
                             *today.get(obj.id, (0, 0))))
        return out

    # -- counting ------------------------------------------------------------

    def _count(self, object_ids: Sequence[str], bucket: int, messages: int, recipients: int,
               quarantined: int) -> None:
        object_ids = (*object_ids, SERVER_TOTAL)
        self._counting = True
        self.conn.executemany(
            "INSERT INTO am_buckets (object_id, bucket, messages, recipients, quarantined) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (object_id, bucket) DO UPDATE SET messages = messages + excluded.messages,"
            " recipients = recipients + excluded.recipients, quarantined = quarantined + excluded.quarantined",
            [(oid, bucket, messages, recipients, quarantined) for oid in object_ids])

    def _sent(self, objects: Sequence[SenderObject], recipients: int, now: float) -> None:
        self.conn.executemany("INSERT INTO am_events (object_id, at, recipients) VALUES (?, ?, ?)",
                              [(obj.id, now, recipients) for obj in objects])
        self._count([obj.id for obj in objects], bucket_of(now), 1, recipients, 0)

    def count_sent(self, objects: Sequence[SenderObject], recipients: int, now: float) -> None:
        """Count a message as sent (inside the caller's transaction: automatic release)."""
        self._sent(objects, recipients, now)

    def uncount(self, objects: Sequence[SenderObject], recipients: int, at: float) -> None:
        """Take back :meth:`count_sent` (inside the caller's transaction): its re-injection failed."""
        self.day_counts.forget()   # a past minute may change
        self.conn.executemany(
            "DELETE FROM am_events WHERE rowid = (SELECT rowid FROM am_events"
            " WHERE object_id = ? AND at = ? AND recipients = ? LIMIT 1)",
            [(obj.id, at, recipients) for obj in objects])
        bucket = bucket_of(at)
        for oid in (*(o.id for o in objects), SERVER_TOTAL):
            if self.conn.execute("UPDATE am_buckets SET messages = messages - 1, recipients = recipients - ?"
                                 " WHERE object_id = ? AND bucket = ? AND messages > 0",
                                 (recipients, oid, bucket)).rowcount:
                am_hours.uncount(self.conn, oid, bucket, recipients)

    def objects(self, who: Tuple[str, str, str, str]) -> List[SenderObject]:
        """The message's objects, created on first sight (inside the caller's transaction)."""
        return self._objects(*who)

    def reserve(self, who: Tuple[str, str, str, str], recipients: int, server: ServerLimits,
                remember: Optional[Remembered] = None, exim_id: str = "") -> Outcome:
        """Check a message against its objects' limits; if it fits, or observe mode passes it
        (:mod:`..core.observe`; then recorded as a would-be hold), count it as sent (a message held
        is counted by :meth:`record_quarantined` once stored). One transaction: concurrent messages
        each see the ones counted before them."""
        now = self.clock()
        if limits.over_cap(recipients, server) and not server.observe:   # held whatever was sent: nothing to read
            return Outcome(False, tuple(limits.offenders((), recipients, server)))
        with transaction(self.conn):
            objects = self._objects(*who)
            offenders = limits.offenders(self.usage(objects, now, server), recipients, server)
            judged = observe.judge(offenders, {o.id: o.observe for o in objects}, server.observe)
            if judged.hold:   # counted as quarantined once it is stored (record_quarantined)
                return Outcome(False, judged.hold)
            if remember is not None:
                verdicts.remember(self.conn, remember, int(now))
            self._sent(objects, recipients, now)
            if judged.observed:
                observed.insert(self.conn, int(now), exim_id, who, recipients,
                                limits.reached(judged.observed, who, server),
                                [o.used for o in judged.observed], [o.object_id for o in judged.observed])
            return Outcome(True, observed=judged.observed)

    def record_sent(self, who: Tuple[str, str, str, str], recipients: int,
                    remember: Optional[Remembered] = None) -> None:
        """Count a message that no limit applies to (whitelisted)."""
        now = self.clock()
        with transaction(self.conn):
            if remember is not None:
                verdicts.remember(self.conn, remember, int(now))
            self._sent(self._objects(*who), recipients, now)

    def record_quarantined(self, who: Tuple[str, str, str, str]) -> None:
        with transaction(self.conn):
            self.count_quarantined(who)

    def count_quarantined(self, who: Tuple[str, str, str, str]) -> None:
        """Inside the caller's transaction (the one that stores the message: counted once, with it)."""
        self._count([obj.id for obj in self._objects(*who)], bucket_of(self.clock()), 0, 0, 1)

    def prune(self, retention_seconds: int, note: Optional[Note] = None) -> None:
        """The daemon's housekeeping: what has outlived the window or the retention period; ``note``
        records in the audit trail each trust that ended (ops/audit.insert_daemon)."""
        now = self.clock()
        self.day_counts.prune(now, bucket_of(now - retention_seconds))
        with transaction(self.conn):
            self.conn.execute("DELETE FROM am_events WHERE at <= ?", (now - limits.WINDOW_SECONDS,))
            am_hours.roll_up(self.conn, now)   # before the buckets go: their hours are summed first
            am_hours.prune(self.conn, bucket_of(now - retention_seconds))
            self.conn.execute("DELETE FROM am_buckets WHERE bucket < ?", (bucket_of(now - retention_seconds),))
            verdicts.prune(self.conn, int(now))
            self._end_trust(now, note)
            # The audit trail and the notifications' events are kept as long as the statistics.
            audit.prune(self.conn, int(now - retention_seconds))
            events.prune(self.conn, int(now - retention_seconds))
            observed.prune(self.conn, int(now - retention_seconds))

    def _end_trust(self, now: float, note: Optional[Note]) -> None:
        """Tidy away the whitelist entries and raised limits that have ended (they stopped applying
        at their end already), so the lists show only what is in force."""
        from .settings import prune_whitelist   # settings reads accounts, which reads this module
        for list_name, value, until in prune_whitelist(self.conn, now):
            if note is not None:
                note(self.conn, int(now), "whitelist expired", None, (),
                     {"list": list_name, "values": [value], "until": trust.iso(until)})
        ended = [r for r in self.conn.execute(
            "SELECT o.id, o.type, o.name, o.raised_limit, o.raised_until, a.name FROM sender_objects o"
            " LEFT JOIN sender_objects a ON a.id = o.account_id"
            " WHERE o.raised_until IS NOT NULL AND o.raised_until <= ?", (now,)) if not trust.applies(r[4], now)]
        self.conn.executemany("UPDATE sender_objects SET raised_limit = NULL, raised_until = NULL WHERE id = ?",
                              [(r[0],) for r in ended])
        for r in ended:
            if note is not None:
                note(self.conn, int(now), "sender limit raise expired", r[5], (r[0],),
                     {"type": r[1], "name": r[2], "limit": r[3], "until": trust.iso(r[4])})

    # -- administration ------------------------------------------------------

    def get(self, object_id: str) -> sqlite3.Row:
        row = self.conn.execute("SELECT * FROM sender_objects WHERE id = ?", (object_id,)).fetchone()
        if row is None:
            raise ObjectNotFound(object_id)
        return row

    def set_raise(self, object_id: str, limit: int, until: int) -> None:
        """The object's hourly limit raised to ``limit`` until ``until`` (replacing any raise before);
        its own limit stays as set and applies again after."""
        with transaction(self.conn):
            if not self.conn.execute("UPDATE sender_objects SET raised_limit = ?, raised_until = ? WHERE id = ?",
                                     (limit, until, object_id)).rowcount:
                raise ObjectNotFound(object_id)

    def set_override(self, object_id: str, override: Optional[int]) -> None:
        """Tier 2: the object's own hourly limit (0 = unlimited), or None: back to the server default."""
        self._set("limit_override", object_id, override)

    def set_daily_override(self, object_id: str, override: Optional[int]) -> None:
        """Tier 2: the object's own daily limit (0 = unlimited), or None: back to the server default."""
        self._set("daily_override", object_id, override)

    def _set(self, column: str, object_id: str, value: Optional[int]) -> None:
        with transaction(self.conn):
            if not self.conn.execute(f"UPDATE sender_objects SET {column} = ? WHERE id = ?",
                                     (value, object_id)).rowcount:
                raise ObjectNotFound(object_id)
        self._objects_seen.clear()   # this connection's own commit does not move its data_version

    def set_observe(self, object_id: str, own: Optional[int]) -> None:
        """The object's own observe setting (1 observe, 0 enforce), or None: the server's."""
        with transaction(self.conn):
            if not self.conn.execute("UPDATE sender_objects SET observe = ? WHERE id = ?",
                                     (own, object_id)).rowcount:
                raise ObjectNotFound(object_id)
        self._objects_seen.clear()   # this connection's own commit does not move its data_version


# -- an account's objects as a whole (the cPanel account hooks) ------------------------
# The account object is the root of its tree: every object under it carries its id as account_id.

def account_object_id(conn: sqlite3.Connection, name: str) -> Optional[str]:
    row = conn.execute("SELECT id FROM sender_objects WHERE type = ? AND parent_id = '' AND name = ?",
                       (limits.ACCOUNT, name)).fetchone()
    return row["id"] if row is not None else None


def rename_account_object(conn: sqlite3.Connection, old: str, new: str) -> bool:
    """Rename the account object (inside the caller's transaction); its domains, sender
    emails, scripts, counters and overrides follow by id."""
    return conn.execute("UPDATE sender_objects SET name = ? WHERE type = ? AND parent_id = '' AND name = ?",
                        (new, limits.ACCOUNT, old)).rowcount > 0


def delete_account_objects(conn: sqlite3.Connection, name: str) -> int:
    """Delete the account object, every object under it and their buckets and events
    (inside the caller's transaction); how many objects went."""
    root = account_object_id(conn, name)
    if root is None:
        return 0
    ids = [r[0] for r in conn.execute("SELECT id FROM sender_objects WHERE account_id = ?", (root,))]
    for table in ("am_events", "am_buckets", "am_observed"):
        conn.executemany(f"DELETE FROM {table} WHERE object_id = ?", [(i,) for i in ids])
    am_hours.delete_objects(conn, ids)
    conn.execute("DELETE FROM sender_objects WHERE account_id = ?", (root,))
    return len(ids)
