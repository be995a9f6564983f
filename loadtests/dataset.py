"""The synthetic data set: deterministic from the scale, so seeding and request bodies agree
without reading anything back.

``scale`` practitioners over up to 500 institutions in six regions (not 威海, whose codes are
resident ID numbers). Staff per institution follow a Zipf-like law (a few big hospitals, a long
tail); 10 % of practitioners work at a second site (多点执业); 3 % are suspended everywhere; 2 %
of departments have their settlement suspended. Every registration has a service agreement.
"""

from __future__ import annotations

import itertools
import random
from bisect import bisect
from dataclasses import dataclass
from typing import Any

REGIONS = ("370800", "330900", "620100", "410100", "210100", "110100")
DEPARTMENTS = ("A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08")
SERVICE_DATE = "2026-11-23"
MULTI_SITE = 0.10
SUSPENDED = 0.03
DEPT_SUSPENDED = 0.02
ZIPF_S = 1.0


def zipf_weights(n: int, s: float = ZIPF_S) -> list[float]:
    return [1.0 / (i + 1) ** s for i in range(n)]


@dataclass(frozen=True, slots=True)
class Staff:
    code: str
    sites: tuple[tuple[int, str], ...]  # (institution index, department)
    suspended: bool


class Dataset:
    def __init__(self, scale: int, seed: int = 20261123) -> None:
        self.scale = scale
        rng = random.Random(seed)
        n_inst = max(5, min(500, scale // 20))
        self.institutions = [f"H{REGIONS[i % len(REGIONS)]}{i:05d}" for i in range(n_inst)]
        self.inst_weights = zipf_weights(n_inst)
        cum = list(itertools.accumulate(self.inst_weights))
        total = cum[-1]

        def pick_inst() -> int:
            return bisect(cum, rng.random() * total)

        self.staff: list[Staff] = []
        for j in range(scale):
            home = min(pick_inst(), n_inst - 1)
            sites = [(home, rng.choice(DEPARTMENTS))]
            if rng.random() < MULTI_SITE and n_inst > 1:
                other = min(pick_inst(), n_inst - 1)
                if other == home:
                    other = (home + 1) % n_inst
                sites.append((other, rng.choice(DEPARTMENTS)))
            self.staff.append(
                Staff(f"D{100_000_000_000 + j:012d}", tuple(sites), rng.random() < SUSPENDED)
            )
        self.suspended_departments = [
            (i, d) for i in range(n_inst) for d in DEPARTMENTS if rng.random() < DEPT_SUSPENDED
        ]

    # -- seeding bodies (POST /v1/admin/bulk) -------------------------------------------------
    def institution_body(self) -> dict[str, Any]:
        return {
            "institutions": [
                {"code": c, "name": f"压测医院{i}", "region_code": c[1:7]}
                for i, c in enumerate(self.institutions)
            ],
            "departments": [
                {"institution_code": c, "code": d, "name": f"科室{d}"}
                for c in self.institutions
                for d in DEPARTMENTS
            ],
            "department_actions": [
                {
                    "institution_code": self.institutions[i],
                    "department_code": d,
                    "action": "suspend",
                    "start": "2026-01-01",
                    "reason": "压测：科室暂停结算",
                }
                for i, d in self.suspended_departments
            ],
        }

    def staff_bodies(self, per_body: int = 5000) -> list[dict[str, Any]]:
        bodies = []
        for lo in range(0, self.scale, per_body):
            part = self.staff[lo : lo + per_body]
            body: dict[str, Any] = {
                "practitioners": [
                    {"code": s.code, "name": f"医师{s.code[-6:]}", "category": "doctor"}
                    for s in part
                ],
                "registrations": [
                    {
                        "practitioner_code": s.code,
                        "institution_code": self.institutions[i],
                        "department_code": d,
                        "start": "2020-01-01",
                    }
                    for s in part
                    for i, d in s.sites
                ],
                "agreements": [
                    {
                        "practitioner_code": s.code,
                        "institution_code": self.institutions[i],
                        "start": "2024-01-01",
                        "end": "2028-01-01",
                    }
                    for s in part
                    for i, _ in s.sites
                ],
                "practitioner_actions": [
                    {
                        "practitioner_code": s.code,
                        "action": "suspend",
                        "start": "2026-06-01",
                        "reason": "压测：暂停医保支付资格",
                    }
                    for s in part
                    if s.suspended
                ],
            }
            bodies.append(body)
        return bodies

    # -- check bodies -------------------------------------------------------------------------
    def check_lines(self, n: int, unknown: float = 0.05, seed: int = 7) -> list[dict[str, Any]]:
        """``n`` check lines: institution by Zipf traffic, a practitioner working there by Zipf,
        ``unknown`` of them naming a code the agency does not know (half practitioner, half
        institution)."""
        rng = random.Random(seed)
        by_inst: dict[int, list[tuple[str, str]]] = {}
        for s in self.staff:
            for i, d in s.sites:
                by_inst.setdefault(i, []).append((s.code, d))
        busy = sorted(by_inst)
        weights = [self.inst_weights[i] for i in busy]
        cum = list(itertools.accumulate(weights))
        inner = {i: list(itertools.accumulate(zipf_weights(len(by_inst[i]), 0.8))) for i in busy}
        out = []
        for k in range(n):
            i = busy[min(bisect(cum, rng.random() * cum[-1]), len(busy) - 1)]
            c = inner[i]
            code, dept = by_inst[i][min(bisect(c, rng.random() * c[-1]), len(c) - 1)]
            inst = self.institutions[i]
            r = rng.random()
            if r < unknown / 2:
                code = f"D{900_000_000_000 + rng.randrange(10**9):012d}"
            elif r < unknown:
                inst = f"H999999{rng.randrange(10**5):05d}"
            line: dict[str, Any] = {
                "institution_code": inst,
                "department_code": dept,
                "practitioner_code": code,
                "service_date": SERVICE_DATE,
                "claim_id": f"c{k}",
            }
            if rng.random() < 0.05:
                line["emergency"] = True
            out.append(line)
        return out
