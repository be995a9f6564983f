"""A roster's 执业科别 / 执业范围 to a department code.

Rosters name a department by words ("内科", "内科专业") or, less often, by code ("A03"). The
code is found, in order: a code-shaped cell as it is; a department of that institution with
exactly that name; the first-level subject of 《医疗机构诊疗科目名录》 with that name, under the
医保 department code it has in the 医疗保障基金结算清单 (A + its two digits: 内科 → A03). Nothing
is matched by a part of a name ("心血管内科" is not "内科"): such a row is refused, and the
officer writes the code.
"""

from __future__ import annotations

import re

from app import codes

# 《医疗机构诊疗科目名录》 first-level subjects and their numbers
SUBJECTS: dict[str, str] = {
    "预防保健科": "01",
    "全科医疗科": "02",
    "内科": "03",
    "外科": "04",
    "妇产科": "05",
    "妇女保健科": "06",
    "儿科": "07",
    "小儿外科": "08",
    "儿童保健科": "09",
    "眼科": "10",
    "耳鼻咽喉科": "11",
    "口腔科": "12",
    "皮肤科": "13",
    "医疗美容科": "14",
    "精神科": "15",
    "传染科": "16",
    "结核病科": "17",
    "地方病科": "18",
    "肿瘤科": "19",
    "急诊医学科": "20",
    "康复医学科": "21",
    "运动医学科": "22",
    "职业病科": "23",
    "临终关怀科": "24",
    "特种医学与军事医学科": "25",
    "麻醉科": "26",
    "疼痛科": "27",
    "重症医学科": "28",
    "医学检验科": "30",
    "病理科": "31",
    "医学影像科": "32",
    "中医科": "50",
    "民族医学科": "51",
    "中西医结合科": "52",
    "其他业务科室": "69",
}
NAME_OF_CODE = {f"A{n}": name for name, n in SUBJECTS.items()}
_SHORT = {name.removesuffix("科"): name for name in SUBJECTS if len(name) > 2}
_SUFFIX = re.compile(r"(专业|专科|诊疗科目)$")


def subject(words: str) -> tuple[str, str] | None:
    """(code, name) of the first-level subject ``words`` names exactly, e.g. "内科专业" →
    ("A03", "内科"); None when it names none."""
    name = _SUFFIX.sub("", "".join(words.split()))
    name = _SHORT.get(name, name)  # "急诊医学" for "急诊医学科"
    n = SUBJECTS.get(name)
    return None if n is None else (f"A{n}", name)


def looks_like_code(cell: str) -> bool:
    return cell.isascii() and codes.LOCAL_CODE_RE.match(codes.normalize(cell)) is not None
