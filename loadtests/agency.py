"""The agency at work while hospitals check: the scenarios of issues 14 and 17.

- ``writes``: practitioner actions and violations through the admin API at a fixed rate
  (20 a second, open loop: a slow write does not slow the next one's start) while the load
  generator saturates the worker with checks; every write must be acknowledged.
- ``bulk``: one ``POST /v1/admin/bulk`` of 2,000 new practitioners, with their registrations
  and agreements, while checks run; timed alone too, on the same server, in the same round.
- ``cold`` lines: every (practitioner, site) of the data set on eight service dates, shuffled —
  more distinct lines than the verdict memo and the L1 hold, so most lines are decided afresh.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import orjson

from loadtests.dataset import SERVICE_DATE, Dataset
from loadtests.seed import BULK_FLOOR

WRITES_PER_S = 20.0
BULK_PRACTITIONERS = 2000
COLD_DATES = 8
# Issue 14's single-write target names "an institution of 500 staff".
MID_STAFF = 500


def cold_lines(data: Dataset, n: int, seed: int = 5) -> list[dict[str, Any]]:
    """Up to ``n`` distinct lines: (practitioner, site) × ``COLD_DATES`` service dates."""
    day0 = dt.date.fromisoformat(SERVICE_DATE)
    days = [(day0 - dt.timedelta(days=k)).isoformat() for k in range(COLD_DATES)]
    pairs = [(s.code, i, d) for s in data.staff for i, d in s.sites]
    rng = random.Random(seed)
    picked = rng.sample(range(len(pairs) * len(days)), min(n, len(pairs) * len(days)))
    out = []
    for k, x in enumerate(picked):
        code, i, dept = pairs[x // len(days)]
        out.append(
            {
                "institution_code": data.institutions[i],
                "department_code": dept,
                "practitioner_code": code,
                "service_date": days[x % len(days)],
                "claim_id": f"k{k}",
            }
        )
    return out


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


class AgencyWrites:
    """A thread writing practitioner actions and violations at ``rate`` a second until
    stopped; each write's status and latency is kept."""

    def __init__(
        self,
        url: str,
        agency_key: str,
        data: Dataset,
        rate: float = WRITES_PER_S,
        institution: int | None = None,
    ):
        """``institution``: write only about the staff registered there (its index in the
        data set), naming that institution; else about anyone, at their first site."""
        self.url = url
        self.key = agency_key
        self.rate = rate
        rng = random.Random(time.time_ns())
        # (practitioner, institution index, department) written about
        self.staff = [
            (s.code, *next(site for site in s.sites if institution in (None, site[0])))
            for s in data.staff
            if not s.suspended and any(institution in (None, i) for i, _ in s.sites)
        ]
        rng.shuffle(self.staff)
        self.institutions = data.institutions
        self.rng = rng
        self.stop_event = threading.Event()
        self.results: list[tuple[int, float]] = []  # (status, ms)
        self.sent = 0
        self.refusals: list[str] = []  # the first failure of each status, as answered
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def _next(self, n: int) -> tuple[str, dict[str, Any]]:
        code, i, dept = self.staff[n % len(self.staff)]
        inst = self.institutions[i]
        # Dated apart per write, so every write changes the practitioner's outcome.
        day = dt.date(2026, 1, 5) + dt.timedelta(days=n % 300)
        if n % 2:
            return "/v1/admin/violations", {
                "practitioner_code": code,
                "institution_code": inst,
                "department_code": dept,
                "date": day.isoformat(),
                "points": 1,
                "item": "压测：违规记录",
                "exception_reason": "压测",
            }
        return f"/v1/admin/practitioners/{code}/actions", {
            "action": "suspend",
            "institution_code": inst,
            "start": day.isoformat(),
            "end": (day + dt.timedelta(days=1)).isoformat(),
            "reason": "压测：暂停一日",
        }

    async def _one(self, client: httpx.AsyncClient, n: int) -> None:
        path, body = self._next(n)
        t0 = time.perf_counter()
        try:
            # A violation is written only under an Idempotency-Key (a retry never counts twice)
            key = {"Idempotency-Key": uuid.uuid4().hex}
            r = await client.post(path, content=orjson.dumps(body), headers=key)
            status = r.status_code
            if status not in (200, 201) and not any(
                x.startswith(f"{status} ") for x in self.refusals
            ):  # the first of each status
                self.refusals.append(f"{status} {path.rsplit('/', 1)[-1]}: {r.text[:200]}")
        except httpx.HTTPError as exc:
            status = 0
            if not any(x.startswith("0 ") for x in self.refusals):
                self.refusals.append(f"0 {type(exc).__name__}")
        self.results.append((status, (time.perf_counter() - t0) * 1000))

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=60.0, limits=limits
        ) as client:
            tasks = []
            start = time.perf_counter()
            n0 = self.rng.randrange(10**6)
            while not self.stop_event.is_set():
                tasks.append(asyncio.create_task(self._one(client, n0 + self.sent)))
                self.sent += 1
                delay = start + self.sent / self.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.gather(*tasks)

    def __enter__(self) -> AgencyWrites:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_event.set()
        self.thread.join(timeout=120)

    def summary(self) -> dict[str, Any]:
        ok = [ms for st, ms in self.results if st in (200, 201)]
        return {
            "writes_sent": self.sent,
            "writes_acknowledged": len(ok),
            "write_failures": self.sent - len(ok),
            "write_p50_ms": pct(ok, 50),
            "write_p99_ms": pct(ok, 99),
            "failed_statuses": sorted({st for st, _ in self.results if st not in (200, 201)}),
            "first_refusals": self.refusals,
        }


