"""The per-row report of an import: where each problem is and what is wrong, in Chinese.

A :class:`Problem` names a sheet, a row (as the spreadsheet numbers it, from 1), a column (its
header as the file spells it) and the problem — never the cell's value: a roster's cells are
names, ID numbers and phone numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_LISTED = 1000  # problems an answer lists; the count is always whole


@dataclass(frozen=True, slots=True)
class Problem:
    sheet: str
    row: int | None  # None: the file or the sheet as a whole
    column: str | None
    problem: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "problem": self.problem,
        }


@dataclass(slots=True)
class Report:
    """What an import found: problems, and the counts of what it would write (or wrote)."""

    preset: str
    sheet: str = ""
    encoding: str | None = None
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, row: int | None, column: str | None, problem: str) -> None:
        self.problems.append(Problem(self.sheet, row, column, problem))

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.problems, key=lambda p: (p.row or 0, p.column or ""))
        return {
            "preset": self.preset,
            "sheet": self.sheet,
            "encoding": self.encoding,
            "rows": self.rows,
            "ok": self.ok,
            "problem_count": len(self.problems),
            "problems": [p.as_dict() for p in ordered[:MAX_LISTED]],
            "counts": dict(self.counts),
        }


class Refused(Exception):
    """The file as a whole cannot be read (not a spreadsheet, an encoding not recognised, no
    header row of the preset): the report says why, with no row to name."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.problems[0].problem if report.problems else "refused")
        self.report = report
