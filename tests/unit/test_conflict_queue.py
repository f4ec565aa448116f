"""ConflictQueue: attempts after a lost conflict take turns per aggregate, never deadlock."""

from __future__ import annotations

import asyncio

import pytest

from cqrs_mongo.mongo.transactions.contention import ConflictQueue


async def test_holders_of_one_key_take_turns_and_the_slot_is_freed() -> None:
    queue = ConflictQueue()
    inside = 0
    most = 0

    async def turn() -> None:
        nonlocal inside, most
        async with queue.hold({("Counter", "x")}, 5):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(turn() for _ in range(10)))
    assert most == 1
    assert len(queue) == 0


async def test_keys_taken_in_one_order_so_crossed_holders_cannot_deadlock() -> None:
    queue = ConflictQueue()
    done: list[str] = []

    async def turn(name: str, keys: list[tuple[str, str]]) -> None:
        async with queue.hold(keys, 5):
            await asyncio.sleep(0.01)
            done.append(name)

    ab, ba = [("T", "a"), ("T", "b")], [("T", "b"), ("T", "a")]
    await asyncio.wait_for(
        asyncio.gather(*(turn(str(n), ab if n % 2 else ba) for n in range(8))), 5
    )
    assert sorted(done) == [str(n) for n in range(8)]
    assert len(queue) == 0


async def test_distinct_keys_do_not_wait_for_each_other() -> None:
    queue = ConflictQueue()
    async with queue.hold({("T", "a")}, 5):
        async with asyncio.timeout(1):
            async with queue.hold({("T", "b")}, 5):
                pass


async def test_waiting_past_the_budget_raises_and_leaves_nothing_behind() -> None:
    queue = ConflictQueue()
    async with queue.hold({("T", "a")}, 5):
        with pytest.raises(TimeoutError):
            async with queue.hold({("T", "a")}, 0.05):
                pytest.fail("the lock was held by another attempt")
    assert len(queue) == 0
