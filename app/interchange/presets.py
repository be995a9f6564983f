"""Column presets: which Chinese headers mean what, and how a row becomes a record.

- ``weihai-roster`` — 威人社发〔2018〕56号 附件1 威海市医保医师基础信息库 (the service code is
  the ID number, §一);
- ``national-staff`` — the national platform's export of 医保医生 (and, alike, 医保护士 …);
- ``claimgate-roster`` — our own template (``claimgate template``, ``GET /v1/admin/imports/template``);
- ``violations`` — 附件2 诚信档案库 lines (违规类别, 违规行为描述, 单次扣分) with their date and
  institution, or the same under our template's headers.

Columns are matched by name (:mod:`app.interchange.headers`), never by position; a column a
preset does not know is ignored. 联系电话 is read by no preset: claimgate does not keep phone
numbers. End dates in a sheet are the last day covered (截止日期, inclusive); claimgate keeps the
first day no longer covered, so one day is added.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from app import codes
from app.interchange import cells
from app.interchange.headers import Column
from app.interchange.records import Category, Finding, Person, Row
from app.policy.events import CarriedStatus

ONE_DAY = dt.timedelta(days=1)

CATEGORY_NUMBERS: dict[str, Category] = {  # 附件1 填报说明1
    "1": "doctor",
    "2": "pharmacist",
    "3": "nurse",
    "4": "technician",
}
CATEGORY_WORDS: dict[str, Category] = {
    **CATEGORY_NUMBERS,
    "医师": "doctor",
    "医生": "doctor",
    "执业医师": "doctor",
    "执业助理医师": "doctor",
    "执业医师(含助理医师)": "doctor",
    "药剂": "pharmacist",
    "药剂人员": "pharmacist",
    "药师": "pharmacist",
    "护理": "nurse",
    "护理人员": "nurse",
    "护士": "nurse",
    "其他": "technician",
    "其他技术人员": "technician",
    "技师": "technician",
    "护理员": "carer",
    "doctor": "doctor",
    "nurse": "nurse",
    "pharmacist": "pharmacist",
    "technician": "technician",
    "carer": "carer",
}
STATUS_WORDS: dict[str, CarriedStatus] = {  # 附件1 服务状态 (0 有效、1 暂停、2 解除)
    "0": "",
    "1": "suspended",
    "2": "terminated",
    "有效": "",
    "正常": "",
    "暂停": "suspended",
    "中止": "suspended",
    "解除": "terminated",
    "取消": "terminated",
    "终止": "terminated",
}
STAFF_STATES: dict[str, bool] = {  # the national export's 人员状态 → still working there
    "1": True,
    "正常": True,
    "有效": True,
    "在职": True,
    "在岗": True,
    "启用": True,
    "0": False,
    "2": False,
    "注销": False,
    "离职": False,
    "调离": False,
    "停用": False,
    "失效": False,
}
NATIONAL_CATEGORIES: dict[str, Category] = {
    "D": "doctor",
    "N": "nurse",
    "HY": "pharmacist",
    "HJ": "technician",
}
RESIDENT_ID_TYPES = frozenset({"01", "1", "居民身份证", "身份证", "居民身份证(户口簿)"})
ATTRIBUTES = ("sex", "post", "title", "qualification_no", "licence_no", "note")


def _col(key: str, label: str, *aliases: str, required: bool = False, note: str = "") -> Column:
    return Column(key, label, aliases, required, note)


SEQ = _col("seq", "序号")
NAME = _col("name", "姓名", required=True)
SEX = _col("sex", "性别", note="男、女")
NOTE = _col("note", "备注")
POINTS = _col(
    "points", "累计扣分", "本年度累计扣分", "本周期累计扣分", note="本记分周期截至结转日已扣分值"
)
STATUS = _col(
    "status",
    "服务状态",
    "医保医师服务状态",
    "医保医务师服务状态",
    "资格状态",
    note="0 有效、1 暂停、2 解除",
)
STATUS_SINCE = _col(
    "status_since", "状态起始日期", "暂停起始日期", "解除日期", note="暂停或解除的第一天"
)
STATUS_UNTIL = _col(
    "status_until", "状态截止日期", "暂停截止日期", note="暂停的最后一天，或解除后禁止期的最后一天"
)

WEIHAI_ROSTER = (
    SEQ,
    _col(
        "institution_code",
        "执业定点医疗机构代码",
        "定点医疗机构代码",
        "医疗机构代码",
        "机构代码",
        required=True,
    ),
    _col(
        "institution_name",
        "名称",
        "执业定点医疗机构名称",
        "定点医疗机构名称",
        "医疗机构名称",
        "机构名称",
        required=True,
    ),
    NAME,
    SEX,
    _col("id_number", "身份证号码", "身份证号", "公民身份号码", required=True),
    _col(
        "category",
        "人员类别",
        "医师类别或其他卫生技术人员类别",
        "医师类别",
        required=True,
        note="1 执业医师（含助理医师）、2 药剂人员、3 护理人员、4 其他技术人员",
    ),
    _col("post", "行政职务", note="1 单位负责人、2 科室负责人"),
    _col("title", "职称"),
    _col("department", "执业科别", "科别", "所在科室", "科室", required=True, note="所在科室"),
    _col("qualification_no", "资格证书编码"),
    _col("licence_no", "执业证书编码"),
    _col("phone", "联系电话", note="不导入：claimgate 不保存电话号码"),
    POINTS,
    STATUS,
    NOTE,
    STATUS_SINCE,
    STATUS_UNTIL,
)

NATIONAL_STAFF = (
    _col(
        "institution_code",
        "医疗机构编码",
        "定点医药机构编码",
        "定点医疗机构编码",
        "机构编码",
        required=True,
    ),
    _col(
        "institution_name",
        "医疗机构名称",
        "定点医药机构名称",
        "定点医疗机构名称",
        "机构名称",
        required=True,
    ),
    _col(
        "practitioner_code",
        "医保医生代码",
        "医保护士代码",
        "医保药师代码",
        "医保技师代码",
        "医保医师代码",
        "医保人员代码",
        required=True,
    ),
    NAME,
    SEX,
    _col("id_type", "身份证件类型", "证件类型"),
    _col("id_number", "身份证件号码", "证件号码", "身份证号码"),
    _col("state", "人员状态", note="正常、注销…"),
    _col("agreement_start", "合同起始时间", "合同开始时间", "协议起始时间"),
    _col("agreement_end", "合同截止时间", "合同结束时间", "协议截止时间"),
    _col("licence_no", "医生执业证书编码", "护士执业证书编码", "执业证书编码"),
    _col("practice_kind", "执业类别"),
    _col("scope", "执业范围"),
    _col("department", "执业科室", "科室", "科室代码", "科室名称"),
    _col("level", "执业级别"),
    _col("title", "专业技术职务", "职称"),
)

CLAIMGATE_ROSTER = (
    _col(
        "institution_code", "机构代码", required=True, note="国家医保定点机构代码，如 H37100200001"
    ),
    _col("institution_name", "机构名称", required=True),
    _col("region_code", "区划代码", note="新机构的6位行政区划代码；空则取机构代码中的区划"),
    _col("department_code", "科室代码", note="如 A03；空则按科室名称对应"),
    _col("department", "科室名称", note="诊疗科目名称（内科）或本机构已有科室的名称"),
    _col(
        "practitioner_code",
        "人员代码",
        required=True,
        note="国家医保医师/护士/药师/技师代码，或以身份证号码作服务编码的地区填身份证号码",
    ),
    NAME,
    _col("category", "人员类别", required=True, note="医师、护士、药师、技师、护理员（或 1-4）"),
    _col("id_number", "身份证号码", note="只保存其密钥散列与掩码"),
    SEX,
    _col("title", "职称"),
    _col("registered_from", "执业起始日期", note="空则取导入时指定的起始日"),
    _col("registered_until", "执业截止日期", note="最后一个执业日；空则仍在执业"),
    _col("agreement_start", "协议起始日期"),
    _col("agreement_end", "协议截止日期", note="协议的最后一天"),
    POINTS,
    STATUS,
    STATUS_SINCE,
    STATUS_UNTIL,
    NOTE,
)

VIOLATIONS = (
    _col(
        "institution_code",
        "执业定点医疗机构代码",
        "机构代码",
        "定点医疗机构代码",
        "医疗机构代码",
        "医疗机构编码",
        required=True,
    ),
    _col("institution_name", "名称", "执业定点医疗机构名称", "机构名称"),
    _col("name", "姓名"),
    _col("practitioner_code", "人员代码", "医保医生代码", "医保医师代码", "医保护士代码"),
    _col("id_number", "身份证号码", "身份证件号码"),
    _col("department", "科室代码", "执业科别"),
    _col(
        "category",
        "违规类别",
        "扣分条目",
        required=True,
        note="扣分标准的条目编号（2.1.1.1）、条款（§二(一)1(1)）或违规行为原文",
    ),
    _col("description", "违规行为描述", "违规情况", note="无法按违规类别对应时，按此原文对应"),
    _col("points", "单次扣分", "扣分", "扣分分值", note="固定分值的条目可空；区间条目必填"),
    _col("date", "违规日期", "违规时间", "发生日期", "扣分日期", "处理日期", required=True),
    _col("exception_reason", "例外说明", note="分值不同于扣分标准时，经办人员的书面说明"),
    _col("act_id", "违规行为编号", note="同一违规行为涉及多个条目时填同一编号"),
    _col("inspection_id", "检查编号"),
    _col("total", "累计扣分", note="不导入：由 claimgate 计算"),
    _col("status", "服务状态", "医保医务师服务状态", note="不导入：由 claimgate 计算"),
    NOTE,
)


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    title: str
    kind: Literal["roster", "violations"]
    columns: tuple[Column, ...]
    read: Callable[[Row], Person | Finding | None]


def _end(day: dt.date | None) -> dt.date | None:
    """A sheet's last day covered → the first day no longer covered."""
    return None if day is None else day + ONE_DAY


