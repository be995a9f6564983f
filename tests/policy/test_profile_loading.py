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
    "sichuan-2025": "510100",
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
        if profile.readmission.rule:
            cited.append(profile.readmission.rule)
        if profile.bonus is not None:
            cited.append(profile.bonus.rule)
        # the combination rule (济宁 §四, or the reading where a text is silent) and every
        # catalogue item, line by line
        cited.append(profile.combination.rule)
        if profile.combination.one_shot_rule:
            cited.append(profile.combination.one_shot_rule)
        cited += [item.rule for item in profile.catalogue]
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


_HEAD = (
    'name = "x"\nsource = "x"\nemergency_exempt = true\nagreement_required = false\n'
    "id_number_as_service_code = false\n"
)


def _write(directory: Path, pid: str, extra: str, region: str) -> None:
    (directory / f"{pid}.toml").write_text(
        f'id = "{pid}"\nregions = ["{region}"]\n{_HEAD}{extra}', encoding="utf-8"
    )


def test_a_version_chain_links_and_judges_by_date(tmp_path: Path) -> None:
    _write(tmp_path, "old-1", "", "110100")
    _write(tmp_path, "new-2", 'predecessor = "old-1"\nin_force_from = 2025-03-26\n', "120100")
    profiles = load_profiles(tmp_path)
    new = profiles["new-2"]
    assert new.previous is profiles["old-1"]
    assert [v.id for v in new.versions()] == ["new-2", "old-1"]


@pytest.mark.parametrize(
    ("extra_new", "extra_old", "message"),
    [
        ('predecessor = "nope-1"\nin_force_from = 2025-03-26\n', "", "is not a profile"),
        ('predecessor = "old-1"\n', "", "go together"),
        ("in_force_from = 2025-03-26\n", "", "go together"),
        ('predecessor = "old-1"\nin_force_from = 2025-03-26T00:00:00\n', "", "expected"),
        (
            'predecessor = "old-1"\nin_force_from = 2025-03-26\n',
            "[scoring]\ninitial_points = 10\n",
            "initial_points differs",
        ),
        (
            'predecessor = "old-1"\nin_force_from = 2025-03-26\n',
            'predecessor = "new-2"\nin_force_from = 2024-01-01\n',
            "cycle",
        ),
    ],
)
def test_a_broken_version_chain_is_refused(
    tmp_path: Path, extra_new: str, extra_old: str, message: str
) -> None:
    _write(tmp_path, "old-1", extra_old, "110100")
    _write(tmp_path, "new-2", extra_new, "120100")
    with pytest.raises(ProfileError, match=message):
        load_profiles(tmp_path)
