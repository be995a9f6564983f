"""Reading profiles from their TOML files and choosing one by region code.

One file per rule set in ``profiles/<id>.toml``; a new city is a new file. The reader is
strict: an unknown key, a missing citation or a malformed region code is an error at load
time, not a silently ignored rule.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast, get_args

from app.policy.profile import (
    DEFAULT_LABELS,
    BonusRule,
    CatalogueItem,
    Combination,
    Combine,
    ConsecutiveRule,
    DepartmentRule,
    ExamRule,
    FailedExamRule,
    KeyMonitoringRule,
    ManualBan,
    NoticeRule,
    OneShotBy,
    PeriodKind,
    Profile,
    Readmission,
    ReadmissionRecord,
    RepeatRule,
    RestoreMode,
    StaffShareRule,
    Tally,
    TerminatedDoctorsRule,
    Threshold,
    ThresholdAction,
    UnbindingRule,
)

PROFILE_DIR = Path(__file__).parent / "profiles"
_REGION = re.compile(r"^[0-9]{6}\Z")
# catalogue item ids: the article's numbers ("4.4.4" = §四(四)4) or a band ("10-12"), ASCII so
# that any agency system can carry them
ITEM_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.\-]{0,31}\Z")


class ProfileError(ValueError):
    """A profile file is malformed."""


class UnknownRegion(ValueError):
    """No profile covers a region code."""

    def __init__(self, region_code: str, known: Mapping[str, Profile]) -> None:
        regions = sorted(r for p in known.values() for r in p.regions)
        super().__init__(
            f"no policy profile covers region {region_code!r} (a 6-digit administrative "
            f"division code; a profile matches it exactly or by its city code, the first four "
            f"digits + '00'); covered regions: {', '.join(regions) or 'none'}"
        )
        self.region_code = region_code
        self.covered = regions


class _Table:
    """A TOML table read key by key, refusing keys nobody asked for."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self._data = dict(data)
        self._where = where

    def _take(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        if key not in self._data:
            if default is _REQUIRED:
                raise ProfileError(f"{self._where}: missing key {key!r}")
            return default
        value = self._data.pop(key)
        # bool is an int in Python; an int key must not accept true/false; a date key must not
        # accept a date-time (a datetime is a date too)
        if (
            not isinstance(value, kind)
            or (kind is int and isinstance(value, bool))
            or (kind is dt.date and isinstance(value, dt.datetime))
        ):
            raise ProfileError(f"{self._where}.{key}: expected {kind}, got {value!r}")
        return value

    # ``default`` None means the key is required

    def text(self, key: str, default: str | None = None) -> str:
        return cast(str, self._take(key, str, _REQUIRED if default is None else default))

    def opt_text(self, key: str) -> str | None:
        return cast("str | None", self._take(key, str, None))

    def number(self, key: str, default: int | None = None) -> int:
        return cast(int, self._take(key, int, _REQUIRED if default is None else default))

    def opt_number(self, key: str) -> int | None:
        return cast("int | None", self._take(key, int, None))

    def flag(self, key: str, default: bool | None = None) -> bool:
        return cast(bool, self._take(key, bool, _REQUIRED if default is None else default))

    def opt_date(self, key: str) -> dt.date | None:
        return cast("dt.date | None", self._take(key, dt.date, None))

    def value(self, key: str, kind: type | tuple[type, ...]) -> Any:
        """A required value of any of ``kind`` (the caller checks its shape)."""
        return self._take(key, kind, _REQUIRED)

    def items(self, key: str) -> list[Any]:
        return cast(list[Any], self._take(key, list, []))

    def sub(self, key: str) -> _Table | None:
        value = self._take(key, dict, None)
        return None if value is None else _Table(value, f"{self._where}.{key}")

    def subs(self, key: str) -> list[_Table]:
        return [_Table(v, f"{self._where}.{key}[{i}]") for i, v in enumerate(self.items(key))]

    def done(self) -> None:
        if self._data:
            raise ProfileError(f"{self._where}: unknown keys {sorted(self._data)}")


_REQUIRED = object()


def _choice(value: str, allowed: Any, where: str) -> str:
    options = get_args(allowed)
    if value not in options:
        raise ProfileError(f"{where}: {value!r} is not one of {options}")
    return value


def _threshold(t: _Table, initial_points: int, where: str) -> Threshold:
    min_points = t.opt_number("min_points")
    remaining_below = t.opt_number("remaining_below")
    if (min_points is None) == (remaining_below is None):
        raise ProfileError(f"{where}: give exactly one of min_points, remaining_below")
    if remaining_below is not None:
        # a remaining score below R (whole points) means at least initial - R + 1 deducted
        min_points = initial_points - remaining_below + 1
    assert min_points is not None
    action = cast(ThresholdAction, _choice(t.text("action"), ThresholdAction, where))
    one = t.opt_text("notice")
    several = t.items("notices")
    if one is not None and several:
        raise ProfileError(f"{where}: give notice or notices, not both")
    if not all(isinstance(k, str) and k for k in several):
        raise ProfileError(f"{where}.notices: expected a list of notice kinds")
    notices = tuple(several) if several else (one or "warning",)
    threshold = Threshold(
        min_points=min_points,
        action=action,
        rule=t.text("rule"),
        label=t.text("label", ""),
        months=t.number("months", 0),
        until_period_end=t.flag("until_period_end", False),
        ban_years=t.number("ban_years", 0),
        single_ban_years=t.opt_number("single_ban_years"),
        notices=notices,
    )
    t.done()
    if action == "suspend" and not (threshold.months > 0 or threshold.until_period_end):
        raise ProfileError(f"{where}: a suspension needs months or until_period_end")
    return threshold


def _catalogue(
    items: list[_Table], profile_id: str, initial_points: int, where: str
) -> tuple[CatalogueItem, ...]:
    """The ``[[catalogue]]`` entries: each cites its article, ids are unique, and its points
    (``points = 6`` or ``points = [1, 3]``) lie within the scale."""
    out: list[CatalogueItem] = []
    seen: set[str] = set()
    for i, t in enumerate(items):
        here = f"{where}.catalogue[{i}]"
        item_id = t.text("id")
        if not ITEM_ID.match(item_id):
            raise ProfileError(f"{here}.id: {item_id!r} is not an item id (ASCII, 1-32 chars)")
        if item_id in seen:
            raise ProfileError(f"{here}.id: {item_id!r} is listed twice")
        seen.add(item_id)
        rule = t.text("rule")
        if not rule.startswith(f"{profile_id} §"):
            raise ProfileError(f"{here}.rule: must cite the article as '{profile_id} §…'")
        act = t.text("act")
        if not act:
            raise ProfileError(f"{here}.act: the act's text is required")
        raw = t.value("points", (int, list))
        if isinstance(raw, bool) or (
            isinstance(raw, list)
            and (
                len(raw) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in raw)
            )
        ):
            raise ProfileError(f"{here}.points: a number of points or a range [low, high]")
        low, high = (raw, raw) if isinstance(raw, int) else (raw[0], raw[1])
        if not 1 <= low <= high <= initial_points or (isinstance(raw, list) and low == high):
            raise ProfileError(
                f"{here}.points: must lie within 1-{initial_points} (a range low < high)"
            )
        out.append(
            CatalogueItem(
                id=item_id,
                rule=rule,
                act=act,
                min_points=low,
                max_points=high,
                one_shot=t.flag("one_shot", False),
            )
        )
        t.done()
    return tuple(out)


