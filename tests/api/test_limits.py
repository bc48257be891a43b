"""The bookkeeping behind the server's limits: slots handed over in order, waits that time out,
settings read from the environment with messages that name the variable."""

from __future__ import annotations

import asyncio

import pytest

from meshkit.api.limits import Limits, Slots
from meshkit.errors import MeshkitError


def test_a_freed_slot_goes_to_the_first_waiter_and_waits_time_out() -> None:
    async def scenario() -> list[str]:
        slots = Slots(1)
        order: list[str] = []
        assert await slots.acquire(0)
        assert not await slots.acquire(0)  # none free, no wait: refused at once

        async def wait(name: str, timeout: float) -> None:
            got = await slots.acquire(timeout)
            order.append(f"{name}:{got}")
            if got:
                await asyncio.sleep(0.05)
                slots.release()

        waiters = [
            asyncio.create_task(wait("first", 2)),
            asyncio.create_task(wait("impatient", 0.01)),
            asyncio.create_task(wait("second", 2)),
        ]
        await asyncio.sleep(0.1)  # the impatient one has given up by now
        slots.release()
        await asyncio.gather(*waiters)
        assert slots.taken == 0  # every slot came back, the abandoned hand-over included
        return order

    assert asyncio.run(scenario()) == ["impatient:False", "first:True", "second:True"]


def test_limits_from_the_environment() -> None:
    default = Limits.default()
    assert default.max_queries >= 1
    assert Limits.from_env({}) == default
    read = Limits.from_env(
        {"MESHKIT_MAX_QUERIES": "3", "MESHKIT_MAX_REQUESTS": "7", "MESHKIT_QUEUE_TIMEOUT": "0.25"}
    )
    assert read == Limits(max_queries=3, max_requests=7, queue_timeout=0.25)
    assert Limits.from_env(read.to_env()) == read
    for name, value in (
        ("MESHKIT_MAX_QUERIES", "0"),
        ("MESHKIT_MAX_REQUESTS", "lots"),
        ("MESHKIT_QUEUE_TIMEOUT", "-1"),
        ("MESHKIT_QUEUE_TIMEOUT", "nan"),
        ("MESHKIT_MAX_QUERIES", "1e309"),
    ):
        with pytest.raises(MeshkitError, match=name):
            Limits.from_env({name: value})
