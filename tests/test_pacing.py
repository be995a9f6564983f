"""A long recompute pauses for the checks' thread only while that thread is at work (issue 17:
an import on an idle server, from the command line or in a writer process must not run slower
for pauses nobody uses)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

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


@pytest.mark.parametrize("busy", [True, False])
def test_check_worker_processes_get_the_pauses_while_they_work(tmp_path: Path, busy: bool) -> None:
    """Beside a writer process: the check workers are other processes, named in a folder."""
    work = "while True: pass" if busy else "import time; time.sleep(60)"
    # Started, then measured: an interpreter's start-up is CPU of its own.
    worker = subprocess.Popen(
        [sys.executable, "-c", f"print('up', flush=True)\n{work}"], stdout=subprocess.PIPE
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline() == b"up\n"
        folder = tmp_path / "checks"
        folder.mkdir()
        (folder / str(worker.pid)).touch()
        pacing.yield_to_processes(folder)
        paused = asyncio.run(_long_recompute())
    finally:
        pacing.yield_to(None)
        worker.kill()
        worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()
    if busy:
        assert paused > pacing.SLICE_S * 10
    else:
        assert paused == 0.0


def test_a_check_worker_names_itself_and_is_gone_when_it_stops(tmp_path: Path) -> None:
    import os

    undo = pacing.register_checker(tmp_path / "checks")
    assert os.listdir(tmp_path / "checks") == [str(os.getpid())]
    undo()
    assert os.listdir(tmp_path / "checks") == []
