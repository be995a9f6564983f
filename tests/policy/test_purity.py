"""The engine imports only the standard library (and chinese_calendar for working days)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import app.policy

POLICY = Path(app.policy.__file__).parent
# the modules the evaluation runs through: they must not even reach the TOML loader
CORE = {
    "engine",
    "practitioner",
    "institution",
    "institution_rules",
    "scoring",
    "manual",
    "ledger",
    "periods",
    "events",
    "outcomes",
    "profile",
    "dates",
    "messages",
    "tally",
    "acts",
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            names.add(node.module or "")
    return names


def test_policy_imports_only_stdlib_and_chinese_calendar() -> None:
    modules = sorted(POLICY.glob("*.py"))
    assert modules
    for path in modules:
        for name in _imports(path):
            top = name.split(".")[0]
            if name.startswith("app.policy") or top in sys.stdlib_module_names:
                continue
            assert top == "chinese_calendar", (path.name, name)
            assert path.stem == "workdays", (path.name, name)


def test_core_does_not_import_the_loader() -> None:
    for stem in CORE:
        imports = _imports(POLICY / f"{stem}.py")
        assert "app.policy.loader" not in imports, stem
        assert "tomllib" not in imports, stem


def test_no_json_or_framework_module_is_named() -> None:
    banned = {"json", "orjson", "fastapi", "sqlalchemy", "redis", "pydantic"}
    for path in POLICY.glob("*.py"):
        assert not {n.split(".")[0] for n in _imports(path)} & banned, path.name
