"""The rate-limit store on every backend: a change is atomic per key, even when several
handles (processes) change the same key at once, and the first row's insert race is won
by one of them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from store_backends import Backend

from batchyard.store.protocols import Store


def add(amount: int) -> Callable[[bytes | None], bytes]:
    def change(stored: bytes | None) -> bytes:
        return str(int(stored or b"0") + amount).encode()

    return change


async def read(store: Store, key: str) -> bytes | None:
    seen: list[bytes | None] = []

    def keep(stored: bytes | None) -> bytes:
        seen.append(stored)
        return stored or b"0"

    await store.rate_limits.update_rate_limit(key, keep)
    return seen[-1]


async def test_changes_are_kept_per_key(store: Store) -> None:
    assert await read(store, "model:a") is None
    await store.rate_limits.update_rate_limit("model:a", add(5))
    await store.rate_limits.update_rate_limit("model:a", add(2))
    await store.rate_limits.update_rate_limit("model:b", add(1))
    assert await read(store, "model:a") == b"7"
    assert await read(store, "model:b") == b"1"


async def test_concurrent_changes_from_several_handles_are_never_lost(
    store: Store, backend: Backend
) -> None:
    async with backend.another_handle(store) as second, backend.another_handle(store) as third:
        handles = [store, second, third]
        await asyncio.gather(
            *(
                handles[n % 3].rate_limits.update_rate_limit("model:shared", add(1))
                for n in range(60)
            )
        )
    assert await read(store, "model:shared") == b"60"
