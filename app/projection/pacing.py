"""A long recompute gives the interpreter back to the checks between its slices (issue 17).

A bulk import re-judges thousands of practitioners in one write. On the writer thread it still
shares one interpreter with the loop answering checks: while it computes, each check waits
for its turn at the GIL, and a 2,000-practitioner import tripled the checks' p99. So once a
recompute has computed for longer than a single write does, it sleeps after each slice for a
time in proportion to the slice — the checks have the interpreter to themselves meanwhile —
and the import takes longer by that proportion. A single write never pauses.

It pauses only while the checks' thread is at work: an import on an idle server, from the
command line, or in a writer process of its own (where the kernel, not this, shares the CPU)
ran twice as long for pauses nobody used — slower than before the pacing (issue 17 asks for an
import no slower). The checks' thread is registered by :func:`yield_to`; whether it worked
during a slice is read from its CPU clock, so the check path itself pays nothing for it.
"""

from __future__ import annotations

import asyncio
import time

# Of the interpreter's time while checks and a long recompute compete, the recompute's share.
SHARE = 0.5
# CPU a recompute may spend before it starts pausing: more than any single write's.
FREE_S = 0.05
# How much CPU one slice runs before a pause.
SLICE_S = 0.01
# The checks' thread counts as at work in a slice when it used at least this share of the CPU
# the recompute used in it (an idle loop's timers use well under 1 %).
BUSY_SHARE = 0.1

# CPU clock of the thread answering checks in this process; None: no checks to yield to.
_rival_clock: int | None = None


def yield_to(thread_id: int | None) -> None:
    """Long recomputes in this process pause for the thread ``thread_id`` (its
    ``threading.get_ident()``) while it is at work; ``None``: never pause."""
    global _rival_clock
    _rival_clock = None if thread_id is None else time.pthread_getcpuclockid(thread_id)


def _rival_cpu() -> float | None:
    clock = _rival_clock
    if clock is None:
        return None
    try:
        return time.clock_gettime(clock)
    except OSError:  # the thread has ended
        return None


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
        long enough while the checks' thread was at work."""
        now = time.thread_time()
        spent = now - self._mark
        if now - self._start < self.free_s or spent < SLICE_S:
            return
        rival, before = _rival_cpu(), self._rival_mark
        self._mark, self._rival_mark = now, rival
        if rival is None or before is None or rival - before < spent * BUSY_SHARE:
            return
        pause = spent * (1 - self.share) / self.share
        await asyncio.sleep(pause)
        self.paused_s += pause
        self._mark, self._rival_mark = time.thread_time(), _rival_cpu()
