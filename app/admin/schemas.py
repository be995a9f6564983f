"""Request bodies of the admin API. Codes are normalised and validated by app.fields; every
text field is :data:`~app.fields.Text` (no control characters), so no value reaches the
database that it would refuse."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.fields import (
    Day,
    InstitutionCode,
    LocalCode,
    MultilineText,
    NationalPractitionerCode,
    RegionCode,
    Text,
)

Category = Literal["doctor", "nurse", "pharmacist", "technician", "carer"]
Name = Field(min_length=1, max_length=200)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Dated(Strict):
    start: Day
    end: Day | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start (end is the first day no longer covered)")
        return self


class InstitutionIn(Strict):
    name: Text = Name
    region_code: RegionCode


class DepartmentIn(Strict):
    name: Text = Name


class PractitionerIn(Strict):
    name: Text = Name
    category: Category
    id_number: NationalPractitionerCode | None = Field(
        None, description="18-digit resident ID; stored only as a keyed hash and a masked form"
    )


class RegistrationIn(_Dated):
    practitioner_code: NationalPractitionerCode
    institution_code: InstitutionCode
    department_code: LocalCode


class RegistrationEnd(Strict):
    end: Day


class AgreementIn(_Dated):
    practitioner_code: NationalPractitionerCode
    institution_code: InstitutionCode


class _Action(_Dated):
    action: str
    reason: Text = Field(min_length=1, max_length=500)

    def event_payload(self, **where: Any) -> dict[str, Any]:
        """The action as its ledger event holds it (and its answer shows it): the action,
        where it applies (``where``), its dates as ISO strings, the reason."""
        return {
            "action": self.action,
            **where,
            "start": iso(self.start),
            "end": iso(self.end),
            "reason": self.reason,
        }


class PractitionerActionIn(_Action):
    action: Literal["suspend", "terminate", "lock_code", "cancel_code", "restore", "shorten"]
    institution_code: InstitutionCode | None = Field(
        None, description="the institution the action applies at; omitted = everywhere"
    )

    @model_validator(mode="after")
    def _shorten_names_the_new_end(self) -> Self:
        # shorten (威海 §二(三) 酌情缩减): start = the decision, end = the term's new end
        if self.action == "shorten" and self.end is None:
            raise ValueError("a shorten action needs end: the new end of the suspension's term")
        if self.action == "shorten" and self.institution_code is not None:
            raise ValueError("a shorten action applies to the practitioner everywhere")
        return self


class InstitutionActionIn(_Action):
    action: Literal["suspend", "terminate", "restore"]


class DepartmentActionIn(_Action):
    action: Literal["suspend", "restore"]


class AliasIn(Strict):
    target: Text = Field(min_length=1, max_length=40, description="the national code it stands for")


class InstitutionAliasIn(Strict):
    institution_code: InstitutionCode = Field(description="the national code it stands for")


class LocalCodeIn(Strict):
    local_code: LocalCode
    target: Text = Field(min_length=1, max_length=40, description="the national code it stands for")


class LocalCodesIn(Strict):
    """An institution's local codes in bulk (app.admin.local_codes): its own codes for itself,
    its departments' and its staff's."""

    institution: list[LocalCode] = Field(default_factory=list, max_length=100)
    departments: list[LocalCodeIn] = Field(default_factory=list, max_length=10_000)
    practitioners: list[LocalCodeIn] = Field(default_factory=list, max_length=50_000)

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not (self.institution or self.departments or self.practitioners):
            raise ValueError(
                "give at least one local code (institution, departments, practitioners)"
            )
        return self


# a catalogue item id: the article's numbers ("4.4.4" = 济宁 §四(四)4) or a band ("10-12")
ItemId = Annotated[str, Field(max_length=32, pattern=r"^[0-9A-Za-z][0-9A-Za-z.\-]*$")]
GroupId = Annotated[Text, Field(min_length=1, max_length=64)]


class ViolationIn(Strict):
    """A finding, recorded by its act in the catalogue of the institution's region (issue 19).

    ``item_id`` alone takes a fixed item's points; a range item (兰州 §十四 1-3分, the national
    bands) needs ``points`` within it. Other points — for an item, or without one — only as an
    officer's documented exception (``exception_reason``); a text without a table
    (template-100) takes ``points`` and ``item`` as they come.
    """

    practitioner_code: NationalPractitionerCode
    institution_code: InstitutionCode
    department_code: LocalCode | None = None
    date: Day
    item_id: ItemId | None = Field(
        None,
        description="the act's id in the catalogue of the institution's region "
        "(GET /v1/admin/institutions/{code}/catalogue)",
    )
    points: int | None = Field(
        None,
        ge=1,
        le=100,
        description="a range item's points; other points only with exception_reason; "
        "omitted for a fixed item",
    )
    item: Text = Field(
        "",
        max_length=200,
        description="the finding in the officer's words; required without item_id",
    )
    exception_reason: Text | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="an officer's documented exception: why these points are not the "
        "catalogue's (required for points the item does not give, or without an item)",
    )
    act_id: GroupId | None = Field(
        None,
        description="items of one act (违规行为) share it: they count once, at the highest "
        "(济宁 §四)",
    )
    inspection_id: GroupId | None = Field(
        None, description="the inspection (检查) that found it: its acts count each"
    )
    description: MultilineText = Field("", max_length=2000)

    @model_validator(mode="after")
    def _words_without_an_item(self) -> Self:
        if self.item_id is None and not self.item:
            raise ValueError("item (the finding in words) is required without item_id")
        return self


class AppealIn(Strict):
    outcome: Literal["upheld", "rejected"]
    date: Day


class ExamIn(Strict):
    practitioner_code: NationalPractitionerCode
    date: Day
    passed: bool


class BonusIn(Strict):
    practitioner_code: NationalPractitionerCode
    date: Day
    points: int = Field(ge=1, le=100, description="bonus points awarded (加分)")
    item: str = Field(min_length=1, max_length=200, description="the rule item, e.g. 第二(三)5项")


class CalendarDayIn(Strict):
    working: bool
    note: Text = Field("", max_length=200)


def iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()
