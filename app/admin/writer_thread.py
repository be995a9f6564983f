"""Admin writes on an event loop of their own, in a thread, so they never hold up checks.

A write's heavy part — the recompute's engine runs, the outcome and projection statements,
the outbox — was run on the event loop that answers checks: while it computed, no check was
answered, and under an agency writing 20 times a second the checks' p99 rose 12× (issue 14).
Here :meth:`WritesOnThread.run` hands the whole of :meth:`app.admin.writes.Writes.run` (the
one transaction, idempotency, recompute, commit, mirror) to a loop in its own thread, with
its own database pool and Redis client, and the checks' loop only awaits the answer. Python
runs one thread at a time, but it switches between them every millisecond (set below), so a
long recompute costs each check a share of the CPU instead of a stall of its whole length.

The write contract is unchanged: it is the same ``Writes.run``. A write cancelled by its
caller (a client gone) is cancelled on the writer loop the same way it was before — rolled
back unless it had committed; the outbox delivers what committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.admin.writes import Answer, Work, Write, Writes
from app.projection import pacing
from app.sync.mirror import Mirror

# How long a thread computing in Python may keep the interpreter when another wants it
# (CPython's default is 5 ms: up to 5 ms added to a check behind each slice of a recompute).
SWITCH_INTERVAL_S = 0.001

P = ParamSpec("P")


class WritesOnThread(Writes):
    """``Writes`` whose ``run`` executes on a dedicated writer thread."""

    def __init__(self, engine: AsyncEngine, redis: Redis) -> None:
        """``engine`` and ``redis``: pools of the writer's own, used only on its loop (asyncpg
        and redis-py connections belong to the loop that opens them; these open lazily, on
        the first write)."""
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        # Built on the checks' loop: a long recompute pauses while this thread is at work.
        pacing.yield_to(threading.get_ident())
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="claimgate-writer", daemon=True
        )
        self._thread.start()
        self._stop: asyncio.Event | None = None
        self._jobs: list[asyncio.Task[None]] = []
        self.redis = redis
        super().__init__(engine, Mirror(redis))

    async def run(
        self, write: Write, work: Work[P], *args: P.args, **kwargs: P.kwargs
    ) -> tuple[int, Answer]:
        inner = super().run(write, work, *args, **kwargs)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(inner, self._loop))

    def run_beside(self, job: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
        """Run ``job(stop)`` on the writer loop until :meth:`close` sets ``stop``: the sync
        worker, so the outbox drains while checks saturate the main loop. Starved there, it
        let the oldest outbox row age past the staleness bound under agency writes, and every
        check fell back to PostgreSQL."""

        async def start() -> None:
            self._stop = asyncio.Event()
            self._jobs.append(asyncio.create_task(job(self._stop)))

        asyncio.run_coroutine_threadsafe(start(), self._loop).result()

    async def close(self) -> None:
        """Stop what runs beside the writes, close the writer's pools on its loop, then stop
        the loop and its thread."""

        async def closing() -> None:
            if self._stop is not None:
                self._stop.set()
            for job in self._jobs:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(job, 10.0)
            await self.redis.aclose()
            await self.engine.dispose()

        pacing.yield_to(None)
        if self._thread.is_alive():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(closing(), self._loop))
            self._loop.call_soon_threadsafe(self._loop.stop)
            await asyncio.to_thread(self._thread.join, 5.0)
