"""The catalogues: a profile's itemised point table (扣分标准) looked up, described, and used
to price a finding.

The texts do not let an officer choose a number of points: they list acts, each with its
points. So a finding is recorded by the id of its act in the catalogue of the profile version
in force on its date, and :func:`price` gives its points — the item's fixed points, or points
the officer gives within the item's range (兰州 §十四 1-3分, the national bands). Any other
number is an officer's documented exception (``exception_reason``), marked as such; a finding
without an item is one too, except where the text has no table (``template-100``).

:func:`item_by_category` is the lookup the spreadsheet import's violation preset uses to map a
违规类别 (an article, an id, a band, or the act's words) to an item.

Errors are :class:`CatalogueError` with the field, a stable code and a message that names the
item and its points but never echoes a submitted value.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from app.policy.profile import CatalogueItem, Profile

Basis: TypeAlias = Literal["catalogue", "exception", "free"]


class CatalogueError(ValueError):
    """A finding the catalogue does not price; ``field`` is the request field at fault."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Priced:
    """A finding's points and what they rest on.

    ``basis``: ``catalogue`` (the item's points), ``exception`` (an officer's documented
    exception: ``reason``), ``free`` (the region's text has no table). ``catalogue`` is the id of
    the profile version whose table priced it ("" without an item).
    """

    points: int
    basis: Basis
    catalogue: str = ""
    item: CatalogueItem | None = None
    reason: str = ""


def version_on(profile: Profile, day: dt.date | None) -> Profile:
    """The version whose catalogue prices a finding dated ``day`` (the newest for None)."""
    return profile if day is None else profile.at(day)


def price(
    profile: Profile,
    day: dt.date,
    *,
    item_id: str | None,
    points: int | None,
    exception_reason: str | None,
) -> Priced:
    """The points of a finding dated ``day`` under ``profile``, or :class:`CatalogueError`.

    - ``item_id`` alone: the item's fixed points; a range item needs ``points`` within it;
    - ``item_id`` and ``points`` the item gives: the catalogue's;
    - ``item_id`` and other ``points``: only with ``exception_reason`` (the act stays the item's:
      its consequences follow it);
    - ``points`` alone: only with ``exception_reason``, unless the text has no table.
    """
    version = version_on(profile, day)
    reason = exception_reason or ""
    if item_id is not None:
        item = version.item(item_id)
        if item is None:
            raise CatalogueError(
                "item_id",
                "ITEM_UNKNOWN",
                f"no item with this id in the catalogue of {version.id} in force on "
                f"{day.isoformat()} (GET /v1/admin/profiles/{version.id}/catalogue lists them)",
            )
        if points is None:
            if not item.fixed:
                raise CatalogueError(
                    "points",
                    "POINTS_OUT_OF_RANGE",
                    f"item {item.id} ({item.rule}) deducts {item.points_text} points: give the "
                    f"points within that range",
                )
            return Priced(item.min_points, "catalogue", version.id, item)
        if item.allows(points):
            if reason:
                raise CatalogueError(
                    "exception_reason",
                    "INVALID_FIELD",
                    f"item {item.id} gives these points; exception_reason is only for points "
                    f"the catalogue does not give",
                )
            return Priced(points, "catalogue", version.id, item)
        if not reason:
            raise CatalogueError(
                "points",
                "POINTS_OUT_OF_RANGE",
                f"item {item.id} ({item.rule}) deducts {item.points_text} points; other points "
                f"only as an officer's documented exception (exception_reason)",
            )
        return Priced(points, "exception", version.id, item, reason)
    if points is None:
        raise CatalogueError(
            "item_id", "ITEM_REQUIRED", "give item_id, or points with exception_reason"
        )
    if reason:
        return Priced(points, "exception", reason=reason)
    if version.catalogue:
        raise CatalogueError(
            "item_id",
            "ITEM_REQUIRED",
            f"the text of {version.id} lists its acts and their points: give item_id (GET "
            f"/v1/admin/profiles/{version.id}/catalogue), or points with exception_reason for "
            f"an officer's documented exception",
        )
    return Priced(points, "free")


def describe_item(item: CatalogueItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "article": item.rule,
        "act": item.act,
        "points": item.points_text,
        "min_points": item.min_points,
        "max_points": item.max_points,
        "one_shot": item.one_shot,
    }


def describe(profile: Profile, day: dt.date | None = None) -> dict[str, Any]:
    """The catalogue of the version in force on ``day`` (the newest for None), as plain data."""
    version = version_on(profile, day)
    c = version.combination
    return {
        "profile": profile.id,
        "version": version.id,
        "name": version.name,
        "source": version.source,
        "in_force_from": version.in_force_from.isoformat() if version.in_force_from else None,
        "initial_points": version.initial_points,
        "combination": {
            "same_act": c.same_act,
            "same_inspection": c.same_inspection,
            "rule": c.rule,
            "one_shot": c.one_shot,
            "one_shot_rule": c.one_shot_rule,
        },
        "items": [describe_item(i) for i in version.catalogue],
        "versions": [
            {"id": v.id, "in_force_from": v.in_force_from.isoformat() if v.in_force_from else None}
            for v in profile.versions()
        ],
    }


_DASHES = re.compile(r"[‐‑‒–—―－~～至]")
_ARTICLE_WORDS = re.compile(r"[§第条项款目]")
_TRAILING = ("的行为", "行为", "的")


def _norm(text: str) -> str:
    """Full-width forms folded (NFKC), whitespace and closing punctuation dropped."""
    out = unicodedata.normalize("NFKC", text)
    out = "".join(ch for ch in out if not ch.isspace()).rstrip("。.;；,，")
    return _DASHES.sub("-", out)


def _act_key(text: str) -> str:
    out = _norm(text).replace("“", "").replace("”", "").replace('"', "")
    for tail in _TRAILING:
        if out.endswith(tail):
            return out[: -len(tail)]
    return out


def _article_key(text: str) -> str:
    return _ARTICLE_WORDS.sub("", _norm(text))


def item_by_category(
    profile: Profile, text: str, day: dt.date | None = None
) -> CatalogueItem | None:
    """The one item a 违规类别 (or a 违规行为描述) names, in the catalogue in force on ``day``.

    Tried in order, the first that names exactly one item wins: its id ("4.4.4"), a band
    ("10-12分"), its article ("§四(四)4", "四（四）4", "第十五条第(一)项"), the act's words
    (full-width or half-width, with or without the closing 的), words contained in one act
    only (four characters at least). None when nothing, or more than one item, matches — the
    import then asks the officer.
    """
    items = version_on(profile, day).catalogue
    if not items or not text.strip():
        return None
    query = _norm(text)
    by_id = [i for i in items if i.id == query or i.id == query.removesuffix("分")]
    if len(by_id) == 1:
        return by_id[0]
    article = _article_key(text)
    by_article = [i for i in items if _article_key(_article_of(i)) == article]
    if len(by_article) == 1:
        return by_article[0]
    act = _act_key(text)
    exact = [i for i in items if _act_key(i.act) == act]
    if len(exact) == 1:
        return exact[0]
    if len(act) >= 4:
        inside = [i for i in items if act in _act_key(i.act)]
        if len(inside) == 1:
            return inside[0]
    return None


def _article_of(item: CatalogueItem) -> str:
    """The article part of an item's citation: "jining-2024 §四(四)4 每次扣12分" → "四(四)4"."""
    cited = item.rule.split("§", 1)[1] if "§" in item.rule else item.rule
    return cited.split(" ", 1)[0]
