"""Acts and inspections: what the point rules count when findings are recorded together.

济宁 §四 is the one seed text that says it: "同一次检查发现不同违规行为的，分别扣分；同一违规行为
涉及不同扣分情形的，按最高分值扣分". Its two halves are the profile's
:class:`~app.policy.profile.Combination`:

- one act (违规行为) recorded under several items (扣分情形) counts once, at the highest of
  their points (``same_act = "highest"``); its findings are one finding for every rule that
  counts findings (§六(三) "违规3项以上" counts acts, not the items they were recorded under);
- different acts found in one inspection (检查) count each (``same_inspection = "each"``).

What the other texts say on the same question is written next to each profile's
``[combination]``: their wording is per occurrence (威海 "每次计扣", 郑州/沈阳 "每例扣", 兰州
"一次扣计"), so different acts count each; none says what one act listed under two items costs,
and the reading there is 济宁's: never count one act twice.

An act is one practitioner's findings with the same ``act`` on the same day (the admin API
refuses an act id reused on another day or at another institution); keyed by day, a finding
added later to an act never reaches back before its own date. A finding recorded without an act
counts on its own, exactly as every finding did before catalogues, so a ledger written before
them replays unchanged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from app.policy.events import Violation
from app.policy.profile import CatalogueItem, Profile


@dataclass(frozen=True, slots=True)
class Finding:
    """What the point rules count: one act (or, where the text says so, one inspection).

    ``points``: what it costs under the combination rule of the version in force on ``date``;
    ``violations``: the standing findings it is made of (all of that day).
    """

    date: dt.date
    points: int
    violations: tuple[Violation, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(v.id for v in self.violations)

    def one_shot_item(self, profile: Profile) -> CatalogueItem | None:
        """The first of its catalogue items the text names a one-shot act, if any."""
        for v in self.violations:
            item = _item(profile, v)
            if item is not None and item.one_shot:
                return item
        return None

    def one_shot(self, profile: Profile, min_points: int) -> bool:
        """Whether this finding alone is "一次性" ``min_points`` for the rules that single it out.

        Judged as the version in force on its day says: by its item where the text ties the
        consequence to the act (济宁 §六(三)); by its points otherwise (医保发〔2024〕23号
        "一次性记满12分"). A finding with no catalogue item is judged by its points.
        """
        if profile.at(self.date).combination.one_shot == "item":
            for v in self.violations:
                item = _item(profile, v)
                if item is None and v.points >= min_points:
                    return True
                if item is not None and item.one_shot:
                    return True
            return False
        return self.points >= min_points


def _item(profile: Profile, v: Violation) -> CatalogueItem | None:
    if not v.item_id or not v.catalogue:
        return None
    return profile.catalogue_item(v.catalogue, v.item_id)


def findings(profile: Profile, violations: Iterable[Violation]) -> list[Finding]:
    """``violations`` (standing, of any practitioners) grouped into findings, by date.

    Acts are one practitioner's findings sharing an ``act`` on one day; their points combine by
    the ``same_act`` rule of the version in force that day. Where that version says
    ``same_inspection = "highest"``, the acts of one inspection on one day are merged the same
    way. The result depends only on the set of violations, never on their order.
    """
    ordered = sorted(violations, key=lambda v: (v.date, v.id))
    if not any(v.act or v.inspection for v in ordered):
        # each finding its own act, as every ledger before catalogues: the grouping would
        # change nothing, and recomputes run this for every practitioner a write touches
        return [Finding(v.date, v.points, (v,)) for v in ordered]
    acts: dict[tuple[str, dt.date, str], list[Violation]] = {}
    for v in ordered:
        key = (v.practitioner, v.date, f"act:{v.act}" if v.act else f"id:{v.id}")
        acts.setdefault(key, []).append(v)
    found = [_act(profile, vs) for vs in acts.values()]
    merged: dict[tuple[str, dt.date, str], list[Finding]] = {}
    out: list[Finding] = []
    for f in found:
        inspection = next((v.inspection for v in f.violations if v.inspection), "")
        rules = profile.at(f.date).combination
        if inspection and rules.same_inspection == "highest":
            merged.setdefault((f.violations[0].practitioner, f.date, inspection), []).append(f)
        else:
            out.append(f)
    for group in merged.values():
        out.append(_merge(group))
    return sorted(out, key=lambda f: (f.date, f.ids))


def _act(profile: Profile, vs: list[Violation]) -> Finding:
    day = vs[0].date
    highest = profile.at(day).combination.same_act == "highest"
    points = max(v.points for v in vs) if highest else sum(v.points for v in vs)
    return Finding(day, points, tuple(vs))


def _merge(group: list[Finding]) -> Finding:
    vs = tuple(sorted((v for f in group for v in f.violations), key=lambda v: v.id))
    return Finding(group[0].date, max(f.points for f in group), vs)
