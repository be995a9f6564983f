"""A region's rule set as plain data: :class:`Profile` and the rule records it is made of.

Profiles are written as TOML files in ``profiles/`` and read by :mod:`app.policy.loader`; the
engine only ever sees these dataclasses. Every rule carries ``rule``, the citation of the
article it comes from, which is what a clerk and an auditor see next to a decision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

ThresholdAction: TypeAlias = Literal["warning", "suspend", "terminate"]
RestoreMode: TypeAlias = Literal["automatic", "exam", "application"]
PeriodKind: TypeAlias = Literal["natural_year", "agreement"]
ReadmissionRecord: TypeAlias = Literal["agreement", "registration"]
Tally: TypeAlias = Literal["region", "national"]
Combine: TypeAlias = Literal["highest", "each"]
OneShotBy: TypeAlias = Literal["points", "item"]

DEFAULT_LABELS: Mapping[str, str] = {
    "suspended": "医保支付资格暂停",
    "terminated": "医保支付资格终止",
    "code_locked": "医保医师编码已封锁",
    "code_cancelled": "医保医师编码已注销",
    "department_suspended": "科室医保结算暂停",
    "institution_suspended": "定点医药机构医保服务协议中止",
    "institution_terminated": "定点医药机构医保服务协议解除",
}


@dataclass(frozen=True, slots=True)
class Threshold:
    """Points deducted in a period at or above ``min_points`` trigger ``action`` once."""

    min_points: int
    action: ThresholdAction
    rule: str
    label: str = ""
    months: int = 0  # suspend: length in months
    until_period_end: bool = False  # suspend: until the score resets instead of ``months``
    ban_years: int = 0  # terminate: re-application banned for this long
    single_ban_years: int | None = None  # terminate: ban when one violation alone reached it
    notices: tuple[str, ...] = ("warning",)  # warning: the notice kinds it raises


@dataclass(frozen=True, slots=True)
class RepeatRule:
    """The ``count``-th suspension (or termination) ends in termination with a longer ban."""

    count: int
    ban_years: int
    rule: str


@dataclass(frozen=True, slots=True)
class ConsecutiveRule:
    """``periods`` consecutive periods each with at least ``min_points`` → termination."""

    periods: int
    min_points: int
    ban_years: int
    rule: str


@dataclass(frozen=True, slots=True)
class ExamRule:
    """Restoration only after a passed exam; failing extends, failing again terminates."""

    rule: str
    fail_extension_months: int = 0  # 0: a failed exam just leaves the suspension running
    fail_again_ban_years: int | None = None  # None: no termination on a second failure
    fail_again_rule: str = ""


@dataclass(frozen=True, slots=True)
class FailedExamRule:
    """A failed periodic exam outside any suspension terminates the agreement."""

    ban_years: int
    rule: str


@dataclass(frozen=True, slots=True)
class NoticeRule:
    """Sanctions take effect only after ``working_days`` working days' written notice."""

    working_days: int
    rule: str


@dataclass(frozen=True, slots=True)
class ManualBan:
    """Re-application ban that follows an officer's hand-made ``action``."""

    action: str
    years: int
    rule: str


@dataclass(frozen=True, slots=True)
class UnbindingRule:
    """Leaving an institution locks the practitioner's code there (within N working days)."""

    working_days: int
    rule: str


@dataclass(frozen=True, slots=True)
class DepartmentRule:
    """``min_practitioners`` of one department warned/suspended in a period → suspension."""

    min_practitioners: int
    months: int
    emergency_exempt: bool
    rule: str


@dataclass(frozen=True, slots=True)
class StaffShareRule:
    """Share of staff suspended/terminated in a period at or above ``percent`` → notice."""

    percent: int
    rule: str


@dataclass(frozen=True, slots=True)
class TerminatedDoctorsRule:
    """Share of doctors terminated within ``window_months`` → institution terminated/notice."""

    terminate_percent: int
    notice_percent: int
    small_institutions: tuple[tuple[int, int], ...]  # (fewer than N doctors, count that is enough)
    window_months: int
    terminate_rule: str
    notice_rule: str
    category: str = "doctor"


@dataclass(frozen=True, slots=True)
class KeyMonitoringRule:
    """A violation of ``single_points`` or ``violations`` findings in a period → 重点监控名单."""

    single_points: int
    violations: int
    rule: str


@dataclass(frozen=True, slots=True)
class Readmission:
    """What ends a termination once its ban is over, institution by institution.

    A new ``record`` (an agreement, or a registration = 再次登记备案) at an institution dated on
    or after the ban's end ends the termination there; one dated before does not. With ``exam``
    a passed exam on or after the ban's end is needed as well (兰州 §十八 统一培训并考核合格).
    """

    record: ReadmissionRecord = "agreement"
    exam: bool = False
    rule: str = ""


