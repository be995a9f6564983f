"""A long recompute pauses for the checks' thread only while that thread is at work (issue 17:
an import on an idle server, from the command line or in a writer process must not run slower
for pauses nobody uses)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from app.projection import pacing


def _compute(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def _long_recompute(slices: int = 20) -> float:
    """A recompute of ``slices`` slices of CPU, each followed by a breath; its pauses."""
    pacer = pacing.Pacer(free_s=0.0)
    for _ in range(slices):
        _compute(pacing.SLICE_S * 1.5)
        await pacer.breathe()
    return pacer.paused_s


@pytest.fixture
def rival() -> Iterator[tuple[threading.Event, threading.Event]]:
    """A thread standing for the checks' loop, registered as the one to yield to: idle until
    ``busy`` is set, then computing until ``stop``."""
    busy, stop = threading.Event(), threading.Event()
    ready = threading.Event()
    ident: list[int] = []

    def loop() -> None:
        ident.append(threading.get_ident())
        ready.set()
        busy.wait()
        while not stop.is_set():
            _compute(0.001)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    ready.wait()
    pacing.yield_to(ident[0])
    try:
        yield busy, stop
    finally:
        pacing.yield_to(None)
        busy.set()
        stop.set()
        t.join(5)


def test_no_thread_to_yield_to_means_no_pauses() -> None:
    pacing.yield_to(None)
    assert asyncio.run(_long_recompute()) == 0.0


def test_an_idle_checks_thread_costs_the_recompute_nothing(
    rival: tuple[threading.Event, threading.Event],
) -> None:
    assert asyncio.run(_long_recompute()) == 0.0


def test_a_busy_checks_thread_gets_the_pauses(
    rival: tuple[threading.Event, threading.Event],
) -> None:
    busy, _ = rival
    busy.set()
    paused = asyncio.run(_long_recompute())
    # About as long as the recompute computed (SHARE = 0.5): the checks' half of the time.
    assert paused > pacing.SLICE_S * 10
