"""The review cache: lifetimes per entry, a size bound, and one load per burst."""

from __future__ import annotations

import asyncio

import pytest

from adapter.security.cache import TTLCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_exactly_its_own_lifetime() -> None:
    clock = FakeClock()
    cache: TTLCache[str, str] = TTLCache(10, clock)
    cache.put("allowed", "yes", 10)
    cache.put("denied", "no", 5)
    clock.now += 4.999
    assert (cache.get("allowed"), cache.get("denied")) == ("yes", "no")
    clock.now += 0.001
    assert (cache.get("allowed"), cache.get("denied")) == ("yes", None)
    clock.now += 5
    assert cache.get("allowed") is None
    assert len(cache) == 0


def test_a_lifetime_of_zero_stores_nothing() -> None:
    cache: TTLCache[str, int] = TTLCache(10, FakeClock())
    cache.put("k", 1, 0)
    assert cache.get("k") is None
    assert len(cache) == 0


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: TTLCache[str, int] = TTLCache(2, FakeClock())
    cache.put("a", 1, 60)
    cache.put("b", 2, 60)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3, 60)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_a_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        TTLCache(0)


def test_concurrent_misses_share_one_load() -> None:
    cache: TTLCache[str, str] = TTLCache(10, FakeClock())
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.01)
        return "answer"

    async def scenario() -> list[tuple[str, bool]]:
        return list(
            await asyncio.gather(*(cache.get_or_load("k", load, lambda _v: 10) for _ in range(20)))
        )

    results = asyncio.run(scenario())
    assert loads == 1
    assert all(value == "answer" for value, _ in results)
    # The next lookup is a cache hit.
    assert asyncio.run(cache.get_or_load("k", load, lambda _v: 10)) == ("answer", True)
    assert loads == 1


def test_a_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache: TTLCache[str, str] = TTLCache(10, FakeClock())
    attempts = 0

    async def failing() -> str:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("kube-apiserver down")

    async def scenario() -> list[BaseException | tuple[str, bool]]:
        return list(
            await asyncio.gather(
                *(cache.get_or_load("k", failing, lambda _v: 10) for _ in range(3)),
                return_exceptions=True,
            )
        )

    results = asyncio.run(scenario())
    assert attempts == 1
    assert all(isinstance(r, RuntimeError) for r in results)
    assert cache.get("k") is None
    with pytest.raises(RuntimeError):
        asyncio.run(cache.get_or_load("k", failing, lambda _v: 10))
    assert attempts == 2


def test_a_cancelled_waiter_does_not_cancel_the_shared_load() -> None:
    cache: TTLCache[str, str] = TTLCache(10, FakeClock())

    async def slow() -> str:
        await asyncio.sleep(0.05)
        return "done"

    async def scenario() -> tuple[str, bool]:
        impatient = asyncio.create_task(cache.get_or_load("k", slow, lambda _v: 10))
        patient = asyncio.create_task(cache.get_or_load("k", slow, lambda _v: 10))
        await asyncio.sleep(0.01)
        impatient.cancel()
        return await patient

    assert asyncio.run(scenario()) == ("done", False)
    assert cache.get("k") == "done"


def test_the_lifetime_depends_on_the_answer() -> None:
    clock = FakeClock()
    cache: TTLCache[str, bool] = TTLCache(10, clock)

    async def allowed() -> bool:
        return True

    async def denied() -> bool:
        return False

    def ttl(answer: bool) -> float:
        return 10 if answer else 5

    asyncio.run(cache.get_or_load("a", allowed, ttl))
    asyncio.run(cache.get_or_load("d", denied, ttl))
    clock.now += 6
    assert cache.get("a") is True
    assert cache.get("d") is None
