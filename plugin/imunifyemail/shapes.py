"""What the product shows: the JSON shapes of ``--json`` and the pages, and human-readable sizes.

Built once here from what the operations return, so ``ie-cli``, ``ie-config``
and the web app say the same thing the same way: keys in the seed's order,
our extra keys after them. The pages render these same dicts.
"""
from typing import Any, Dict, Mapping, Optional, Sequence

from .core import accounts, limits, observe, suggest
from .core.verdict import FILTER_SETTINGS, FilterSettings
from .store.accounts import AccountInfo, QuarantineDefaults
from .store.am_stats import ObjectStats
from .store.listing import StoredMessage


def human_size(n: int) -> str:
    """``512 bytes``, ``3.1 MB`` (binary units, as ``df -h``)."""
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"   # not reached


# -- emails -----------------------------------------------------------------

def email_item(m: StoredMessage, expected_release: Optional[int] = None) -> Dict[str, Any]:
    """``expected_release``: when a message held only for ratelimit is expected to leave on its own
    (automatic release on), else None."""
    return {
        "email_id": m.email_id,
        "size_bytes": m.size_bytes,
        "account_name": m.account,
        "recipients": list(m.recipients),
        "subject": m.subject,
        "script_header": m.script.as_dict(),
        "received_date": m.received_at,
        "sender": m.sender,
        "reasons": list(m.reasons),
        "filter_score": m.filter_score,
        "filter_action": m.filter_action,
        "expected_release": expected_release,
        **sender_verification(m.account),
    }


def emails_list(items: Sequence[StoredMessage], total: int,
                expected: Optional[Mapping[str, int]] = None) -> Dict[str, Any]:
    """``expected``: :func:`imunifyemail.ops.emails.expected_releases` of the items."""
    expected = expected or {}
    return {"items": [email_item(m, expected.get(m.email_id)) for m in items], "max_count": total}


def email_show(held) -> Dict[str, Any]:
    """``held``: an :class:`imunifyemail.ops.emails.HeldEmail`."""
    m = held.message
    return {
        "email_id": m.email_id,
        "size_bytes": m.size_bytes,
        "account_name": m.account,
        "sender": m.sender,
        "recipients": list(m.recipients),
        "received_date": m.received_at,
        "subject": m.subject,
        "reasons": list(m.reasons),
        "filter_score": m.filter_score,
        "filter_action": m.filter_action,
        "script_header": m.script.as_dict(),
        "headers": held.judged.header_dict(),
        "body": held.judged.body_base64(),
        **sender_verification(m.account),
    }


def sender_verification(account_name: str) -> Dict[str, Any]:
    """Whether the mail's account was verified; if not, the account its sender only claimed
    (``unverified:<account>`` pseudo-accounts: "sender not verified" on the pages)."""
    claimed = accounts.claimed_account(account_name)
    return {"sender_verified": claimed is None, "claimed_account": claimed}


# -- accounts ---------------------------------------------------------------

def account(a: AccountInfo) -> Dict[str, Any]:
    return {"name": a.name, "limit_bytes": a.limit_bytes, "used_bytes": a.used_bytes, "state": a.state,
            "deleted_last_hour": a.deleted_last_hour, "releases_limit": a.releases_limit,
            "contained_at": a.contained_at,
            # true: the server's default (ie-cli quarantine-defaults) applies, false: the account's own value
            "limit_bytes_default": not a.limit_bytes_own, "releases_limit_default": not a.releases_limit_own}


def quarantine_defaults(d: QuarantineDefaults) -> Dict[str, Any]:
    return {"limit_bytes": d.limit_bytes, "releases_limit": d.releases_limit}


def accounts_list(accounts: Sequence[AccountInfo]) -> Dict[str, Any]:
    return {"items": [account(a) for a in accounts], "max_count": len(accounts)}


# -- whitelist, settings ------------------------------------------------------

def whitelist_list(entries: Dict[str, Any]) -> Dict[str, Any]:
    """The seed's keys, and ``expires_at``: each entry's end (unix time), null when permanent."""
    return {"success": True, "emails": list(entries["emails"]), "domains": list(entries["domains"]),
            "expires_at": dict(entries["expires_at"])}


def filter_settings(settings: FilterSettings) -> Dict[str, bool]:
    return {name: getattr(settings, name) for name in FILTER_SETTINGS}


def server_settings(server: limits.ServerLimits) -> Dict[str, int]:
    return server.as_dict()


def features(current) -> Dict[str, Any]:
    """``current``: a :class:`imunifyemail.core.features.Features`."""
    return current.as_dict()


def audit_entry(e) -> Dict[str, Any]:
    """``e``: a :class:`imunifyemail.store.audit.AuditEntry`."""
    return {"id": e.id, "time": e.at, "actor": e.actor, "role": e.role, "via": e.via, "account": e.account,
            "action": e.action, "ids": list(e.ids), "detail": e.detail, "outcome": e.outcome}


def audit_list(items, total: int) -> Dict[str, Any]:
    return {"items": [audit_entry(e) for e in items], "max_count": total}


# -- activity monitor -------------------------------------------------------

