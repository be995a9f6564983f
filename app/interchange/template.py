"""Our own template: a blank workbook with the ``claimgate-roster`` columns (required ones
marked ``*``), a sheet for violation lines (the ``violations`` preset), and a sheet of
instructions, one line per column. Written by ``claimgate template FILE`` and served at
``GET /v1/admin/imports/template``."""

from __future__ import annotations

from app.interchange.headers import Column
from app.interchange.presets import CLAIMGATE_ROSTER, VIOLATIONS
from app.interchange.writers import Cell, xlsx

ROSTER_SHEET = "人员名册"
VIOLATIONS_SHEET = "违规记录"

GENERAL = (
    "每行一名人员在一个机构、一个科室的执业；同一人员多点执业时每个机构各填一行。",
    "表头按名称识别，列的顺序可以调整，不需要的选填列可以删除；标 * 的列必填。",
    "机构代码、人员代码、身份证号码、证书编码请设为文本格式：以数字保存的号码会被拒绝，不作猜测。",
    "日期填写为 2026-06-30；截止日期为最后一个有效日。",
    "累计扣分、服务状态为期初结转：本记分周期截至导入的结转日（as_of）已扣分值和当日的服务状态，"
    "导入后按所在地区的规则继续计算。",
    "先用试导入（--dry-run 或 dry_run=true）检查：逐行报告问题，不写入任何数据。",
    "不导入联系电话；身份证号码只保存密钥散列与掩码，导出时只有掩码。",
)


def _header(columns: tuple[Column, ...]) -> list[str]:
    return [
        f"{c.label}*" if c.required else c.label
        for c in columns
        if c.key not in ("total", "status")
    ]


def _instructions() -> list[list[Cell]]:
    rows: list[list[Cell]] = [[None, None, line] for line in GENERAL]
    rows.append([None, None, None])
    for sheet, columns in ((ROSTER_SHEET, CLAIMGATE_ROSTER), (VIOLATIONS_SHEET, VIOLATIONS)):
        for c in columns:
            if c.key in ("total", "status") and sheet == VIOLATIONS_SHEET:
                continue
            rows.append([f"{sheet}：{c.label}", "是" if c.required else "否", c.note])
    return rows


def template() -> bytes:
    return xlsx(
        [
            (ROSTER_SHEET, _header(CLAIMGATE_ROSTER), []),
            (VIOLATIONS_SHEET, _header(VIOLATIONS), []),
            ("填写说明", ["列", "必填", "说明"], _instructions()),
        ]
    )
