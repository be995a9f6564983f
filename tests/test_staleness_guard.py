"""With no sync worker alive, cached answers must not lag an acknowledged write past the
staleness bound: the API notices the undrained outbox and answers from PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from app.admin.practitioners import practitioner_action
from app.admin.schemas import PractitionerActionIn
from app.admin.writes import Write, Writes
from app.projection.ledger import WriteContext
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
        # The watch notices the drained outbox within a probe interval.
        before = await f.check_from_cache(h)
        assert (before["decision"], before["source"]) == ("allow", "cache")

        # A write committed without its direct mirror write (as from a script, or when Redis
        # refused it): only the outbox knows, and no worker is draining it.
        body = PractitionerActionIn(
            action="suspend", start=date(2026, 10, 1), end=date(2027, 1, 1), reason="test"
        )
        await Writes(h.runtime.engine).run(
            Write(WriteContext(None, "test")), practitioner_action, f.DOC, body, "test-secret"
        )
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
        a = await f.check_from_cache(h)
        assert (a["decision"], a["source"]) == ("deny", "cache")