def _attributes(row: Row) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in ATTRIBUTES:
        value = row.get(key, cells.code if key.endswith("_no") else cells.text)
        if value:
            out[key] = value[:200]
    return out


Balance = tuple[int | None, CarriedStatus | None, dt.date | None, dt.date | None]


def _balance(row: Row) -> Balance:
    """累计扣分, 服务状态 and the status's dates, read (and checked) whatever else fails."""
    points = row.get("points", lambda r: cells.whole(r, 0, 100))
    status = row.choice("status", STATUS_WORDS, "服务状态")
    since = row.get("status_since", cells.day)
    until = _end(row.get("status_until", cells.day))
    if (since or until) and row.has("status") and not status:
        row.problem("status_since" if since else "status_until", "服务状态为有效时不应填写状态日期")
    if since and until and until <= since:
        row.problem("status_until", "状态截止日期早于状态起始日期")
    return points, status, since, until


def _carry(person: Person, balance: Balance) -> None:
    person.points, person.status, person.status_since, person.status_until = balance


def _institution(row: Row) -> tuple[str | None, str | None]:
    code = row.need("institution_code", cells.code)
    if code is not None and not codes.INSTITUTION_RE.match(code):
        row.problem("institution_code", "应为国家医保定点机构代码（H或P加11位数字）")
        code = None
    return code, row.need("institution_name", cells.text)


