"""A file and a preset → the report and the records: the whole reading of a spreadsheet, with
no database. Pure CPU; the API runs it in a worker thread."""

from __future__ import annotations

from app.interchange import cells, headers, readers
from app.interchange.presets import Preset
from app.interchange.records import Finding, Person, Row
from app.interchange.report import Refused, Report

Record = Person | Finding


def parse(
    data: bytes, preset: Preset, *, charset: str | None = None, sheet: str | None = None
) -> tuple[Report, list[Record]]:
    """Every row under the preset's header read into a record, each bad cell a problem.

    The sheet is the one named, else the first whose header the preset recognises. Rows whose
    required columns are all blank are not records (blank rows, 填报说明 notes under the table,
    numbered empty lines of a blank form). Raises :class:`Refused` when no sheet can be read.
    """
    report = Report(preset.name)
    sheets = readers.read(
        data, report, lambda s: headers.find(s, preset.columns) is not None, charset
    )
    if sheet is not None:
        sheets = [s for s in sheets if s.name == sheet]
        if not sheets:
            report.add(None, None, "文件中没有指定名称的工作表")
            raise Refused(report)
    found = next(
        ((s, layout) for s in sheets if (layout := headers.find(s, preset.columns)) is not None),
        None,
    )
    if found is None:
        required = "、".join(c.label for c in preset.columns if c.required)
        report.sheet = sheets[0].name if len(sheets) == 1 else ""
        report.add(None, None, f"未找到本预设（{preset.title}）的表头：须含 {required} 列")
        raise Refused(report)
    chosen, layout = found
    report.sheet, report.encoding = chosen.name, chosen.encoding
    keys = [layout.index[c.key] for c in preset.columns if c.required]
    records: list[Record] = []
    for i in range(layout.data_start, len(chosen.rows)):
        raw = chosen.rows[i]
        if all(k >= len(raw) or cells.is_blank(raw[k]) for k in keys):
            continue
        report.rows += 1
        record = preset.read(Row(chosen.number(i), raw, layout, report))
        if record is not None:
            records.append(record)
    if report.rows == 0:
        report.add(None, None, "表头下没有数据行")
    return report, records
