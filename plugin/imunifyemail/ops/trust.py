"""Trust in one step, for a while: release held mail and, with it, whitelist its sender or raise the
limit it reached — until a time, after which both end by themselves (:mod:`..core.trust`).

Everything is checked before anything is done: a request that cannot be granted in full releases
nothing and changes nothing. The release comes first; only once every message has left is the trust
granted (a failed release grants none), each grant recorded in the audit trail with its end.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from ..context import Context
from ..core import accounts as account_rules
from ..core import limits, trust
from ..core.addresses import envelope_key
from ..core.limits import script_name
from ..core.verdict import RATELIMIT
from ..errors import Forbidden, InvalidInput, NotFoundError
from ..store import events, settings
from ..store.activity import ObjectNotFound, SenderObject
from ..store.listing import StoredMessage
from ..store.settings import load_server_limits
from . import audit, emails
from . import whitelist as whitelist_ops
from .caller import Caller, require_admin

WHITELIST_SENDER = "whitelist-sender"
RAISE_LIMIT = "raise-limit"


@dataclass(frozen=True)
class Grant:
    """What a release also grants, until when (unix seconds): its sender whitelisted, or the limit it
    reached raised to ``limit`` an hour."""
    what: str
    until: int
    limit: Optional[int] = None


@dataclass(frozen=True)
class Granted:
    released: List[str]
    whitelisted: Tuple[str, ...] = ()                  # sender emails
    raised: Tuple[Tuple[str, str, str], ...] = ()      # (object id, type, name)
    until: int = 0


def grant_of(whitelist_sender: bool, raise_limit: Optional[int], for_text: Optional[str],
             until_text: Optional[str], now: float) -> Optional[Grant]:
    """The grant a release asks for (None: a plain release); checks that it names one thing and an end."""
    if not whitelist_sender and raise_limit is None:
        if for_text is not None or until_text is not None:
            raise InvalidInput("--for/--until say how long the trust lasts: use them with --whitelist-sender "
                               "or --raise-limit")
        return None
    if whitelist_sender and raise_limit is not None:
        raise InvalidInput("use either --whitelist-sender or --raise-limit, not both "
                           "(a whitelisted sender is under no limit)")
    if for_text is None and until_text is None:
        raise InvalidInput("say how long: --for DURATION (e.g. 7d) or --until TIME (e.g. 2026-12-10T18:00Z)")
    until = whitelist_ops.expiry(for_text, until_text, now)
    if raise_limit is not None:
        return Grant(RAISE_LIMIT, until, raise_limit)
    return Grant(WHITELIST_SENDER, until)


def who_of(msg: StoredMessage) -> Tuple[str, str, str, str]:
    """The message's sender objects as the mail path named them (account, domain, sender email, script)."""
    return (msg.account, envelope_key(msg.sender)[1] if msg.sender else "", msg.sender,
            script_name(msg.script.domain, msg.script.path))


def _senders(messages: Sequence[StoredMessage]) -> List[Tuple[str, str]]:
    for msg in messages:
        if not msg.sender:
            raise InvalidInput(f'email "{msg.email_id}" has no sender (a bounce): there is no sender to whitelist')
        if not account_rules.is_verified(msg.account):
            raise Forbidden(f'email "{msg.email_id}": its sender is not verified ({msg.account}), and no whitelist '
                            f"applies to such mail")
    return [e for e in whitelist_ops.parse_values("sender", [m.sender for m in messages]) if e[0] == "email"]