def _person(
    row: Row,
    institution: str | None,
    name_: str | None,
    code: str | None,
    category: Category | None,
    department: str | None,
    department_key: str,
) -> Person | None:
    name = row.need("name", cells.text)
    if (
        not row.ok
        or institution is None
        or name_ is None
        or code is None
        or category is None
        or department is None
        or name is None
    ):
        return None
    return Person(
        row.number,
        institution,
        name_,
        department,
        row.column(department_key),
        code,
        name,
        category,
        attributes=_attributes(row),
    )


def read_weihai(row: Row) -> Person | None:
    """附件1: the ID number is the practitioner's service code (威海 §一 一人一码)."""
    institution, inst_name = _institution(row)
    id_number = row.need("id_number", cells.id_number)
    category = row.choice("category", CATEGORY_WORDS, "人员类别")
    if category is None and not row.has("category"):
        row.problem("category", "必填，不能为空")
    department = row.need("department", cells.text)
    balance = _balance(row)
    person = _person(row, institution, inst_name, id_number, category, department, "department")
    if person is not None:
        person.id_number = id_number
        _carry(person, balance)
    return person if row.ok else None


def read_national(row: Row) -> Person | None:
    """The national export: the code's prefix says doctor (D), nurse (N), pharmacist (HY) or
    technician (HJ); 身份证件号码 is kept (hashed, masked) only for a resident ID card."""
    institution, inst_name = _institution(row)
    code = row.need("practitioner_code", cells.code)
    category = (
        None if code is None else NATIONAL_CATEGORIES.get(code[:2] if code[:1] == "H" else code[:1])
    )
    if code is not None and not codes.is_national_practitioner(code):
        row.problem(
            "practitioner_code", "应为国家医保医师/护士/药师/技师代码（D、N、HY、HJ加12位数字）"
        )
    id_type = row.get("id_type", cells.text)
    id_number = None
    if row.has("id_number") and (id_type is None or "".join(id_type.split()) in RESIDENT_ID_TYPES):
        id_number = row.get("id_number", cells.id_number)
    key = "department" if row.has("department") else "scope"
    department = row.get(key, cells.text)
    if department is None:
        row.problem(key, "缺少科室：请增加“执业科室”列，或在执业范围中填写诊疗科目")
    state = row.choice("state", STAFF_STATES, "人员状态")
    start = row.get("agreement_start", cells.day)
    end = _end(row.get("agreement_end", cells.day))
    if start and end and end <= start:
        row.problem("agreement_end", "合同截止时间早于合同起始时间")
    person = _person(row, institution, inst_name, code, category, department, key)
    if person is None or not row.ok:
        return None
    person.id_number = id_number
    person.left = state is False
    person.registered_from = start
    person.agreement = (start, end) if start else None
    return person


