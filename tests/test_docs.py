"""The README is the integrator's contract: it must name every setting and every reason code."""

from __future__ import annotations

from pathlib import Path

from app.checks.reasons import REASONS
from app.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [f for f in Settings.model_fields if f"CLAIMGATE_{f.upper()}" not in README]
    assert missing == []


def test_every_reason_code_is_documented() -> None:
    missing = [code for code in REASONS if f"`{code}`" not in README]
    assert missing == []