def sender_object(obj: ObjectStats, stats, verified: bool = True, **parents: str) -> Dict[str, Any]:
    """One object of ``am stats`` (``stats``: :class:`imunifyemail.ops.activity.Stats`) with its
    children and its parents' ids; keys sorted, as the seed prints them. ``verified``: its account is
    (the whitelist never applies under an ``unverified:`` pseudo-account)."""
    if obj.type == limits.ACCOUNT:
        verified = accounts.is_verified(obj.name)
    out: Dict[str, Any] = {
        **parents,
        "exclusion": obj.override is not None,
        "id": obj.id,
        "limit": limits.effective_limit(obj.type, obj.usage.override, stats.server),   # a raise included
        "messages": obj.messages,
        "name": obj.name,
        "observe": observe.FOLLOW_SERVER if obj.observe is None else obj.observe,
        "observing": observe.observing(obj.observe, stats.server.observe),
        "quarantined": obj.quarantined,
        "rateLimited": limits.rate_limited(obj.usage, stats.server),
        "whitelisted": verified and stats.whitelist.covers(obj.type, obj.name),
        **stats.suggestions.get(obj.id, suggest.Suggestion(None, None)).as_dict(),
        # issue 19: trust for a while (unix times; null when there is none, or it is for good)
        "raised_limit": obj.raised_limit,
        "raised_until": obj.raised_until,
        "whitelisted_until": stats.whitelist.ends(obj.type, obj.name) if verified else None,
        # beyond the seed: the limit over the last 24 hours (0 = unlimited), what counts against it now
        "dailyExclusion": obj.daily_override is not None,
        "dailyLimit": limits.effective_daily(obj.type, obj.daily_override, stats.server),
        "dailyRateLimited": limits.daily_limited(obj.usage, stats.server),
        "dailyUsed": limits.used_today(obj.usage, stats.server.limit_mode),
    }
    if obj.type == limits.ACCOUNT:
        out["domains"] = [sender_object(d, stats, verified, account_id=obj.id) for d in obj.domains] or None
        out["scripts"] = [sender_object(s, stats, verified, account_id=obj.id) for s in obj.scripts] or None
    elif obj.type == limits.DOMAIN:
        out["sender_emails"] = [sender_object(s, stats, verified, account_id=parents["account_id"], domain_id=obj.id)
                                for s in obj.sender_emails] or None
    return dict(sorted(out.items()))


def am_stats(stats) -> Dict[str, Any]:
    return {"accounts": [sender_object(a, stats) for a in stats.accounts]}


def observed_list(items, total: int) -> Dict[str, Any]:
    """``items``: :class:`imunifyemail.store.observed.Observed` (would-be holds of observe mode)."""
    return {"items": [o.as_dict() for o in items], "max_count": total}


def applied_suggestion(applied) -> Dict[str, Any]:
    """``applied``: :class:`imunifyemail.ops.activity.Applied`."""
    return {"id": applied.object_id, "limit": applied.limit, **applied.suggestion.as_dict()}


# -- ie-config status -----------------------------------------------------------

def status(st) -> Dict[str, Any]:
    """``st``: an :class:`imunifyemail.ops.status.Status`; a part that could not be read is
    ``{"error": ...}``."""
    f, d, w, r = st.filter, st.daemon, st.web, st.rspamd
    return {
        "version": st.version,
        "filter": {"enabled": f.enabled, "exim_conf_local": f.exim_conf_local, "exim_conf": f.exim_conf},
        "incoming_filter": {"enabled": f.incoming_wanted and f.incoming_active, "requested": f.incoming_wanted,
                            "exim_conf": f.incoming_active},
        "daemon": {"service": d.service, "running": d.running, "socket": d.socket},
        "web": {"service": w.service, "running": w.running, **w.answers, "sockets": dict(w.sockets)},
        "rspamd": {"url": r.url, "reachable": r.reachable},
        "queue": _readable(st.queue, lambda q: {"waiting_for_scanner": q.waiting_for_scanner, "total": q.total}),
        "quarantine": _readable(st.quarantine, lambda q: {"emails": q.emails, "size_bytes": q.size_bytes,
                                                          "accounts": q.accounts}),
        "disk": _readable(st.disk, status_disk),
        "metrics": status_metrics(st.metrics),
    }


def _readable(part, shape) -> Dict[str, Any]:
    error = getattr(part, "error", None)   # an ops.status.Unreadable
    return {"error": error} if error is not None else shape(part)


def status_disk(disk) -> Dict[str, Any]:
    """``disk``: an :class:`imunifyemail.ops.status.DiskState`."""
    report = disk.report
    return {"path": disk.path, "total_bytes": report.space.total_bytes, "free_bytes": report.space.free_bytes,
            "floor_bytes": report.floor.bytes, "total_inodes": report.space.total_inodes,
            "free_inodes": report.space.free_inodes, "floor_inodes": report.floor.inodes,
            "below_floor": report.below_floor}


def status_metrics(m) -> Dict[str, Any]:
    """``m``: an :class:`imunifyemail.ops.status.MetricsState`; the samples as the daemon wrote them."""
    out: Dict[str, Any] = {"enabled": m.enabled, "textfile": m.textfile, "interval": m.interval}
    if m.error is not None:
        out["error"] = m.error
    if m.samples is not None:
        out.update(written_at=m.written_at, age_seconds=m.age_seconds, samples=m.samples)
    return out
