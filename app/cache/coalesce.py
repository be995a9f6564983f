"""Reads of many checks at once sent as one MGET.

Under load a worker holds dozens of checks in flight, and each line the L1 cannot answer waits
on a Redis round trip. redis-py's own cost per command — taking a connection from the pool,
packing, the timeout, reading the reply, giving the connection back — was a quarter of the CPU
of a check whose documents were not in the L1 (the ``cold`` scenario, docs/performance.md),
several times what Redis spends on the command. Here the keys every check asks for during one
turn of the event loop are gathered and read with a single MGET at the start of the next; each
caller gets its own keys' values, in its order.

What the callers rely on stays true: each asked before the shared read was sent (so an L1
epoch taken before asking still guards what it stores), and an MGET is one command, so the
values a caller gets were read together. A failed read fails every caller that shared it,
each with the same exception, as its own read would have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Read = Callable[[list[str]], Awaitable[list[Any]]]


class _Batch:
    __slots__ = ("keys", "waiters")

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}  # key → its place in the shared MGET
        self.waiters: list[tuple[asyncio.Future[list[Any]], list[int]]] = []


class CoalescedReads:
    def __init__(self, read: Read) -> None:
        self._read = read
        self._pending: _Batch | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.reads = 0  # MGETs sent
        self.asks = 0  # key lists asked for

    async def get(self, keys: Sequence[str]) -> list[Any]:
        """The values of ``keys``, in order, read with whatever else was asked this turn."""
        loop = asyncio.get_running_loop()
        batch = self._pending
        if batch is None:
            batch = self._pending = _Batch()
            loop.call_soon(self._send)
        places = batch.keys
        at = [places.setdefault(k, len(places)) for k in keys]
        fut: asyncio.Future[list[Any]] = loop.create_future()
        batch.waiters.append((fut, at))
        self.asks += 1
        return await fut

    def _send(self) -> None:
        batch, self._pending = self._pending, None
        if batch is None:
            return
        task = asyncio.ensure_future(self._read_for(batch))
        self._tasks.add(task)  # held until done: the loop keeps only a weak reference
        task.add_done_callback(self._tasks.discard)

    async def _read_for(self, batch: _Batch) -> None:
        self.reads += 1
        try:
            values = await self._read(list(batch.keys))
        except asyncio.CancelledError:  # the loop is closing: so are the callers
            for fut, _ in batch.waiters:
                fut.cancel()
            raise
        except Exception as exc:
            for fut, _ in batch.waiters:
                if not fut.done():  # a caller cancelled meanwhile has nothing to hear
                    fut.set_exception(exc)
            return
        for fut, at in batch.waiters:
            if not fut.done():
                fut.set_result([values[i] for i in at])
