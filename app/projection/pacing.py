"""A long recompute gives the interpreter back to the checks between its slices (issue 17).

A bulk import re-judges thousands of practitioners in one write. On the writer thread it still
shares one interpreter with the loop answering checks: while it computes, each check waits
for its turn at the GIL, and a 2,000-practitioner import tripled the checks' p99. So once a
recompute has computed for longer than a single write does, it sleeps after each slice for a
time in proportion to the slice — the checks have the interpreter to themselves meanwhile —
and the import takes longer by that proportion. A single write never pauses.
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


def alone() -> None:
    """In a process that answers no checks (``claimgate serve``'s writer process): no pauses,
    only a yield to the loop between slices (a long import must not hold up the writes and the
    sync worker beside it); the kernel shares the CPU with the check workers."""
    global SHARE
    SHARE = 1.0


class Pacer:
    def __init__(self, share: float | None = None, free_s: float = FREE_S) -> None:
        self.share = SHARE if share is None else share
        self.free_s = free_s
        self._start = time.thread_time()
        self._mark = self._start

    async def breathe(self) -> None:
        """Called between slices of work: sleep if this slice, past the free allowance, ran
        long enough."""
        now = time.thread_time()
        spent = now - self._mark
        if now - self._start < self.free_s or spent < SLICE_S:
            return
        await asyncio.sleep(spent * (1 - self.share) / self.share)
        self._mark = time.thread_time()
