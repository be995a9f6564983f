"""Bulk import: many institutions, departments, practitioners, registrations, agreements and
status actions in one transaction and one recompute — the same ledger, projections and outbox
as the single writes, set-based, for an agency's initial load (and the load tests' seeding)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app import codes
from app.admin import schemas as s
from app.admin.aliases import department_aliases_among, shadowed_department
from app.admin.institutions import unknown_region
from app.admin.unit_of_work import Audit, UnitOfWork
from app.db.any_of import any_of
from app.db.tables import agreements, departments, institutions, practitioners, registrations
from app.errors import InvalidField
from app.fields import InstitutionCode, LocalCode, NationalPractitionerCode
from app.policy import UnknownRegion, profile_for_region
from app.projection.ledger import LedgerEntry

MAX_ROWS = 20_000


class BulkInstitution(s.InstitutionIn):
    code: InstitutionCode


class BulkDepartment(s.DepartmentIn):
    institution_code: InstitutionCode
    code: LocalCode


class BulkPractitioner(s.PractitionerIn):
    code: NationalPractitionerCode


class BulkPractitionerAction(s.PractitionerActionIn):
    practitioner_code: NationalPractitionerCode


class BulkDepartmentAction(s.DepartmentActionIn):
    institution_code: InstitutionCode
    department_code: LocalCode


class BulkIn(s.Strict):
    institutions: list[BulkInstitution] = Field(default_factory=list)
    departments: list[BulkDepartment] = Field(default_factory=list)
    practitioners: list[BulkPractitioner] = Field(default_factory=list)
    registrations: list[s.RegistrationIn] = Field(default_factory=list)
    agreements: list[s.AgreementIn] = Field(default_factory=list)
    practitioner_actions: list[BulkPractitionerAction] = Field(default_factory=list)
    department_actions: list[BulkDepartmentAction] = Field(default_factory=list)


async def _known(conn: AsyncConnection, col: Any, values: set[str]) -> set[str]:
    if not values:
        return set()
    return {v for (v,) in await conn.execute(select(col).where(any_of(col, sorted(values))))}


async def bulk_import(uow: UnitOfWork, body: BulkIn, secret: str) -> dict[str, Any]:
    conn = uow.conn
    total = sum(len(getattr(body, f)) for f in BulkIn.model_fields)
    if total > MAX_ROWS:
        raise InvalidField(f"at most {MAX_ROWS} records per import; split it", field="body")
    evs: list[LedgerEntry] = []

    for i, inst in enumerate(body.institutions):
        try:
            profile = profile_for_region(inst.region_code)
        except UnknownRegion as exc:
            raise unknown_region(exc, f"body.institutions.{i}.region_code") from None
        values = {"name": inst.name, "region_code": inst.region_code, "profile_id": profile.id}
        stmt = insert(institutions).values(code=inst.code, **values)
        await conn.execute(
            stmt.on_conflict_do_update(index_elements=[institutions.c.code], set_=values)
        )
        evs.append(
            LedgerEntry(
                "institution_upserted", {"code": inst.code, **values}, institution=inst.code
            )
        )

    inst_codes = {d.institution_code for d in body.departments}
    missing = inst_codes - await _known(conn, institutions.c.code, inst_codes)
    for i, d in enumerate(body.departments):
        if d.institution_code in missing:
            raise InvalidField(
                "no institution is registered under this code",
                field=f"body.departments.{i}.institution_code",
            )
    if body.departments:
        existing = {
            (i, d)
            for i, d in await conn.execute(
                select(departments.c.institution_code, departments.c.code).where(
                    any_of(departments.c.institution_code, sorted(inst_codes))
                )
            )
        }
        stmt = insert(departments).values(
            [
                {"institution_code": d.institution_code, "code": d.code, "name": d.name}
                for d in body.departments
            ]
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[departments.c.institution_code, departments.c.code],
                set_={"name": stmt.excluded.name},
            )
        )
        # Checked after the insert: its foreign key holds the institution's row against an
        # alias being written meanwhile (which locks that row first), so none slips between.
        new = [(d.institution_code, d.code) for d in body.departments]
        shadowed = await department_aliases_among(conn, [p for p in new if p not in existing])
        for i, pair in enumerate(new):
            if pair in shadowed:
                raise shadowed_department(f"body.departments.{i}.code")
        evs += [
            LedgerEntry(
                "department_upserted",
                {"name": d.name},
                institution=d.institution_code,
                department=d.code,
            )
            for d in body.departments
        ]

    if body.practitioners:
        rows = [
            practitioner_row(p.code, p.name, p.category, p.id_number, secret)
            for p in body.practitioners
        ]
        evs += await upsert_practitioners(conn, rows)

    tok = {
        c: codes.practitioner_token(c, secret)
        for c in {r.practitioner_code for r in body.registrations}
        | {a.practitioner_code for a in body.agreements}
        | {a.practitioner_code for a in body.practitioner_actions}
    }
    known_p = await _known(conn, practitioners.c.token, set(tok.values()))
    refs_i = (
        {r.institution_code for r in body.registrations}
        | {a.institution_code for a in body.agreements}
        | {a.institution_code for a in body.department_actions}
        | {a.institution_code for a in body.practitioner_actions if a.institution_code}
    )
    known_i = await _known(conn, institutions.c.code, refs_i)
    dept_pairs = {(r.institution_code, r.department_code) for r in body.registrations} | {
        (a.institution_code, a.department_code) for a in body.department_actions
    }
    known_d = set()
    if dept_pairs:
        known_d = {
            (i, d)
            for i, d in await conn.execute(
                select(departments.c.institution_code, departments.c.code).where(
                    any_of(departments.c.institution_code, sorted({i for i, _ in dept_pairs}))
                )
            )
        }

    def _check(
        section: str, i: int, p: str | None, inst: str | None, dept: str | None = None
    ) -> None:
        if p is not None and tok[p] not in known_p:
            raise InvalidField(
                "no practitioner is registered under this code",
                field=f"body.{section}.{i}.practitioner_code",
            )
        if inst is not None and inst not in known_i:
            raise InvalidField(
                "no institution is registered under this code",
                field=f"body.{section}.{i}.institution_code",
            )
        if inst is not None and dept is not None and (inst, dept) not in known_d:
            raise InvalidField(
                "no department is registered under this code at the institution",
                field=f"body.{section}.{i}.department_code",
            )

    reg_rows: list[dict[str, Any]] = []
    for i, r in enumerate(body.registrations):
        _check("registrations", i, r.practitioner_code, r.institution_code, r.department_code)
        reg_rows.append(
            {
                "practitioner_token": tok[r.practitioner_code],
                "institution_code": r.institution_code,
                "department_code": r.department_code,
                "start": r.start,
                "end": r.end,
            }
        )
    agr_rows: list[dict[str, Any]] = []
    for i, a in enumerate(body.agreements):
        _check("agreements", i, a.practitioner_code, a.institution_code)
        agr_rows.append(
            {
                "practitioner_token": tok[a.practitioner_code],
                "institution_code": a.institution_code,
                "start": a.start,
                "end": a.end,
            }
        )
    evs += await insert_dated(conn, registrations, reg_rows, "registration_added")
    evs += await insert_dated(conn, agreements, agr_rows, "agreement_added")

    for i, pa in enumerate(body.practitioner_actions):
        _check("practitioner_actions", i, pa.practitioner_code, pa.institution_code)
        evs.append(
            LedgerEntry(
                "practitioner_action",
                pa.event_payload(institution=pa.institution_code),
                practitioner=tok[pa.practitioner_code],
                institution=pa.institution_code,
                occurred_on=pa.start,
            )
        )
    for i, da in enumerate(body.department_actions):
        _check("department_actions", i, None, da.institution_code, da.department_code)
        evs.append(
            LedgerEntry(
                "department_action",
                da.event_payload(department=da.department_code),
                institution=da.institution_code,
                department=da.department_code,
                occurred_on=da.start,
            )
        )

    counts = {f: len(getattr(body, f)) for f in BulkIn.model_fields}
    await uow.record_many(evs, audit=Audit("bulk.import", "bulk", counts))
    await uow.flush()  # now, to answer how many projections it wrote
    return {"imported": counts, "projections_written": len(uow.written)}


def practitioner_row(
    code: str, name: str, category: str, id_number: str | None, secret: str
) -> dict[str, Any]:
    """A ``practitioners`` row: the token, the code as shown, and an ID number only as its keyed
    digest and its mask (the code is the ID number where a region uses it as the service code)."""
    id_number = id_number or (code if codes.is_resident_id(code) else None)
    return {
        "token": codes.practitioner_token(code, secret),
        "display_code": codes.display_code(code),
        "category": category,
        "name": name,
        "id_digest": codes.pii_digest(secret, id_number) if id_number else None,
        "id_masked": codes.mask_resident_id(id_number) if id_number else None,
    }


_PRACTITIONER_COLUMNS = ("display_code", "category", "name", "id_digest", "id_masked")


async def upsert_practitioners(
    conn: AsyncConnection, rows: list[dict[str, Any]]
) -> list[LedgerEntry]:
    """Insert or update practitioner rows (:func:`practitioner_row`, with ``attributes`` when
    given: merged into what is kept); their ledger events.

    One statement in the executemany form: compiled once and sent in batches, where a
    multi-row ``VALUES`` would be compiled afresh, one bind parameter per cell, for every chunk
    (half of a 100,000-line import's time went there)."""
    if rows:
        stmt = insert(practitioners)
        set_: dict[str, Any] = {c: stmt.excluded[c] for c in _PRACTITIONER_COLUMNS}
        if "attributes" in rows[0]:
            set_["attributes"] = practitioners.c.attributes.op("||")(stmt.excluded.attributes)
        await conn.execute(
            stmt.on_conflict_do_update(index_elements=[practitioners.c.token], set_=set_), rows
        )
    return [
        LedgerEntry(
            "practitioner_upserted",
            {k: r[k] for k in ("display_code", "category", "name", "id_masked")},
            practitioner=r["token"],
        )
        for r in rows
    ]


async def insert_dated(
    conn: AsyncConnection, table: Table, rows: list[dict[str, Any]], kind: str
) -> list[LedgerEntry]:
    """Insert registration or agreement rows (``practitioner_token``, ``institution_code``,
    [``department_code``,] ``start``, ``end``) in the executemany form (see
    :func:`upsert_practitioners`); their events, each naming the id its row was given."""
    evs: list[LedgerEntry] = []
    if rows:
        returning = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        ids = (await conn.execute(returning, rows)).scalars().all()
        for row, new_id in zip(rows, ids, strict=True):
            payload = {
                k: (v.isoformat() if hasattr(v, "isoformat") else v)
                for k, v in row.items()
                if k != "practitioner_token"
            }
            evs.append(
                LedgerEntry(
                    kind,
                    {"id": new_id, **payload},
                    practitioner=row["practitioner_token"],
                    institution=row["institution_code"],
                    department=row.get("department_code"),
                    occurred_on=row["start"],
                )
            )
    return evs
