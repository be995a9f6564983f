"""Every reference the code and the docs make points at something in this repository: a module
or a name in one (``app.checks.decide``, ``app.admin.lookups.lock_institution``), a document
(``docs/contract.md``) and the section cited in it, a file path the docs name. A reference to a
document kept elsewhere ("DESIGN §4") is one a newcomer cannot follow."""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    p
    for d in ("app", "tests", "loadtests", "migrations")
    for p in (ROOT / d).rglob("*.py")
    if p != Path(__file__).resolve()  # its own examples of broken references
)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

MODULE = re.compile(r"(?<![\w./`])app(?:\.[A-Za-z_]\w*)+")
DOCUMENT = re.compile(r"\b(?:docs/)?[\w-]+\.md\b")
# A section cited after a document: docs/operations.md, Stopping) or docs/x.md ("A heading")
SECTION = re.compile(r"""(?:,\s*|\s+\()"?([A-Z][^"()]*?)"?\)""")
ELSEWHERE = re.compile(r"\b[A-Z][A-Za-z]+\s+§\s*\d")  # "DESIGN §4": a document cited by section
PATH = re.compile(r"`((?:app|tests|loadtests|migrations)/[\w./-]*\w)`")


def _prose(path: Path) -> Iterator[str]:
    """The comments and string literals of a module, white space folded."""
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type in (tokenize.COMMENT, tokenize.STRING):
            yield " ".join(tok.string.split())


def _defines(path: Path, name: str) -> bool:
    text = path.read_text()
    return (
        re.search(rf"^\s*(?:async def|def|class)\s+{name}\b|^\s*{name}\s*[:=]", text, re.M)
        is not None
        or re.search(rf"^(?:from|import) .*\b{name}\b", text, re.M) is not None
        or re.search(rf"^    {name},$", text, re.M) is not None  # an import list
    )


def _module_exists(ref: str) -> bool:
    parts = ref.split(".")
    for i in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:i])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.exists():
                rest = parts[i:]
                return not rest or _defines(candidate, rest[0])
    return False


def _document(name: str) -> Path | None:
    for candidate in (ROOT / name, ROOT / "docs" / name):
        if candidate.exists():
            return candidate
    return None


def _headings(doc: Path) -> set[str]:
    return {
        line.lstrip("#").strip() for line in doc.read_text().splitlines() if line.startswith("#")
    }


def test_every_reference_in_the_code_points_into_the_repository() -> None:
    broken: list[str] = []
    for path in SOURCES:
        where = path.relative_to(ROOT)
        for text in _prose(path):
            broken += [f"{where}: {m}" for m in MODULE.findall(text) if not _module_exists(m)]
            broken += [f"{where}: {m}" for m in ELSEWHERE.findall(text)]
            for m in DOCUMENT.finditer(text):
                doc = _document(m.group(0))
                if doc is None:
                    broken.append(f"{where}: {m.group(0)}")
                    continue
                section = SECTION.match(text, m.end())
                if section and section.group(1).strip() not in _headings(doc):
                    broken.append(f"{where}: {m.group(0)} section {section.group(1)!r}")
    assert broken == []


def test_every_path_the_docs_name_exists() -> None:
    broken = [
        f"{doc.name}: {p}"
        for doc in DOCS
        for p in PATH.findall(doc.read_text())
        if not (ROOT / p).exists() and "*" not in p
    ]
    assert broken == []


def test_a_reference_to_a_document_kept_elsewhere_is_caught() -> None:
    """The checks above can fail: the reference this test was written for."""
    assert ELSEWHERE.search("The check contract's bodies (DESIGN §4).")
    assert not _module_exists("app.admin.service")
    assert _module_exists("app.admin.lookups.lock_institution")
    assert _document("DESIGN.md") is None