def read_claimgate(row: Row) -> Person | None:
    institution, inst_name = _institution(row)
    code = row.need("practitioner_code", cells.code)
    if code is not None and not (
        codes.is_national_practitioner(code) or codes.is_resident_id(code)
    ):
        if codes.looks_like_resident_id(code):
            row.problem("practitioner_code", "身份证号码校验位不正确")
        else:
            row.problem("practitioner_code", "应为国家医保人员代码或18位身份证号码")
    category = row.choice("category", CATEGORY_WORDS, "人员类别")
    if category is None and not row.has("category"):
        row.problem("category", "必填，不能为空")
    key = "department_code" if row.has("department_code") else "department"
    department = row.get(key, cells.code if key == "department_code" else cells.text)
    if department is None:
        row.problem("department", "科室代码与科室名称至少填写一项")
    id_number = row.get("id_number", cells.id_number)
    balance = _balance(row)
    person = _person(row, institution, inst_name, code, category, department, key)
    if person is None:
        return None
    person.id_number = id_number
    if row.has("department") and key == "department_code":
        person.department_name = row.get("department", cells.text)
    region = row.get("region_code", cells.code)
    if region is not None:
        if not codes.REGION_RE.match(region):
            row.problem("region_code", "应为6位行政区划代码")
        person.region_code = region
    person.registered_from = row.get("registered_from", cells.day)
    person.registered_until = _end(row.get("registered_until", cells.day))
    start = row.get("agreement_start", cells.day)
    end = _end(row.get("agreement_end", cells.day))
    if end and not start:
        row.problem("agreement_start", "填写了协议截止日期时，协议起始日期必填")
    person.agreement = (start, end) if start else None
    for a, b in (("registered_from", "registered_until"), ("agreement_start", "agreement_end")):
        first, last = row.get(a, cells.day), row.get(b, cells.day)
        if first and last and last < first:
            row.problem(b, "截止日期早于起始日期")
    _carry(person, balance)
    return person if row.ok else None


def read_violation(row: Row) -> Finding | None:
    institution, _ = _institution_only(row)
    key = "practitioner_code" if row.has("practitioner_code") else "id_number"
    code = row.get(key, cells.id_number if key == "id_number" else cells.code)
    if code is None and not row.has(key):
        row.problem(key, "人员代码（或身份证号码）必填")
    elif code is not None and not (
        codes.is_national_practitioner(code) or codes.is_resident_id(code)
    ):
        row.problem(key, "应为国家医保人员代码或18位身份证号码")
    category = row.need("category", cells.text)
    day = row.need("date", cells.day)
    points = row.get("points", lambda r: cells.whole(r, 1, 100))
    department = row.get("department", cells.code)
    if department is not None and not codes.LOCAL_CODE_RE.match(department):
        department = None  # 附件2's 执业科别 is a name: the finding is the practitioner's
    if not row.ok or institution is None or code is None or category is None or day is None:
        return None
    return Finding(
        row.number,
        institution,
        code,
        day,
        category,
        row.get("description", cells.text) or "",
        points,
        row.get("exception_reason", cells.text),
        department,
        row.get("act_id", cells.code),
        row.get("inspection_id", cells.code),
    )


def _institution_only(row: Row) -> tuple[str | None, None]:
    code = row.need("institution_code", cells.code)
    if code is not None and not codes.INSTITUTION_RE.match(code):
        row.problem("institution_code", "应为国家医保定点机构代码（H或P加11位数字）")
        code = None
    return code, None


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "weihai-roster",
            "威海市医保医师基础信息库（附件1）",
            "roster",
            WEIHAI_ROSTER,
            read_weihai,
        ),
        Preset(
            "national-staff",
            "国家医保信息平台 医保医生/护士信息导出",
            "roster",
            NATIONAL_STAFF,
            read_national,
        ),
        Preset(
            "claimgate-roster", "claimgate 人员名册模板", "roster", CLAIMGATE_ROSTER, read_claimgate
        ),
        Preset(
            "violations",
            "医保医师诚信档案 违规记录（附件2）",
            "violations",
            VIOLATIONS,
            read_violation,
        ),
    )
}