def _combination(t: _Table | None, where: str) -> Combination:
    if t is None:
        return Combination()
    combination = Combination(
        same_act=cast(Combine, _choice(t.text("same_act"), Combine, f"{where}.same_act")),
        same_inspection=cast(
            Combine, _choice(t.text("same_inspection"), Combine, f"{where}.same_inspection")
        ),
        rule=t.text("rule"),
        one_shot=cast(
            OneShotBy, _choice(t.text("one_shot", "points"), OneShotBy, f"{where}.one_shot")
        ),
        one_shot_rule=t.text("one_shot_rule", ""),
    )
    t.done()
    if combination.one_shot == "item" and not combination.one_shot_rule:
        raise ProfileError(f"{where}: one_shot = 'item' needs the one_shot_rule it comes from")
    return combination


def _read(data: Mapping[str, Any], where: str) -> tuple[Profile, str | None]:
    """The profile in ``data`` (not yet linked to its predecessor) and its predecessor's id."""
    top = _Table(data, where)
    scoring = top.sub("scoring") or _Table({}, f"{where}.scoring")
    period = cast(PeriodKind, _choice(scoring.text("period", "natural_year"), PeriodKind, where))
    period_months = scoring.number("period_months", 12)
    initial_points = scoring.number("initial_points", 12)
    scoring.done()
    if period == "agreement" and period_months <= 0:
        raise ProfileError(f"{where}.scoring: agreement periods need period_months > 0")

    thresholds = tuple(
        sorted(
            (
                _threshold(t, initial_points, f"{where}.thresholds[{i}]")
                for i, t in enumerate(top.subs("thresholds"))
            ),
            key=lambda th: th.min_points,
        )
    )
    restore_table = top.sub("restore") or _Table({}, f"{where}.restore")
    restore = cast(
        RestoreMode, _choice(restore_table.text("mode", "automatic"), RestoreMode, where)
    )
    restore_rule = restore_table.text("rule", "")
    restore_table.done()

    def rule_table(key: str, build: Any) -> Any:
        table = top.sub(key)
        if table is None:
            return None
        value = build(table)
        table.done()
        return value

    exam = rule_table(
        "exam",
        lambda t: ExamRule(
            rule=t.text("rule"),
            fail_extension_months=t.number("fail_extension_months", 0),
            fail_again_ban_years=t.opt_number("fail_again_ban_years"),
            fail_again_rule=t.text("fail_again_rule", ""),
        ),
    )
    if restore == "exam" and exam is None:
        raise ProfileError(f"{where}: restore mode 'exam' needs an [exam] table")

    labels = dict(DEFAULT_LABELS)
    label_table = top.sub("labels")
    if label_table is not None:
        for key in list(DEFAULT_LABELS):
            labels[key] = label_table.text(key, labels[key])
        label_table.done()

    regions = tuple(top.items("regions"))
    for region in regions:
        if not isinstance(region, str) or not _REGION.match(region):
            raise ProfileError(f"{where}.regions: {region!r} is not a 6-digit division code")

    profile = Profile(
        id=top.text("id"),
        name=top.text("name"),
        source=top.text("source"),
        regions=regions,
        emergency_exempt=top.flag("emergency_exempt"),
        agreement_required=top.flag("agreement_required"),
        id_number_as_service_code=top.flag("id_number_as_service_code"),
        period=period,
        period_months=period_months,
        initial_points=initial_points,
        thresholds=thresholds,
        notice=rule_table(
            "notice",
            lambda t: NoticeRule(working_days=t.number("working_days"), rule=t.text("rule")),
        ),
        restore=restore,
        restore_rule=restore_rule,
        exam=exam,
        escalation_counts_as_repeat=top.flag("escalation_counts_as_repeat", False),
        repeat_suspension=rule_table(
            "repeat_suspension",
            lambda t: RepeatRule(
                count=t.number("count"), ban_years=t.number("ban_years"), rule=t.text("rule")
            ),
        ),
        repeat_termination=rule_table(
            "repeat_termination",
            lambda t: RepeatRule(
                count=t.number("count"), ban_years=t.number("ban_years"), rule=t.text("rule")
            ),
        ),
        consecutive=rule_table(
            "consecutive",
            lambda t: ConsecutiveRule(
                periods=t.number("periods"),
                min_points=t.number("min_points"),
                ban_years=t.number("ban_years"),
                rule=t.text("rule"),
            ),
        ),
        failed_exam=rule_table(
            "failed_exam",
            lambda t: FailedExamRule(ban_years=t.number("ban_years"), rule=t.text("rule")),
        ),
        manual_restore=top.flag("manual_restore", True),
        manual_bans=tuple(_manual_ban(t) for t in top.subs("manual_bans")),
        unbinding=rule_table(
            "unbinding",
            lambda t: UnbindingRule(working_days=t.number("working_days"), rule=t.text("rule")),
        ),
        department=rule_table(
            "department",
            lambda t: DepartmentRule(
                min_practitioners=t.number("min_practitioners"),
                months=t.number("months"),
                emergency_exempt=t.flag("emergency_exempt"),
                rule=t.text("rule"),
            ),
        ),
        staff_share=rule_table(
            "staff_share",
            lambda t: StaffShareRule(percent=t.number("percent"), rule=t.text("rule")),
        ),
        terminated_doctors=rule_table(
            "terminated_doctors",
            lambda t: TerminatedDoctorsRule(
                terminate_percent=t.number("terminate_percent"),
                notice_percent=t.number("notice_percent"),
                small_institutions=tuple(
                    (int(a), int(b)) for a, b in t.items("small_institutions")
                ),
                window_months=t.number("window_months"),
                terminate_rule=t.text("terminate_rule"),
                notice_rule=t.text("notice_rule"),
                category=t.text("category", "doctor"),
            ),
        ),
        key_monitoring=rule_table(
            "key_monitoring",
            lambda t: KeyMonitoringRule(
                single_points=t.number("single_points"),
                violations=t.number("violations"),
                rule=t.text("rule"),
            ),
        ),
        institution_follow_rule=top.text("institution_follow_rule", ""),
        institution_emergency_exempt=top.flag("institution_emergency_exempt", False),
        department_emergency_exempt=top.flag("department_emergency_exempt", False),
        billing_while_sanctioned_is_violation=top.flag(
            "billing_while_sanctioned_is_violation", False
        ),
        readmission=rule_table(
            "readmission",
            lambda t: Readmission(
                record=cast(
                    ReadmissionRecord,
                    _choice(t.text("record"), ReadmissionRecord, f"{where}.readmission"),
                ),
                exam=t.flag("exam", False),
                rule=t.text("rule"),
            ),
        )
        or Readmission(),
        bonus=rule_table("bonus", lambda t: BonusRule(rule=t.text("rule"))),
        tally=cast(Tally, _choice(top.text("tally", "region"), Tally, where)),
        in_force_from=top.opt_date("in_force_from"),
        labels=MappingProxyType(labels),  # shared by every caller: read-only
    )
    catalogue = _catalogue(top.subs("catalogue"), profile.id, initial_points, where)
    combination = _combination(top.sub("combination"), f"{where}.combination")
    if any(i.one_shot for i in catalogue) and combination.one_shot != "item":
        raise ProfileError(f"{where}: one_shot items count only with combination.one_shot = 'item'")
    if combination.one_shot == "item" and not any(i.one_shot for i in catalogue):
        raise ProfileError(f"{where}: combination.one_shot = 'item' but no item is one_shot")
    profile = dataclasses.replace(profile, catalogue=catalogue, combination=combination)
    predecessor = top.opt_text("predecessor")
    top.done()
    if (predecessor is None) != (profile.in_force_from is None):
        raise ProfileError(f"{where}: in_force_from and predecessor go together")
    return profile, predecessor


