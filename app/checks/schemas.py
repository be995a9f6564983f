"""The check contract's bodies (docs/contract.md). Unknown fields are refused, not ignored: a
misspelt ``emergency`` must not silently change a decision; so is a field given twice
(app.api.bodies), where the last would win."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app.fields import AnyInstitutionCode, AnyPractitionerCode, LocalCode, ServiceDay, Text


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    institution_code: AnyInstitutionCode = Field(
        description="national code, or a local code registered as an institution alias"
    )
    department_code: LocalCode
    practitioner_code: AnyPractitionerCode
    service_date: ServiceDay | None = Field(
        None,
        description="date of service; default today in Asia/Shanghai; a datetime is reduced to its date there",
    )
    emergency: StrictBool = False
    claim_id: Text | None = Field(
        None, max_length=64, description="caller's reference, echoed back; no control characters"
    )


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checks: list[CheckIn] = Field(min_length=1)


class ReasonOut(BaseModel):
    code: str
    blocking: bool
    message: str
    exempted: bool | None = None
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    rule: str | None = None


class CheckOut(BaseModel):
    decision: Literal["allow", "deny"]
    reasons: list[ReasonOut]
    source: Literal["cache", "database"]
    checked_at: str
    decision_id: str
    service_date: str
    claim_id: str | None = None
    data_version: dict[str, Any]


class BatchOut(BaseModel):
    results: list[CheckOut]
    source: Literal["cache", "database"]
