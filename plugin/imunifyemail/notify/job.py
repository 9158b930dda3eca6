"""One notification run (``ie-config notify``; a systemd timer starts it every minute): cPanel's hold
of the contained accounts (:mod:`.outgoing_hold`), the digests of new events by email, then the webhook. It runs as root: the owners' contact addresses are in
``/var/cpanel/users`` (root's alone) and root may mark its mail as our notice for the router.

Digests go first, so a slow or unreachable webhook never delays them. A digest's cursors move only
once ``sendmail`` has taken it; when it fails, everything stays for the next run. Should the run die
between the two, the next one sends that digest again: a duplicate rather than a loss. One run at a
time (a lock file); a second one finds it busy and leaves.
"""
import fcntl
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Tuple

from .. import cpanel, paths
from ..context import Context
from ..core import digest
from ..core import notifications as rules
from ..core.features import Features, redacted_url
from ..core.notifications import Cursor
from ..store import db, events, notified, settings
from . import mailer, outgoing_hold, webhook

log = logging.getLogger(__name__)


@dataclass
class Report:
    busy: bool = False                                        # another run holds the lock
    sent: List[Tuple[Tuple[str, ...], int]] = field(default_factory=list)     # (addresses, events)
    failed: List[Tuple[Tuple[str, ...], str]] = field(default_factory=list)   # (addresses, why)
    unmailed: Dict[str, int] = field(default_factory=dict)   # channel -> events with nobody to send to
    posted: int = 0                                           # events the webhook took
    skipped: int = 0                                          # events in batches the webhook refused
    webhook_error: str = ""                                   # why the webhook keeps a batch for later
    holds: outgoing_hold.Report = field(default_factory=outgoing_hold.Report)   # cPanel's holds placed, released


def run(ctx: Context, sleep: Callable[[float], None] = time.sleep) -> Report:
    """``ctx`` gives the store, the config and the clock; ``sleep`` the webhook's pauses."""
    lock = paths.system_path(paths.NOTIFY_LOCK)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)) as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return Report(busy=True)
        report = Report()
        try:
            report.holds = outgoing_hold.sync(ctx)
        except Exception:   # never in the way of the notifications
            log.exception("cPanel's hold of the contained accounts failed")
        features = settings.load_features(ctx.conn)
        now = ctx.now()
        host = cpanel.hostname()
        last = events.last_id(ctx.conn)
        start = events.id_before(ctx.conn, now - features.notify_period)
        cursors = notified.load(ctx.conn)
        gone = rules.forgotten(cursors, features.notify_admin, features.notify_owner, bool(features.webhook_url))
        live = {name: c for name, c in cursors.items() if name not in gone}
        if gone:
            with db.transaction(ctx.conn):
                notified.forget(ctx.conn, gone)
        _mail(ctx, features, live, last, start, now, host, report)
        if features.webhook_url:
            _webhook(ctx, features, live.get(rules.WEBHOOK), last, start, now, host, report, sleep)
        return report


def _contacts(ch: rules.Channel) -> Tuple[str, ...]:
    """Where ``ch`` goes; OSError when its file cannot be read (then it waits for a later run)."""
    value = cpanel.admin_contact() if ch.account is None else cpanel.owner_contact(ch.account)
    good, bad = rules.parse_contacts(value)
    if bad:
        whose = "the administrator" if ch.account is None else f"account {ch.account}"
        log.warning("contact address of %s: not an email address: %s", whose, ", ".join(bad))
    return good


def _mail(ctx: Context, features: Features, live: Dict[str, Cursor], last: int, start: int, now: int,
          host: str, report: Report) -> None:
    if not (features.notify_admin or features.notify_owner):
        return
    conn = ctx.conn
    digest_cursors = [c.last_event for name, c in live.items() if name == rules.ADMIN or name.startswith(rules.OWNER)]
    batch = list(events.all_after(conn, min([start, *digest_cursors]), last))
    chans = rules.channels(features.notify_admin, features.notify_owner, live, batch)
    waiting = rules.pending(chans, live, batch, start)
    addresses: Dict[str, Tuple[str, ...]] = {}
    for ch in [c for c in chans if c.name in waiting]:
        try:
            addresses[ch.name] = _contacts(ch)
        except OSError as exc:
            log.error("cannot read the contact address for %s: %s", ch.name, exc)
            chans.remove(ch)
    plan = rules.plan(chans, waiting, addresses, live, last, start, now, features.notify_period)
    with db.transaction(conn):
        notified.forget(conn, plan.expired)
        notified.save(conn, {**{ch.name: Cursor(start) for ch in chans if ch.name not in live}, **plan.moved})
    for channel, count in plan.unmailed.items():
        log.warning("%s: no contact address: %d event(s) not mailed", channel, count)
    report.unmailed.update(plan.unmailed)
    cfg = ctx.config["reinject"]
    sender = f"root@{host}"
    for d in plan.digests:
        summary = digest.summarize(d.events)
        msg = digest.compose(summary, host, sender, d.addresses, d.accounts, features.notify_period, now,
                             (d.events[0].id, d.events[-1].id))
        try:
            mailer.send(cfg["sendmail"], msg, sender, d.addresses, cfg["timeout"])
        except mailer.MailError as exc:
            log.error("digest to %s not sent (kept for the next run): %s", ", ".join(d.addresses), exc)
            report.failed.append((d.addresses, str(exc)))
            continue
        with db.transaction(conn):
            notified.save(conn, rules.delivered(d, last, now))
        log.info("digest sent to %s: %s (events %d to %d)", ", ".join(d.addresses), digest.headline(summary),
                 d.events[0].id, d.events[-1].id)
        report.sent.append((d.addresses, len(d.events)))


def _webhook(ctx: Context, features: Features, cursor, last: int, start: int, now: int, host: str,
             report: Report, sleep: Callable[[float], None]) -> None:
    conn = ctx.conn
    where = redacted_url(features.webhook_url)   # not the whole URL: it may carry a token
    if cursor is None:   # its first run: it starts with the events of the last period
        cursor = Cursor(start)
        with db.transaction(conn):
            notified.save(conn, {rules.WEBHOOK: cursor})
    while True:
        batch = events.after(conn, cursor.last_event, webhook.BATCH, last)
        if not batch:
            return
        outcome = webhook.post(features.webhook_url, webhook.payload(batch, host, now), features.webhook_timeout,
                               features.webhook_retries, sleep)
        if outcome.result == webhook.FAILED:
            log.warning("webhook %s: %s after %d attempt(s); events %d to %d are posted again at the next run",
                        where, outcome.detail, outcome.attempts, batch[0].id, batch[-1].id)
            report.webhook_error = f"{outcome.detail} after {outcome.attempts} attempt(s)"
            return
        if outcome.result == webhook.REFUSED:
            log.error("webhook %s refused events %d to %d (%s): skipped", where, batch[0].id, batch[-1].id,
                      outcome.detail)
            report.skipped += len(batch)
        else:
            report.posted += len(batch)
        cursor = Cursor(batch[-1].id, now)
        with db.transaction(conn):
            notified.save(conn, {rules.WEBHOOK: cursor})
