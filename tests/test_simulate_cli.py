"""`claimgate simulate FILE.json`: the what-if from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest


def test_simulate_prints_the_timelines(tmp_path: Path) -> None:
    spec = {
        "profile": "jining-2024",
        "as_of": "2026-12-31",
        "events": [
            {
                "type": "registration",
                "practitioner": "P1",
                "institution": "H1",
                "department": "D1",
                "start": "2024-01-01",
            },
            {
                "type": "violation",
                "id": "v1",
                "practitioner": "P1",
                "institution": "H1",
                "date": "2025-03-02",
                "points": 9,
            },
        ],
    }
    path = tmp_path / "events.json"
    path.write_bytes(orjson.dumps(spec))
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "simulate", str(path)], capture_output=True, check=True
    )
    result = orjson.loads(out.stdout)
    [iv] = result["practitioners"]["P1"]["by_institution"]["H1"]
    assert (iv["from"], iv["to"], iv["status"]) == ("2025-03-02", "2025-09-02", "suspended")
    assert "9-11分" in iv["rule"]


def test_simulate_names_a_bad_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(orjson.dumps({"profile": "nowhere", "events": []}))
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "simulate", str(path)], capture_output=True
    )
    assert out.returncode == 2
    assert b"profile: must be one of" in out.stderr


def test_simulate_carries_bonus_points_and_a_shortening() -> None:
    """威海 §二(三) in the what-if: a bonus during the suspension, the officer shortens it."""
    from app.simulate import simulate

    def run(*extra: dict[str, object]) -> list[tuple[str, str | None]]:
        events = [
            {
                "type": "violation",
                "id": "v1",
                "practitioner": "P1",
                "institution": "H1",
                "date": "2025-01-10",
                "points": 6,
            },
            {"type": "exam", "practitioner": "P1", "date": "2025-03-01", "passed": True},
            {
                "type": "manual",
                "practitioner": "P1",
                "action": "shorten",
                "start": "2025-02-15",
                "end": "2025-03-10",
                "reason": "加分",
            },
            *extra,
        ]
        out = simulate({"profile": "weihai-2018", "events": events})
        return [(iv["from"], iv["to"]) for iv in out["practitioners"]["P1"]["everywhere"]]

    assert run() == [("2025-01-10", "2025-04-10")]
    bonus = {"type": "bonus", "practitioner": "P1", "date": "2025-02-01", "points": 2}
    assert run(bonus) == [("2025-01-10", "2025-03-10")]


def _violation(vid: str, day: str, points: int) -> dict[str, object]:
    return {
        "type": "violation",
        "id": vid,
        "practitioner": "P1",
        "institution": "H1",
        "date": day,
        "points": points,
    }


def test_simulate_continues_from_an_opening_balance() -> None:
    """济宁 §五(一): 4 points brought over mid-year, then 2 more → 中止 from that day, exactly
    as if the whole year had been recorded here."""
    from app.simulate import simulate

    reg = {
        "type": "registration",
        "practitioner": "P1",
        "institution": "H1",
        "department": "D1",
        "start": "2024-01-01",
    }
    later = _violation("v2", "2025-08-01", 2)
    full = simulate(
        {"profile": "jining-2024", "events": [reg, _violation("v1", "2025-03-02", 4), later]}
    )
    balance = {
        "type": "carried_over",
        "practitioner": "P1",
        "institution": "H1",
        "as_of": "2025-06-30",
        "source": "roster.xlsx",
        "points": 4,
    }
    carried = simulate({"profile": "jining-2024", "events": [reg, balance, later]})

    def after(result: dict[str, Any]) -> list[tuple[str, str | None, str]]:
        ivs = result["practitioners"]["P1"]["by_institution"]["H1"]
        return [(iv["from"], iv["to"], iv["status"]) for iv in ivs if iv["from"] > "2025-06-30"]

    assert after(carried) == after(full)
    assert after(carried)[0][:1] == ("2025-08-01",)
    assert after(carried)[0][2] == "suspended"
    [period] = [p for p in carried["practitioners"]["P1"]["periods"] if p["from"] == "2025-01-01"]
    assert period["points"] == 6


def test_simulate_names_a_bad_opening_balance() -> None:
    from app.simulate import SimulationError, simulate

    balance = {
        "type": "carried_over",
        "practitioner": "P1",
        "as_of": "2025-06-30",
        "source": "roster.xlsx",
        "status": "on holiday",
    }
    with pytest.raises(SimulationError) as err:
        simulate({"profile": "jining-2024", "events": [balance]})
    assert err.value.field == "events.0.status"