@dataclass(frozen=True, slots=True)
class CatalogueItem:
    """One act of a text's point table (扣分标准): its id, the article that lists it, the act as
    the text words it, and its points — fixed (``min_points == max_points``) or a range the
    officer chooses in (兰州 §十四 1-3分, the national bands).

    ``one_shot``: the text ties consequences to this act itself, not to its number (济宁 §六(三)
    "严重违规（一次性扣12分的）" names the §四(四) acts); it counts only in a profile whose
    combination says ``one_shot = "item"``.
    """

    id: str
    rule: str
    act: str
    min_points: int
    max_points: int
    one_shot: bool = False

    @property
    def fixed(self) -> bool:
        return self.min_points == self.max_points

    def allows(self, points: int) -> bool:
        return self.min_points <= points <= self.max_points

    @property
    def points_text(self) -> str:
        """The points as the text gives them: "6" or "1-3"."""
        if self.fixed:
            return str(self.min_points)
        return f"{self.min_points}-{self.max_points}"


@dataclass(frozen=True, slots=True)
class Combination:
    """How findings recorded together count (济宁 §四: "同一次检查发现不同违规行为的，分别扣分；
    同一违规行为涉及不同扣分情形的，按最高分值扣分").

    - ``same_act``: several items recorded for one act (违规行为) count once at the highest
      (``highest``) or each (``each``);
    - ``same_inspection``: different acts found in one inspection count each (``each``) or only
      the highest act (``highest``);
    - ``one_shot``: what makes a finding "one-shot" for the rules that single it out (a longer
      ban when one finding alone reached the termination, 重点监控名单): its act's points
      (``points``: 医保发〔2024〕23号 "一次性记满12分") or its item (``item``: 济宁 §六(三)).
      A finding without a catalogue item (recorded before catalogues, or an officer's free
      points) is always judged by its points.
    """

    same_act: Combine = "highest"
    same_inspection: Combine = "each"
    rule: str = ""
    one_shot: OneShotBy = "points"
    one_shot_rule: str = ""


@dataclass(frozen=True, slots=True)
class BonusRule:
    """Bonus points earned during a suspension let an officer shorten it (威海 §二(三) 酌情)."""

    rule: str


@dataclass(frozen=True, slots=True)
class Profile:
    """Everything the engine and the check layer need to know about one rule set."""

    id: str
    name: str
    source: str
    regions: tuple[str, ...]
    emergency_exempt: bool
    agreement_required: bool
    id_number_as_service_code: bool
    period: PeriodKind = "natural_year"
    period_months: int = 12  # agreement periods only
    initial_points: int = 12
    thresholds: tuple[Threshold, ...] = ()
    notice: NoticeRule | None = None
    restore: RestoreMode = "automatic"
    restore_rule: str = ""
    exam: ExamRule | None = None
    escalation_counts_as_repeat: bool = False
    repeat_suspension: RepeatRule | None = None
    repeat_termination: RepeatRule | None = None
    consecutive: ConsecutiveRule | None = None
    failed_exam: FailedExamRule | None = None
    manual_restore: bool = True
    manual_bans: tuple[ManualBan, ...] = ()
    unbinding: UnbindingRule | None = None
    department: DepartmentRule | None = None
    staff_share: StaffShareRule | None = None
    terminated_doctors: TerminatedDoctorsRule | None = None
    key_monitoring: KeyMonitoringRule | None = None
    institution_follow_rule: str = ""  # practitioners' agreements follow the institution's
    institution_emergency_exempt: bool = False
    department_emergency_exempt: bool = False
    billing_while_sanctioned_is_violation: bool = False
    readmission: Readmission = Readmission()
    bonus: BonusRule | None = None
    # profiles with tally "national" add up one practitioner's points across all their regions
    tally: Tally = "region"
    # Versions: this profile is in force from ``in_force_from``; before it, ``previous`` (the
    # version it replaced in these regions) judges. None: in force for as far back as it goes.
    in_force_from: dt.date | None = None
    previous: Profile | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_LABELS))
    # the text's itemised point table (扣分标准), in the text's order; empty: the text has none
    catalogue: tuple[CatalogueItem, ...] = ()
    combination: Combination = Combination()

    def item(self, item_id: str) -> CatalogueItem | None:
        """This version's catalogue item ``item_id``, if it lists one."""
        return next((i for i in self.catalogue if i.id == item_id), None)

    def catalogue_item(self, catalogue: str, item_id: str) -> CatalogueItem | None:
        """The item ``item_id`` of the version ``catalogue`` of this rule set, if it is one."""
        for version in self.versions():
            if version.id == catalogue:
                return version.item(item_id)
        return None

    def label(self, key: str) -> str:
        return self.labels.get(key) or DEFAULT_LABELS[key]

    def at(self, day: dt.date) -> Profile:
        """The version in force on ``day``: a violation is judged by the rules of its date.

        The earliest version known also stands for any day before it.
        """
        version = self
        while (
            version.previous is not None
            and version.in_force_from is not None
            and day < version.in_force_from
        ):
            version = version.previous
        return version

    def versions(self) -> tuple[Profile, ...]:
        """This version and the ones before it, newest first."""
        chain: list[Profile] = []
        version: Profile | None = self
        while version is not None:
            chain.append(version)
            version = version.previous
        return tuple(chain)
