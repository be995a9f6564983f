"""Admin writes do not hold up checks (issue 14): a write runs on the writer thread's own event
loop (app.admin.writer_thread), and a write about one hospital leaves every other hospital's
remembered verdicts in place (app.checks.verdicts.VerdictMemo)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from app.admin import practitioners
from app.admin.writer_thread import WritesOnThread
from app.checks.verdicts import VerdictMemo, verdict_of
from tests import factories as f
from tests.conftest import Harness


@pytest.mark.asyncio(loop_scope="session")
async def test_a_check_is_answered_while_a_write_computes(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(h.runtime.writes, WritesOnThread)
    await f.world(h)
    await h.synced()
    assert (await f.check(h))["decision"] == "allow"
    real = practitioners.practitioner_action
    started = threading.Event()
    ran_on: list[str] = []

    async def computing(*args: Any, **kwargs: Any) -> Any:
        # A long computation with no await in it, as a recompute over a large staff is.
        started.set()
        ran_on.append(threading.current_thread().name)
        time.sleep(1.0)  # noqa: ASYNC251 — the blocking is the point: no await for 1 s
        return await real(*args, **kwargs)

    monkeypatch.setattr(practitioners, "practitioner_action", computing)
    write = asyncio.create_task(
        f.practitioner_action(h, f.DOC, "suspend", "2026-11-01", "2027-01-01")
    )
    assert await asyncio.to_thread(started.wait, 10.0)
    answer = await f.check(h, claim_id="during")
    # Answered while the write is still computing: the check did not wait for it.
    assert not write.done(), "the write finished first: the check waited for it"
    assert answer["decision"] == "allow"
    await write
    assert ran_on == ["claimgate-writer"]
    await h.synced()
    assert (await f.check(h))["decision"] == "deny"  # the write landed, and is read


def _verdict() -> Any:
    return verdict_of(True, [], {"institution": 1, "practitioner": 1})


def test_an_invalidation_forgets_only_its_institutions_verdicts() -> None:
    memo = VerdictMemo(100)
    a = ("H37080000001", "A01", "t1", "2026-11-22", False)
    b = ("H37080000002", "A01", "t2", "2026-11-22", False)
    memo.put(a, _verdict())
    memo.put(b, _verdict())
    memo.forget(["cg:{H37080000001}:p:t1"])  # a view at A changed
    assert memo.get(a) is None
    assert memo.get(b) is not None
    assert len(memo) == 1
    memo.put(a, _verdict())
    memo.forget(["cg:pk:{t9}"])  # a practitioner's "known" marker: any line may depend on it
    assert memo.get(a) is None
    assert memo.get(b) is None
    assert len(memo) == 0
    memo.put(a, _verdict())
    memo.forget(None)  # a flush, a lost subscription
    assert memo.get(a) is None


def test_the_memo_is_bounded() -> None:
    memo = VerdictMemo(2)
    keys = [(f"H3708000000{i}", "A01", "t", "2026-11-22", False) for i in range(3)]
    for k in keys:
        memo.put(k, _verdict())
    assert len(memo) <= 2
    assert memo.get(keys[2]) is not None
