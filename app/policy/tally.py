"""Whose points count together: the sites one profile's evaluation of a practitioner sees.

A practitioner working in several regions is judged at each site by that site's profile. Which
of their other sites' findings count toward that judgement is the profile's ``tally``:

- ``region`` (every city text here): the sites under the same profile only — 济宁 §六(二)
  shares records city-wide ("实现信息全市共享"), and the older city scales (10 points,
  100 points, agreement terms) cannot be added to anyone else's;
- ``national`` (医保发〔2024〕23号 and the provincial 实施细则 written under it): the sites
  under every national-tally profile — the framework keeps one record per person,
  "跨机构跨区域联动、全国共享可查", so points from a 北京 site and a 四川 site add up, and
  each region applies its own measures to the common total at its own sites.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.policy.profile import Profile


def sites_counted(profile_of_site: Mapping[str, Profile]) -> dict[str, frozenset[str]]:
    """For each profile id among the sites: the sites whose events its evaluation sees."""
    national = frozenset(s for s, p in profile_of_site.items() if p.tally == "national")
    out: dict[str, frozenset[str]] = {}
    for profile in {p.id: p for p in profile_of_site.values()}.values():
        if profile.tally == "national":
            out[profile.id] = national
        else:
            out[profile.id] = frozenset(s for s, p in profile_of_site.items() if p.id == profile.id)
    return out
