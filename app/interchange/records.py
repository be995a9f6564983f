"""What a preset makes of a row: a roster line (:class:`Person`) or a finding (:class:`Finding`),
the same whatever layout it came from, and :class:`Row`, the reading of one row's cells that
collects each cell's problem into the report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from app.interchange import cells
from app.interchange.cells import CellError, Raw
from app.interchange.headers import Layout
from app.interchange.report import Report
from app.policy.events import CarriedStatus

T = TypeVar("T")
Category = Literal["doctor", "nurse", "pharmacist", "technician", "carer"]


@dataclass(slots=True)
class Person:
    """One roster line: a practitioner working at an institution's department, with what the
    roster says of them there. ``department`` is the cell as written (a code or a name), the
    header it came from in ``department_column``. ``points`` / ``status`` None: not stated."""

    row: int
    institution_code: str
    institution_name: str
    department: str
    department_column: str
    practitioner_code: str
    name: str
    category: Category
    id_number: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    registered_from: dt.date | None = None
    registered_until: dt.date | None = None  # exclusive
    agreement: tuple[dt.date, dt.date | None] | None = None
    points: int | None = None
    status: CarriedStatus | None = None
    status_since: dt.date | None = None
    status_until: dt.date | None = None  # exclusive
    left: bool = False  # the national export's 人员状态 says they no longer work there
    region_code: str | None = None  # a new institution's region, where the sheet gives it
    department_name: str | None = None  # a new department's name, given beside its code


@dataclass(slots=True)
class Finding:
    """One violation line (诚信档案): who, where, when, and the 违规类别 it is recorded under."""

    row: int
    institution_code: str
    practitioner_code: str
    date: dt.date
    category: str
    description: str = ""
    points: int | None = None
    exception_reason: str | None = None
    department: str | None = None
    act_id: str | None = None
    inspection_id: str | None = None


class Row:
    """One row's cells by column key, reading each with a :mod:`~app.interchange.cells` reader;
    a cell that fails becomes a problem (row, the column's header, what is wrong)."""

    def __init__(self, number: int, cells_: list[Raw], layout: Layout, report: Report) -> None:
        self.number = number
        self.cells = cells_
        self.layout = layout
        self.report = report
        self.ok = True

    def raw(self, key: str) -> Raw:
        i = self.layout.index.get(key)
        return self.cells[i] if i is not None and i < len(self.cells) else None

    def has(self, key: str) -> bool:
        return not cells.is_blank(self.raw(key))

    def column(self, key: str) -> str:
        return self.layout.header.get(key, key)

    def problem(self, key: str | None, message: str) -> None:
        self.ok = False
        self.report.add(self.number, None if key is None else self.column(key), message)

    def get(self, key: str, reader: Callable[[Raw], T], *, required: bool = False) -> T | None:
        if not self.has(key):
            if required:
                self.problem(key, "必填，不能为空")
            return None
        try:
            return reader(self.raw(key))
        except CellError as exc:
            self.problem(key, str(exc))
            return None

    def need(self, key: str, reader: Callable[[Raw], T]) -> T | None:
        return self.get(key, reader, required=True)

    def choice(self, key: str, table: dict[str, T], what: str) -> T | None:
        """A cell that must be one of ``table``'s words (or numbers), e.g. 服务状态 0/1/2."""
        if not self.has(key):
            return None
        raw = self.raw(key)
        try:
            word = "".join(cells.text(raw).split()) if not isinstance(raw, float) else str(int(raw))
        except (CellError, ValueError, OverflowError):
            word = ""
        found = table.get(word)
        if found is None and word[:1].isdigit():
            found = table.get(word[:1] if not word[1:2].isdigit() else word[:2])  # "1 暂停"
        if found is None:
            self.problem(key, f"不是可识别的{what}（可填：{'、'.join(_shown(table))}）")
        return found


def _shown(table: Mapping[str, object]) -> list[str]:
    return [k for k in table if not k.isascii() or k.isdigit()][:12]
