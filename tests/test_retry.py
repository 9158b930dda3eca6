"""Deferred mail handed back to Exim: found in a real Exim-format spool, and handed back again when an
``exim -M`` did not take it (Exim skips a message another process holds locked, without a word)."""
import asyncio
from pathlib import Path

from devtools import spool as spoolfile
from imunifyemail.daemon.retry import MAX_KICKS, SPACE_BACKOFF, SPACE_STEP, RetryLedger
from imunifyemail.exim.queue import deferred_by_filter, still_deferred_by_filter
from imunifyemail.exim.spool import Spool

RAW = b"From: a@example.com\nTo: b@example.net\nSubject: waiting\n\nhello\n"
# As Exim writes them in msglog/ (no "==" flag there, unlike the main log)
OURS = "2026-12-02 10:00:00 b@example.net R=imunifyemail_scan defer (-1): imunifyemail: no verdict yet ()\n"
REMOTE = "2026-12-02 10:05:00 b@example.net R=lookuphost T=remote_smtp defer (111): Connection refused\n"


def _queue(spool_dir: Path, msglog: str) -> str:
    exim_id = spoolfile.new_id()
    spoolfile.write(spool_dir, exim_id, RAW, "a@example.com", ["b@example.net"])
    (spool_dir / "msglog").mkdir(exist_ok=True)
    (spool_dir / "msglog" / exim_id).write_text("2026-12-02 10:00:00 Received\n" + msglog)
    return exim_id


def _delivered(spool_dir: Path, exim_id: str) -> None:
    for suffix in "HD":
        (spool_dir / "input" / exim_id[5] / f"{exim_id}-{suffix}").unlink()


class Exim:
    """What the ledger hands back (``exim -M`` itself runs in the system tests)."""

    def __init__(self):
        self.kicked = []

    async def __call__(self, ids):
        self.kicked.append(list(ids))


def _ledger(spool: Spool, exim: Exim, room=lambda: 1 << 30, clock=lambda: 0.0) -> RetryLedger:
    async def headroom():
        return room()

    async def still_waiting(ids):
        return still_deferred_by_filter(spool, ids)
    return RetryLedger(exim, headroom, still_waiting, clock=clock)


def test_only_mail_whose_last_deferral_is_ours_waits_for_the_filter(tmp_path):
    spool = Spool(tmp_path)
    ours = _queue(tmp_path, OURS)
    remote_since = _queue(tmp_path, OURS + REMOTE)
    never_ours = _queue(tmp_path, REMOTE)
    assert deferred_by_filter(spool) == [ours]
    assert still_deferred_by_filter(spool, [ours, remote_since, never_ours, "1abcDE-000000-00"]) == [ours]


def test_a_message_exim_skipped_is_handed_back_again_then_left_to_exim(tmp_path):
    spool, exim = Spool(tmp_path), Exim()
    taken, skipped = _queue(tmp_path, OURS), _queue(tmp_path, OURS)
    ledger = _ledger(spool, exim)

    async def scenario():
        for exim_id in deferred_by_filter(spool):
            ledger.remember(exim_id)
        assert await ledger.retry_now() == 2
        _delivered(tmp_path, taken)           # the first hand-back delivered one; Exim skipped the other
        for _ in range(MAX_KICKS + 2):
            await ledger.look_again()
            await ledger.retry_now()
    asyncio.run(scenario())

    assert sorted(exim.kicked[0]) == sorted([taken, skipped])
    assert exim.kicked[1:] == [[skipped]] * (MAX_KICKS - 1)   # MAX_KICKS hand-backs in all, then Exim's retry times


def test_a_message_delivered_after_its_hand_back_is_not_handed_back_again(tmp_path):
    spool, exim = Spool(tmp_path), Exim()
    exim_id = _queue(tmp_path, OURS)
    ledger = _ledger(spool, exim)

    async def scenario():
        ledger.remember(exim_id)
        await ledger.retry_now()
        (tmp_path / "msglog" / exim_id).write_text(OURS + REMOTE)   # now waits for the remote host
        assert await ledger.look_again() == 0
        assert await ledger.retry_now() == 0
    asyncio.run(scenario())
    assert exim.kicked == [[exim_id]]


def test_mail_deferred_for_space_is_handed_back_once_space_is_freed_not_in_a_loop(tmp_path):
    spool, exim = Spool(tmp_path), Exim()
    room, now = [0], [0.0]
    ledger = _ledger(spool, exim, room=lambda: room[0], clock=lambda: now[0])
    first, second = _queue(tmp_path, OURS), _queue(tmp_path, OURS)

    async def tick(headroom, at):
        room[0], now[0] = headroom, at
        return await ledger.retry_now()

    async def scenario():
        ledger.defer(first, "below the floor")
        ledger.defer(second, "below the floor")
        assert await tick(0, 1) == 0                       # still below the floor
        assert await tick(SPACE_STEP // 2, 2) == 0         # a little room: not worth an attempt yet
        assert await tick(SPACE_STEP, 3) == 2              # a purge freed space: both handed back
        ledger.defer(second, "below the floor")            # the first fitted, the second did not
        assert await tick(SPACE_STEP // 4, 4) == 0         # nothing freed since: no loop against a full disk
        assert await tick(SPACE_STEP // 4, 4 + SPACE_BACKOFF) == 1   # but tried again after the backoff
        ledger.defer(second, "below the floor")
        assert await tick(0, 5 + 2 * SPACE_BACKOFF) == 0   # never while below the floor
        ledger.remember(first)                             # deferred for another reason: at once
        assert await tick(0, 6 + 2 * SPACE_BACKOFF) == 1
        assert await tick(4 * SPACE_STEP, 7 + 2 * SPACE_BACKOFF) == 1   # freed before the next tick
    asyncio.run(scenario())
    assert exim.kicked == [[first, second], [second], [first], [second]]