def bulk_body(data: Dataset, n: int = BULK_PRACTITIONERS) -> dict[str, Any]:
    """``n`` practitioners new to the database (fresh codes each call), each registered with
    an agreement at one institution drawn as the data set draws staff (a few big hospitals,
    a long tail)."""
    rng = random.Random(time.time_ns())
    base = int(BULK_FLOOR[1:]) + rng.randrange(10**7) * 10_000
    sites = [data.staff[rng.randrange(len(data.staff))].sites[0] for _ in range(n)]
    codes = [f"D{base + k:012d}" for k in range(n)]
    return {
        "practitioners": [
            {"code": c, "name": f"新医师{c[-6:]}", "category": "doctor"} for c in codes
        ],
        "registrations": [
            {
                "practitioner_code": c,
                "institution_code": data.institutions[i],
                "department_code": d,
                "start": "2026-01-01",
            }
            for c, (i, d) in zip(codes, sites, strict=True)
        ],
        "agreements": [
            {
                "practitioner_code": c,
                "institution_code": data.institutions[i],
                "start": "2026-01-01",
                "end": "2029-01-01",
            }
            for c, (i, _) in zip(codes, sites, strict=True)
        ],
    }


def bulk_import(url: str, agency_key: str, body: dict[str, Any]) -> dict[str, Any]:
    """One bulk import; its seconds and status."""
    t0 = time.perf_counter()
    r = httpx.post(
        url + "/v1/admin/bulk",
        content=orjson.dumps(body),
        headers={"Authorization": f"Bearer {agency_key}", "Content-Type": "application/json"},
        timeout=600,
    )
    return {"seconds": time.perf_counter() - t0, "status": r.status_code}


class BulkDuring:
    """A bulk import in a thread, started ``delay_s`` after entering (the load already
    running)."""

    def __init__(self, url: str, agency_key: str, body: dict[str, Any], delay_s: float = 0.5):
        self.result: dict[str, Any] = {}
        self._args = (url, agency_key, body)
        self.delay_s = delay_s
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        time.sleep(self.delay_s)
        self.result = bulk_import(*self._args)

    def __enter__(self) -> BulkDuring:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.thread.join(timeout=600)


def institution_of_size(data: Dataset, staff: int = MID_STAFF) -> int:
    """The data set's institution whose staff (registered practitioners) is nearest ``staff``."""
    heads = Counter(i for s in data.staff for i, _ in s.sites)
    return min(sorted(heads), key=lambda i: abs(heads[i] - staff))


def writes_alone(
    url: str, agency_key: str, data: Dataset, n: int = 40, institution: int | None = None
) -> dict[str, Any]:
    """``n`` writes one after the other on an idle server: a single write's own cost
    (about the staff of ``institution`` only, when given)."""
    w = AgencyWrites(url, agency_key, data, institution=institution)

    async def go() -> None:
        headers = {"Authorization": f"Bearer {agency_key}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60.0) as client:
            n0 = w.rng.randrange(10**6)
            for k in range(n):
                await w._one(client, n0 + k)
                w.sent += 1

    asyncio.run(go())
    s = w.summary()
    return {
        "writes": n,
        "acknowledged": s["writes_acknowledged"],
        "p50_ms": s["write_p50_ms"],
        "p99_ms": s["write_p99_ms"],
        "first_refusals": s["first_refusals"],
    }
