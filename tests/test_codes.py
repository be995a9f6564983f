"""Codes as they arrive: normalisation, national formats, the GB 11643 check digit, masking."""

from __future__ import annotations

import pytest

from app import codes
from app.checks.verdicts import decision_id


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (" h37080200001 ", "H37080200001"),
        ("Ｈ３７０８０２０００１", "H3708020001"),  # full-width digits and letters
        ("d370802\t000001", "D370802000001"),
        ("nk", "NK"),
        ("A01", "A01"),
    ],
)
def test_normalize(raw: str, clean: str) -> None:
    assert codes.normalize(raw) == clean


@pytest.mark.parametrize(
    ("code", "valid"),
    [
        ("11010519491231002X", True),  # the standard's own example
        ("371002198001010010", True),
        ("371002198001010011", False),  # wrong check digit
        ("37100219800101001", False),  # too short
        ("3710021980010100X1", False),
    ],
)
def test_resident_id_check_digit(code: str, valid: bool) -> None:
    assert codes.is_resident_id(code) is valid


def test_national_practitioner_codes_and_categories() -> None:
    assert codes.is_national_practitioner("D370802000001")
    assert codes.is_national_practitioner("HY370802000001")
    assert not codes.is_national_practitioner("D37080200001")  # 11 digits
    assert not codes.is_national_practitioner("X370802000001")
    assert codes.category_of_national_code("HJ370802000001") == "technician"
    assert codes.category_of_national_code("N370802000001") == "nurse"


def test_id_numbers_become_tokens_and_masks_never_the_number() -> None:
    rid = "371002198001010010"
    token = codes.practitioner_token(rid, "secret")
    assert token.startswith("ID:")
    assert rid not in token
    assert token == codes.practitioner_token(rid, "secret")
    assert token != codes.practitioner_token(rid, "other secret")
    assert codes.display_code(rid) == "3710**********0010"
    assert codes.practitioner_token("D370802000001", "secret") == "D370802000001"


def test_decision_ids_are_unique_and_uuid_shaped() -> None:
    ids = [decision_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
