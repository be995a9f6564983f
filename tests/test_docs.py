"""The docs are the integrator's contract: every setting and every reason code is named there, and
every page the README links to exists."""

from __future__ import annotations

import re
from pathlib import Path

from app.checks.reasons import REASONS
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CONTRACT = (ROOT / "docs" / "contract.md").read_text()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [f for f in Settings.model_fields if f"CLAIMGATE_{f.upper()}" not in OPERATIONS]
    assert missing == []


def test_every_reason_code_is_documented() -> None:
    missing = [code for code in REASONS if f"`{code}`" not in CONTRACT]
    assert missing == []


def test_every_link_in_the_docs_resolves() -> None:
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.name} → {target}")
    assert broken == []
