"""Finding a sheet's header row and which column holds what, by the header's name.

Agencies' sheets put a title above the table (merged across it), wrap long headers onto
several lines ("执业 定点 医疗 机构 代码"), add notes in brackets ("服务状态 (0 有效、1 暂停、
2 解除)"), mark required columns with ``*``, and split a header over two rows under a merged
cell ("执业定点医疗机构" over "代码" | "名称"). So a header is compared after folding full-width
forms, dropping every space, bracketed note and mark; and a two-row header is read three ways
per column — the lower cell, the upper and lower together, the upper alone (a merged upper cell
counts over every column it spans). The header is the row (or pair of rows) among the first
:data:`SCAN` that names the most of the preset's columns and every required one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from app.interchange.cells import Raw
from app.interchange.readers import Sheet

SCAN = 15
_NOTE = re.compile(r"[(（\[【][^)）\]】]*[)）\]】]")
_MARKS = re.compile(r"[\s*＊:：.。、#№]")


@dataclass(frozen=True, slots=True)
class Column:
    """A column a preset reads: ``key`` (what the record calls it), ``label`` (its header in
    the preset's own layout), ``aliases`` (other headers that mean it), ``required``."""

    key: str
    label: str
    aliases: tuple[str, ...] = ()
    required: bool = False
    note: str = ""  # what goes in it, for the template's instructions and the docs

    @property
    def names(self) -> frozenset[str]:
        return frozenset(fold(n) for n in (self.label, *self.aliases))


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a preset's columns are: ``index[key]`` (into a row's cells), ``header[key]`` (the
    header as the file spells it, with its column letter: what a problem names), and the
    index into ``sheet.rows`` of the first row after the header."""

    index: dict[str, int]
    header: dict[str, str]
    data_start: int


def fold(text: str) -> str:
    out = unicodedata.normalize("NFKC", text)
    out = _NOTE.sub("", out)
    return _MARKS.sub("", out)


def letter(index: int) -> str:
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def _cell(raw: Raw) -> str:
    return "" if raw is None else str(raw)


def _upper_filled(sheet: Sheet, i: int, width: int) -> list[str]:
    """Row ``i`` with each merged range's value spread over every column it spans."""
    row = [_cell(c) for c in sheet.rows[i]] + [""] * width
    for r0, c0, r1, c1 in sheet.merged:
        if r0 <= i <= r1 and 0 <= c0 < len(sheet.rows[r0]):
            for c in range(c0, c1 + 1):
                row[c] = _cell(sheet.rows[r0][c0])
    return row[:width]


def _candidates(sheet: Sheet, i: int, depth: int) -> list[list[str]]:
    width = max(len(sheet.rows[k]) for k in range(i, i + depth))
    if depth == 1:
        return [[fold(v)] for v in _upper_filled(sheet, i, width)]
    upper, lower = _upper_filled(sheet, i, width), _upper_filled(sheet, i + 1, width)
    return [[fold(lo), fold(up + lo), fold(up)] for up, lo in zip(upper, lower, strict=True)]


def find(sheet: Sheet, columns: tuple[Column, ...]) -> Layout | None:
    """The header of ``sheet`` for ``columns``, or None when no row names every required one."""
    best: tuple[int, int, Layout] | None = None
    for i in range(min(SCAN, len(sheet.rows))):
        for depth in (1, 2):
            if i + depth > len(sheet.rows):
                continue
            index: dict[str, int] = {}
            for col, names in enumerate(_candidates(sheet, i, depth)):
                for name in names:
                    key = next((c.key for c in columns if name and name in c.names), None)
                    if key is not None:
                        index.setdefault(key, col)
                        break
            if not all(c.key in index for c in columns if c.required):
                continue
            score = (len(index), -depth)
            if best is None or score > (best[0], best[1]):
                header = {
                    k: f"{_spelled(sheet, i, depth, c)}（{letter(c + sheet.first_column)}列）"
                    for k, c in index.items()
                }
                best = (len(index), -depth, Layout(index, header, i + depth))
    return None if best is None else best[2]


def _spelled(sheet: Sheet, i: int, depth: int, col: int) -> str:
    parts = []
    for k in range(i, i + depth):
        v = "".join(_upper_filled(sheet, k, col + 1)[col].split())
        if v and v not in parts:
            parts.append(v)
    return "".join(parts)
