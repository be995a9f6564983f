"""With no sync worker alive, cached answers must not lag an acknowledged write past the
staleness bound: the API notices the undrained outbox and answers from PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from app.sync.worker import SyncWorker
from tests import factories as f
from tests.conftest import Servers, make_settings, reset, start_harness

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_dead_sync_worker_does_not_leave_stale_answers(servers: Servers) -> None:
    await reset(servers)
    settings = make_settings(servers, run_sync_worker=False, max_staleness_s=0.3)
    async for h in start_harness(settings):
        await f.world(h)
        # Warm the mirror by hand, then leave it without any worker.
        worker = SyncWorker(h.runtime.engine, h.runtime.redis)
        await worker.ensure_built()
        await worker.drain()
        before = await f.check(h)
        assert (before["decision"], before["source"]) == ("allow", "cache")

        await f.practitioner_action(h, f.DOC, "suspend", "2026-10-01", "2027-01-01")
        answers = []
        for _ in range(40):
            a = await f.check(h)
            answers.append((a["decision"], a["source"]))
            if a["decision"] == "deny":
                break
            await asyncio.sleep(0.05)
        assert answers[-1] == ("deny", "database"), answers
        assert h.runtime.checks.mirror_behind

        # Once a worker drains the outbox, answers come from the cache again.
        await worker.drain()
        for _ in range(40):
            a = await f.check(h)
            if a["source"] == "cache":
                break
            await asyncio.sleep(0.05)
        assert (a["decision"], a["source"]) == ("deny", "cache")
