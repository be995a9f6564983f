"""Profiles: every shipped file loads, carries its flags, and a region picks one."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.policy import ProfileError, UnknownRegion, load_profiles, profile_for_region
from app.policy.loader import read_profile

# issue 4's region codes, plus the two chosen in the profiles (see their comments)
REGIONS = {
    "weihai-2018": "371000",
    "jining-2024": "370800",
    "zhengzhou": "410100",
    "shenyang-2011": "210100",
    "lanzhou-2014": "620100",
    "zhoushan-2022": "330900",
    "national-2024": "110100",
    "template-100": "990100",
}


def test_shipped_profiles_load_and_cite_every_threshold() -> None:
    profiles = load_profiles()
    assert set(REGIONS) == set(profiles)
    for profile in profiles.values():
        assert profile.regions, profile.id
        for threshold in profile.thresholds:
            assert threshold.rule.startswith(profile.id + " §"), threshold.rule


@pytest.mark.parametrize(("profile_id", "region"), sorted(REGIONS.items()))
def test_region_selects_profile_exactly_and_by_city(profile_id: str, region: str) -> None:
    assert profile_for_region(region).id == profile_id
    county = region[:4] + "02"
    assert profile_for_region(county).id == profile_id


def test_every_rule_of_a_profile_cites_its_article() -> None:
    for profile in load_profiles().values():
        cited: list[str] = [t.rule for t in profile.thresholds]
        for record in (
            profile.repeat_suspension,
            profile.repeat_termination,
            profile.consecutive,
            profile.failed_exam,
            profile.exam,
            profile.notice,
            profile.unbinding,
            profile.department,
            profile.staff_share,
            profile.key_monitoring,
        ):
            if record is not None:
                cited.append(record.rule)
        if profile.terminated_doctors is not None:
            cited += [
                profile.terminated_doctors.terminate_rule,
                profile.terminated_doctors.notice_rule,
            ]
        cited += [ban.rule for ban in profile.manual_bans]
        if profile.restore_rule:
            cited.append(profile.restore_rule)
        for rule in cited:
            assert rule.startswith(profile.id + " §"), rule


def test_flags() -> None:
    weihai = profile_for_region("371000")
    assert weihai.id_number_as_service_code
    assert not weihai.emergency_exempt
    assert not weihai.agreement_required
    jining = profile_for_region("370800")
    assert jining.emergency_exempt
    assert jining.agreement_required
    assert not jining.id_number_as_service_code
    assert profile_for_region("330900").emergency_exempt  # 舟山 §十五 急救除外
    assert profile_for_region("620100").agreement_required  # 兰州 §六(三) 定岗医师服务协议
    assert profile_for_region("110100").billing_while_sanctioned_is_violation


@pytest.mark.parametrize("region", ["999998", "37080", "abcdef", ""])
def test_unknown_region_is_a_clear_error(region: str) -> None:
    with pytest.raises(UnknownRegion, match="no policy profile covers region"):
        profile_for_region(region)


def test_unknown_key_in_a_profile_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x-1.toml"
    path.write_text(
        'id = "x-1"\nname = "x"\nsource = "x"\nregions = ["110100"]\n'
        "emergency_exempt = true\nagreement_required = false\n"
        "id_number_as_service_code = false\nsurprise = 1\n",
        encoding="utf-8",
    )
    with pytest.raises(ProfileError, match="surprise"):
        read_profile(path)


def test_a_region_claimed_twice_is_refused(tmp_path: Path) -> None:
    for name in ("a-1", "b-1"):
        (tmp_path / f"{name}.toml").write_text(
            f'id = "{name}"\nname = "x"\nsource = "x"\nregions = ["110100"]\n'
            "emergency_exempt = true\nagreement_required = false\n"
            "id_number_as_service_code = false\n",
            encoding="utf-8",
        )
    with pytest.raises(ProfileError, match="claimed by both"):
        load_profiles(tmp_path)