def _manual_ban(t: _Table) -> ManualBan:
    ban = ManualBan(action=t.text("action"), years=t.number("years"), rule=t.text("rule"))
    t.done()
    return ban


def _read_file(path: Path) -> tuple[Profile, str | None]:
    with path.open("rb") as f:
        data = tomllib.load(f)
    profile, predecessor = _read(data, path.name)
    if profile.id != path.stem:
        raise ProfileError(f"{path.name}: id {profile.id!r} differs from the file name")
    return profile, predecessor


def read_profile(path: Path) -> Profile:
    """Read one profile file; its ``id`` must be the file's stem. A predecessor named in it is
    linked only by :func:`load_profiles`, which sees every file."""
    return _read_file(path)[0]


def load_profiles(directory: Path | None = None) -> dict[str, Profile]:
    """Every profile in ``directory`` (default: the shipped ``profiles/``), by id."""
    if directory is None:
        return dict(_shipped_profiles())
    return _load(directory)


@functools.cache
def _shipped_profiles() -> Mapping[str, Profile]:
    return _load(PROFILE_DIR)


def _load(directory: Path) -> dict[str, Profile]:
    read = dict(
        (p.id, (p, predecessor))
        for p, predecessor in map(_read_file, sorted(directory.glob("*.toml")))
    )
    profiles = _link(read)
    owner: dict[str, str] = {}
    for profile in profiles.values():
        for region in profile.regions:
            if region in owner:
                raise ProfileError(
                    f"region {region} is claimed by both {owner[region]} and {profile.id}"
                )
            owner[region] = profile.id
    return profiles