def _limited_objects(ctx: Context, messages: Sequence[StoredMessage], new_limit: int) -> List[SenderObject]:
    """The sender objects whose limits held the messages, each checked to be raised by ``new_limit``."""
    now, server = ctx.clock(), load_server_limits(ctx.conn)
    found: List[SenderObject] = []
    for msg in messages:
        if RATELIMIT not in msg.reasons:
            raise InvalidInput(f'email "{msg.email_id}" was held for {", ".join(msg.reasons)}, not for a sender '
                               f"limit: there is no limit to raise (--whitelist-sender trusts its sender)")
        reached = events.limits_of(ctx.conn, msg.email_id, msg.received_at)
        if not reached:
            raise NotFoundError(f'which limit email "{msg.email_id}" reached is no longer recorded: '
                                f"raise it with ie-cli am limit set")
        objects = ctx.activity.lookup(who_of(msg))
        for r in reached:
            obj = next((o for o in objects if o.type == r.so_type and not o.id.startswith("unseen:")), None)
            if obj is None:
                raise NotFoundError(f'{r.so_type} "{r.name}" of email "{msg.email_id}" is no longer in the '
                                    f"Activity Monitor")
            if obj.id in {o.id for o in found}:
                continue
            error = trust.raise_error(new_limit, limits.effective_limit(obj.type, obj.override_at(now), server),
                                      f'{r.so_type} "{r.name}"')
            if error:
                raise InvalidInput(error)
            found.append(obj)
    return found


@dataclass(frozen=True)
class Offer:
    """What a held message's page offers besides a plain release: its sender to whitelist (or why
    not), the limits it reached to raise (or why not), each limit's value in force now."""
    sender: str = ""
    no_sender: str = ""
    reached: Tuple[Tuple[str, str, int], ...] = ()   # (type, name, its limit an hour now)
    no_raise: str = ""


def offer(ctx: Context, caller: Caller, msg: StoredMessage) -> Offer:
    require_admin(caller, "whitelist senders or raise sender limits")
    sender, no_sender, reached, no_raise = "", "", (), ""
    try:
        sender = _senders([msg])[0][1]
    except (InvalidInput, Forbidden) as exc:
        no_sender = str(exc)
    try:
        now, server = ctx.clock(), load_server_limits(ctx.conn)
        reached = tuple((o.type, _name(ctx, o), limits.effective_limit(o.type, o.override_at(now), server))
                        for o in _limited_objects(ctx, [msg], limits.MAX_LIMIT))
    except (InvalidInput, NotFoundError) as exc:
        no_raise = str(exc)
    return Offer(sender, no_sender, reached, no_raise)


def _name(ctx: Context, obj: SenderObject) -> str:
    return ctx.activity.get(obj.id)["name"]


def release(ctx: Context, caller: Caller, email_ids: Sequence[str], grant: Grant,
            account: Optional[str] = None) -> Granted:
    """Release the messages, then grant ``grant`` for each: its sender email whitelisted, or every
    limit it reached raised, until ``grant.until``."""
    require_admin(caller, "whitelist senders or raise sender limits")
    messages = emails.get_messages(ctx, caller, email_ids, account)
    if grant.what == WHITELIST_SENDER:
        senders, objects = _senders(messages), []
    else:
        senders, objects = [], _limited_objects(ctx, messages, grant.limit)
    released = emails.release(ctx, caller, [m.email_id for m in messages], account)
    ids, ends = [m.email_id for m in messages], trust.iso(grant.until)
    if senders:
        settings.whitelist_add(ctx.conn, "sender", senders, grant.until)
        audit.record(ctx, caller, "whitelist add", account=messages[0].account if len(messages) == 1 else None,
                     ids=ids, detail={"list": "sender", "values": [v for _, v in senders], "until": ends})
    raised = []
    for obj in objects:
        try:
            row = ctx.activity.get(obj.id)
            ctx.activity.set_raise(obj.id, grant.limit, grant.until)
        except ObjectNotFound:   # its account removed meanwhile: nothing left to raise
            continue
        owner = row["name"] if row["type"] == limits.ACCOUNT else ctx.activity.get(row["account_id"])["name"]
        audit.record(ctx, caller, "sender limit raise", account=owner, ids=[obj.id, *ids],
                     detail={"type": row["type"], "name": row["name"], "limit": grant.limit, "until": ends})
        raised.append((obj.id, row["type"], row["name"]))
    return Granted(released, tuple(v for _, v in senders), tuple(raised), grant.until)
