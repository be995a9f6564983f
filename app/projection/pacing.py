"""A long recompute gives the CPU back to the checks between its slices (issue 17).

A bulk import re-judges thousands of practitioners in one write. On the writer thread it
shares one interpreter with the loop answering checks: while it computes, each check waits
for its turn at the GIL, and a 2,000-practitioner import tripled the checks' p99. In a writer
process of its own it takes a whole core whenever it can, and where the cores are few that
core is the check worker's: the kernel shares CPU by time, not by latency, so a check waits
for a scheduler slice (the fifth round in docs/performance.md: × 3.4–4.1 during an import).
So once a recompute has computed for longer than a single write does, it sleeps after each
slice for a time in proportion to the slice — the checks have the CPU meanwhile — and the
import takes longer by that proportion. A single write never pauses.

It pauses only while the checks are at work: an import on an idle server or from the command
line ran twice as long for pauses nobody used — slower than before the pacing (issue 17 asks
for an import no slower). What answers checks is registered — the checks' thread beside a
writer thread (:func:`yield_to`), or the check worker processes beside a writer process
(:func:`yield_to_processes`, each worker naming itself by a file in a private folder) — and
whether it worked during a slice is read from its CPU clock, so the check path itself pays
nothing for it. Nothing registered: no pauses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

# Of the CPU while checks and a long recompute compete, the recompute's share.
SHARE = 0.5
# CPU a recompute may spend before it starts pausing: more than any single write's.
FREE_S = 0.05
# How much CPU one slice runs before a pause.
SLICE_S = 0.01
# The checks count as at work in a slice when they used at least this share of the CPU the
# recompute used in it (an idle worker's timers use well under 1 %).
BUSY_SHARE = 0.1
# How long a listing of the registered check workers is reused.
_LISTING_S = 1.0

# CPU time (s) of each registered checker, by an id stable while it lives; {} when none is.
_Clocks = Callable[[], dict[int, float]]
_rivals: _Clocks | None = None


def yield_to(thread_id: int | None) -> None:
    """Long recomputes in this process pause for the thread ``thread_id`` (its
    ``threading.get_ident()``) while it is at work; ``None``: never pause."""
    global _rivals
    if thread_id is None:
        _rivals = None
        return
    clock = time.pthread_getcpuclockid(thread_id)
    _rivals = lambda: _read({thread_id: clock})  # noqa: E731


def _process_clock(pid: int) -> int:
    # Linux's CPU clock of a whole process (MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)), what
    # clock_getcpuclockid(3) returns; Python exposes only the per-thread one.
    return ((~pid) << 3) | 2


class _Registered:
    """CPU clocks of the processes named in a folder, listed again at most once a second."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.listed_at = -_LISTING_S
        self.clocks: dict[int, int] = {}

    def __call__(self) -> dict[int, float]:
        now = time.monotonic()
        if now - self.listed_at > _LISTING_S:
            self.listed_at, self.clocks = now, {}
            with contextlib.suppress(OSError):
                for entry in os.scandir(self.folder):
                    if entry.name.isdigit():
                        self.clocks[int(entry.name)] = _process_clock(int(entry.name))
        return _read(self.clocks)


def yield_to_processes(folder: Path) -> None:
    """Long recomputes in this process pause while the processes registered in ``folder`` (an
    empty file named by each one's pid: :func:`register_checker`) are at work."""
    global _rivals
    _rivals = _Registered(folder)


def register_checker(folder: Path) -> Callable[[], None]:
    """Name this process, which answers checks, in ``folder``; returns the undo."""
    folder.mkdir(mode=0o700, exist_ok=True)
    mark = folder / str(os.getpid())
    mark.touch()
    return lambda: mark.unlink(missing_ok=True)


def _read(clocks: dict[int, int]) -> dict[int, float]:
    out = {}
    for key, clock in clocks.items():
        with contextlib.suppress(OSError):  # ended since it was listed
            out[key] = time.clock_gettime(clock)
    return out


def _rival_cpu() -> dict[int, float]:
    rivals = _rivals
    return {} if rivals is None else rivals()


class Pacer:
    def __init__(self, share: float = SHARE, free_s: float = FREE_S) -> None:
        self.share = share
        self.free_s = free_s
        self._start = time.thread_time()
        self._mark = self._start
        self._rival_mark = _rival_cpu()
        self.paused_s = 0.0  # slept so far: what the pacing cost this recompute

    async def breathe(self) -> None:
        """Called between slices of work: sleep if this slice, past the free allowance, ran
        long enough while the checks were at work."""
        now = time.thread_time()
        spent = now - self._mark
        if now - self._start < self.free_s or spent < SLICE_S:
            return
        rival, before = _rival_cpu(), self._rival_mark
        self._mark, self._rival_mark = now, rival
        # Only checkers seen at both ends count: one started in between is not a slice's work.
        worked = sum(rival[k] - before[k] for k in rival.keys() & before.keys())
        if worked < spent * BUSY_SHARE:
            return
        pause = spent * (1 - self.share) / self.share
        await asyncio.sleep(pause)
        self.paused_s += pause
        self._mark, self._rival_mark = time.thread_time(), _rival_cpu()
