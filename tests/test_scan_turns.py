"""Scan turns (daemon/scanning.py): at most N scans at once, one account at most half of them, and a
bounded wait for a turn — so one account's flood or slow message never holds up the others' mail."""
import asyncio

from imunifyemail.daemon.scanning import _Turns, wait_turn_seconds


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_one_account_gets_at_most_half_of_the_turns_and_the_others_still_get_theirs():
    async def scenario():
        turns = _Turns(total=4, per_account=2)
        assert await turns.take("flood", 0.05) and await turns.take("flood", 0.05)
        assert not await turns.take("flood", 0.05)        # its half is used: it waits, then gives up
        assert await turns.take("quiet", 0.05) and await turns.take("other", 0.05)
        assert not await turns.take("third", 0.05)        # all four are in use
        return turns.busy, dict(turns.by_account)
    assert run(scenario()) == (4, {"flood": 2, "quiet": 1, "other": 1})


def test_a_turn_given_back_goes_to_a_waiting_message():
    async def scenario():
        turns = _Turns(total=1, per_account=1)
        assert await turns.take("a", 0.05)
        waiting = asyncio.ensure_future(turns.take("b", 5))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await turns.give_back("a")
        assert await waiting
        return turns.busy, dict(turns.by_account)
    assert run(scenario()) == (1, {"b": 1})


def test_the_wait_for_a_turn_is_what_exims_timeout_leaves_after_the_scan():
    assert wait_turn_seconds(60, 20) == 35
    assert wait_turn_seconds(21, 20) == 0.5
