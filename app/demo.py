"""A realistic demo data set, written through the service's own write path.

Four institutions in four regions (济宁, 威海, 舟山, 兰州), their departments, about three hundred
practitioners (some at two sites, 多点执业), a few suspended / terminated / locked by hand, one
department with its settlement suspended, local-code aliases; then one fresh key per role.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any, Literal

from sqlalchemy import func, select, update

from app import codes
from app.admin import aliases, institutions, practitioners
from app.admin import schemas as s
from app.admin.unit_of_work import UnitOfWork
from app.admin.writes import Write, Writes
from app.auth.keys import create_key
from app.db import tables
from app.db.engine import make_engine
from app.db.tables import api_keys
from app.projection.ledger import WriteContext
from app.settings import Settings

INSTITUTIONS = [
    ("H37080200001", "济宁市第一人民医院", "370800"),
    ("H37081100002", "济宁市任城区人民医院", "370800"),
    ("H37100200001", "威海市立医院", "371000"),
    ("H33090200001", "舟山医院", "330900"),
    ("H62010200001", "兰州市第一人民医院", "620100"),
]
DEPARTMENTS = [
    ("A01", "内科"),
    ("A02", "外科"),
    ("A03", "儿科"),
    ("A04", "妇产科"),
    ("A05", "急诊科"),
    ("A06", "中医科"),
    ("A07", "药剂科"),
    ("A08", "检验科"),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥建文辉力"
WRITE = Write(WriteContext(api_key_id=None, request_id="demo"))
TODAY = date(2026, 11, 23)


def fake_resident_id(rng: random.Random, division: str) -> str:
    """A synthetic ID number with a valid GB 11643 check digit (never a real person's)."""
    born = date(1960, 1, 1) + timedelta(days=rng.randrange(0, 365 * 35))
    body = f"{division}{born:%Y%m%d}{rng.randrange(0, 1000):03d}"
    total = sum(int(c) * w for c, w in zip(body, codes._ID_WEIGHTS, strict=True))
    return body + codes._ID_CHECK[total % 11]


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


async def _load_data(settings: Settings) -> bool:
    """Load the demo set unless the database already holds data; return whether it loaded."""
    rng = random.Random(20261123)
    engine = make_engine(settings)
    writes = Writes(engine)  # no mirror: the server's sync worker builds it at start
    secret = settings.pii_secret
    try:
        async with engine.connect() as conn:
            if (
                await conn.execute(select(tables.institutions.c.code).limit(1))
            ).first() is not None:
                return False
        staff: dict[str, list[str]] = {}
        for inst, name, region in INSTITUTIONS:
            _, out = await writes.run(WRITE, _institution, inst, name, region, rng, secret)
            staff[inst] = out["staff"]
        await writes.run(WRITE, _sanctions, staff, secret)
        return True
    finally:
        await engine.dispose()


async def _institution(
    uow: UnitOfWork, inst: str, name: str, region: str, rng: random.Random, secret: str
) -> dict[str, Any]:
    """One institution, its departments and sixty staff, each registered with an agreement."""
    await institutions.put_institution(uow, inst, s.InstitutionIn(name=name, region_code=region))
    for d, dn in DEPARTMENTS:
        await institutions.put_department(uow, inst, d, s.DepartmentIn(name=dn))
    staff = []
    for i in range(1, 61):
        division = inst[1:7]
        if region == "371000":  # 威海 uses the resident ID as the service code
            code = fake_resident_id(rng, division)
        else:
            prefix = "D" if i <= 40 else rng.choice(("N", "HY", "HJ"))
            code = f"{prefix}{division}{int(inst[-5:]):01d}{i:05d}"
        category = codes.category_of_national_code(code) or "doctor"
        await practitioners.put_practitioner(
            uow, code, s.PractitionerIn(name=_name(rng), category=category), secret
        )
        end = date(2026, 1, 1) if i == 59 else date(2027, 1, 1)  # one agreement lapsed
        await _works_at(
            uow,
            code,
            inst,
            DEPARTMENTS[i % len(DEPARTMENTS)][0],
            date(2024, 1, 1),
            date(2025, 1, 1),
            end,
            secret,
        )
        staff.append(code)
    return {"staff": staff}


async def _works_at(
    uow: UnitOfWork,
    code: str,
    inst: str,
    dept: str,
    since: date,
    agreed: date,
    agreed_until: date,
    secret: str,
) -> None:
    """A registration from ``since`` and an agreement over [agreed, agreed_until)."""
    await practitioners.add_registration(
        uow,
        s.RegistrationIn(
            practitioner_code=code, institution_code=inst, department_code=dept, start=since
        ),
        secret,
    )
    await practitioners.add_agreement(
        uow,
        s.AgreementIn(
            practitioner_code=code, institution_code=inst, start=agreed, end=agreed_until
        ),
        secret,
    )


async def _sanctions(uow: UnitOfWork, staff: dict[str, list[str]], secret: str) -> dict[str, Any]:
    """多点执业, a few sanctions by hand everywhere, a suspended department, two aliases."""
    a, b = "H37080200001", "H37081100002"
    # 多点执业: ten of the first hospital's doctors also work at the second.
    for code in staff[a][:10]:
        await _works_at(
            uow, code, b, "A05", date(2025, 6, 1), date(2025, 6, 1), date(2027, 6, 1), secret
        )
    for inst, codes_ in staff.items():
        for code in codes_[5:8]:  # a few suspended by hand, everywhere
            await _by_hand(
                uow,
                code,
                "suspend",
                "demo: 病历不规范 中止3个月",
                secret,
                date(2026, 10, 1),
                date(2027, 1, 1),
            )
        await _by_hand(
            uow, codes_[8], "terminate", "demo: 虚构医疗服务 解除协议", secret, date(2026, 6, 1)
        )
        await _by_hand(
            uow,
            codes_[9],
            "lock_code",
            "demo: 解绑后编码封锁",
            secret,
            date(2026, 9, 1),
            institution=inst,
        )
    await institutions.department_action(
        uow,
        a,
        "A04",
        s.DepartmentActionIn(
            action="suspend",
            start=date(2026, 11, 1),
            end=date(2027, 2, 1),
            reason="demo: 科室2名医师被暂停 暂停结算3个月",
        ),
    )
    await aliases.put_alias(uow, a, "practitioner", "0001", s.AliasIn(target=staff[a][0]), secret)
    await aliases.put_alias(uow, a, "department", "NK", s.AliasIn(target="A01"), secret)
    return {}


async def _by_hand(
    uow: UnitOfWork,
    code: str,
    action: Literal["suspend", "terminate", "lock_code"],
    reason: str,
    secret: str,
    start: date,
    end: date | None = None,
    *,
    institution: str | None = None,
) -> None:
    body = s.PractitionerActionIn(
        action=action, institution_code=institution, start=start, end=end, reason=reason
    )
    await practitioners.practitioner_action(uow, code, body, secret)


async def _issue_keys(settings: Settings) -> dict[str, str]:
    engine = make_engine(settings)
    out: dict[str, str] = {}
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(api_keys)
                .where(api_keys.c.label == "demo", api_keys.c.revoked_at.is_(None))
                .values(revoked_at=func.now())
            )
            for role in ("his", "gateway", "agency", "ops"):
                insts = ["H37080200001", "H37081100002"] if role == "his" else []
                _, raw = await create_key(conn, role, insts, "demo")
                out[role] = raw
    finally:
        await engine.dispose()
    return out


async def load_demo(settings: Settings, *, host: str, port: int) -> None:
    loaded = await _load_data(settings)
    keys = await _issue_keys(settings)
    print("\n== claimgate demo ==")
    print("data:", "loaded" if loaded else "already present (kept)")
    for role, raw in keys.items():
        print(f"  {role:8s} key: {raw}")
    base = f"http://{host}:{port}"
    print(
        f"\ncheck a claim line (suspended practitioner D370802100006 → deny):\n"
        f"  curl -s {base}/v1/checks -H 'Authorization: Bearer {keys['his']}' "
        "-H 'Content-Type: application/json' "
        '-d \'{"institution_code":"H37080200001","department_code":"A07",'
        '"practitioner_code":"D370802100006","service_date":"2026-11-22"}\'\n'
    )
    print(f"readiness: curl -s {base}/readyz\n")