def _link(read: Mapping[str, tuple[Profile, str | None]]) -> dict[str, Profile]:
    """Each profile with its predecessor attached (a chain of versions, newest first).

    Versions of one rule set must count points the same way (period, initial points, tally),
    and each must come into force after the one it replaces.
    """
    linked: dict[str, Profile] = {}

    def link(pid: str, seen: tuple[str, ...]) -> Profile:
        if pid in linked:
            return linked[pid]
        profile, predecessor = read[pid]
        if predecessor is not None:
            if predecessor not in read:
                raise ProfileError(f"{pid}: predecessor {predecessor!r} is not a profile")
            if predecessor in seen:
                raise ProfileError(f"{pid}: predecessors form a cycle")
            before = link(predecessor, (*seen, pid))
            scale = ("period", "period_months", "initial_points", "tally")
            for name in scale:
                if getattr(before, name) != getattr(profile, name):
                    raise ProfileError(f"{pid}: {name} differs from its predecessor {before.id}")
            assert profile.in_force_from is not None
            if before.in_force_from is not None and before.in_force_from >= profile.in_force_from:
                raise ProfileError(f"{pid}: in force before its predecessor {before.id}")
            profile = dataclasses.replace(profile, previous=before)
        linked[pid] = profile
        return profile

    for pid in read:
        link(pid, ())
    return linked


def profile_for_region(region_code: str, profiles: Mapping[str, Profile] | None = None) -> Profile:
    """The profile whose regions hold ``region_code`` exactly, else its city code (xxxx00)."""
    known = _shipped_profiles() if profiles is None else profiles
    if not isinstance(region_code, str) or not _REGION.match(region_code):
        raise UnknownRegion(region_code, known)
    for candidate in (region_code, region_code[:4] + "00"):
        for profile in known.values():
            if candidate in profile.regions:
                return profile
    raise UnknownRegion(region_code, known)
