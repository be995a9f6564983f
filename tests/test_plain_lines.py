"""The fast path's hand validation (app.checks.plain) against the route's model (CheckIn).

Whatever body a HIS sends, the fast path either hands it on (None) or reads it exactly as the
model would: the same codes, the same day, the same flags. A line it takes must never be one
the model refuses or reads differently.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.checks.endpoints import line_of
from app.checks.plain import plain_batch, plain_line
from app.checks.schemas import CheckIn

TODAY = date(2026, 11, 23)


def _perturbed(valid: list[str]) -> st.SearchStrategy[Any]:
    """Valid codes, the same codes as a HIS might garble them, and junk: near misses are where
    a hand validator and the model could part ways."""
    garble = st.sampled_from(
        [
            str.lower,
            lambda c: f" {c}",
            lambda c: f"{c}\n",
            lambda c: c[:2] + "\t" + c[2:],
            lambda c: c.translate({i: i + 0xFEE0 for i in range(0x21, 0x7F)}),  # full-width
            lambda c: c.translate({i: i + 0xFEE0 for i in range(0x30, 0x3A)}),  # digits only
            lambda c: c.translate({i: i + 0x0630 for i in range(0x30, 0x3A)}),  # Arabic-Indic
            lambda c: c[:-1],
            lambda c: c + "0",
        ]
    )
    base = st.sampled_from(valid)
    junk = st.one_of(
        st.text(alphabet="HPD0123456789AZaz-._ \tＨ１内", max_size=20), st.integers(), st.none()
    )
    return st.one_of(base, base, st.tuples(base, garble).map(lambda x: x[1](x[0])), junk)


institutions = _perturbed(["H37080200001", "P33090100001"])
departments = _perturbed(["A01", "NK-2", "N.K_2", "0", "A" * 32])
practitioners = _perturbed(
    ["D370802000001", "HY370802000001", "371002198001010010", "37100219800101001X", "0001"]
)
days = st.one_of(
    st.sampled_from(
        [
            "2026-11-22",
            "2026-02-30",
            "1999-12-31",
            "2000-01-01",
            "2099-12-31",
            "2100-01-01",
            "2026-11-21T20:00:00-08:00",
            "2026-11-22T10:00:00",
            "20261122",
            "2026-W47-1",
            "2026-11-22\n",
            "",
        ]
    ),
    st.dates().map(date.isoformat),
    st.integers(),
    st.none(),
)
lines = st.fixed_dictionaries(
    {
        "institution_code": institutions,
        "department_code": departments,
        "practitioner_code": practitioners,
    },
    optional={
        "service_date": days,
        "emergency": st.one_of(st.booleans(), st.sampled_from([0, 1, "true", None])),
        "claim_id": st.one_of(st.none(), st.text(max_size=70), st.integers()),
    },
)


def _reshaped(d: dict[str, Any], change: str) -> Any:
    if change == "drop":
        d.pop("department_code")
    elif change == "extra":
        d["emergncy"] = True
    elif change == "list":
        return [d]
    return d


fields = st.builds(_reshaped, lines, st.sampled_from(["keep"] * 8 + ["drop", "extra", "list"]))


def _model(d: Any) -> CheckIn | None:
    try:
        return CheckIn.model_validate(d)
    except ValidationError:
        return None


@settings(max_examples=3000, deadline=None)
@given(fields)
def test_a_line_the_fast_path_takes_is_read_exactly_as_the_model_reads_it(
    d: dict[str, Any],
) -> None:
    line = plain_line(d, TODAY.isoformat())
    if line is None:
        return
    model = _model(d)
    assert model is not None, f"the fast path took a line the model refuses: {d!r}"
    assert line == line_of(model, TODAY)


@pytest.mark.parametrize(
    "d",
    [
        {
            "institution_code": "H37080200001",
            "department_code": "A01",
            "practitioner_code": "D370802000001",
        },
        {
            "institution_code": "P33090100001",
            "department_code": "NK-2",
            "practitioner_code": "371002198001010010",
            "service_date": "2026-11-22",
            "emergency": True,
            "claim_id": "c-1",
        },
        {
            "institution_code": "H37080200001",
            "department_code": "A01",
            "practitioner_code": "0001",
            "service_date": None,
            "claim_id": None,
        },
    ],
)
def test_plain_lines_take_the_fast_path(d: dict[str, Any]) -> None:
    line = plain_line(d, TODAY.isoformat())
    model = _model(d)
    assert line is not None
    assert model is not None
    assert line == line_of(model, TODAY)


def test_a_batch_takes_the_fast_path_only_whole_and_within_the_limit() -> None:
    good = {
        "institution_code": "H37080200001",
        "department_code": "A01",
        "practitioner_code": "D370802000001",
    }
    today = TODAY.isoformat()
    assert plain_batch({"checks": [good, good]}, today, 2) is not None
    assert plain_batch({"checks": [good, good, good]}, today, 2) is None  # the route says 413
    assert plain_batch({"checks": [good, {**good, "department_code": "a01"}]}, today, 5) is None
    assert plain_batch({"checks": []}, today, 5) is None
    assert plain_batch({"checks": [good], "extra": 1}, today, 5) is None
    assert plain_batch([good], today, 5) is None
