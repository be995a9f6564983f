"""HTTP stays at the edge: below the routes, nothing imports FastAPI, Starlette or app.api — the
committer of writes and its unit of work, the admin services, the check use case and everything
under them — so a script, the demo loader or an adapter for another interface calls them
without a web request."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "app"
# The HTTP edge: routes, the check fast path and its hand validation of bodies.
EDGE = {"endpoints.py", "fastpath.py", "plain.py"}
BELOW = ("admin", "checks", "projection", "cache", "sync", "db", "auth", "policy", "decisions")


def _http(module: str) -> bool:
    return module.split(".")[0] in ("fastapi", "starlette") or (module + ".").startswith("app.api.")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_nothing_below_the_routes_imports_http() -> None:
    modules = [p for d in BELOW for p in sorted((ROOT / d).glob("*.py")) if p.name not in EDGE]
    assert {"writes.py", "unit_of_work.py", "usecase.py"} <= {p.name for p in modules}
    found = [
        f"{p.relative_to(ROOT)}: {name}"
        for p in modules
        for name in sorted(_imports(p))
        if _http(name)
    ]
    assert found == []
