"""The fast path's hand validation (app.checks.plain) against the route's model (CheckIn).

Whatever body a HIS sends, the fast path either hands it on (None) or reads it exactly as the
model would: the same codes, the same day, the same flags. A line it takes must never be one
the model refuses or reads differently — nor a body in which a key is given twice, which the
route refuses.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.api.bodies import duplicate_key
from app.checks.endpoints import line_of
from app.checks.plain import plain_batch, plain_line, unique_keys
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


institutions = _perturbed(["H37080200001", "P33090100001", "011134", "CDSDERMYY"])
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
        "claim_id": st.one_of(
            st.none(),
            st.text(max_size=70),
            st.integers(),
            st.sampled_from(
                ["a\x00b", "a\x1fb", "a\x7f", "a\x85b", "a\u2028", "\u2029b", "ok:1", "a\\b"]
            ),
        ),
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


# -- duplicate keys: the fast path's byte-level judgement against a parser that sees every pair

_KEYS = ["institution_code", "department_code", "practitioner_code", "service_date", "emergency"]


def _escaped(key: str, how: int) -> str:
    """The key as JSON may spell it: plain, or with some letters as \\u escapes."""
    if how == 0:
        return key
    return "".join(f"\\u{ord(c):04x}" if i % how == 0 else c for i, c in enumerate(key))


def _member(key: str, value: Any, how: int) -> str:
    raw = json.dumps(value, ensure_ascii=how != 3)
    if how and isinstance(value, str):
        raw = raw.replace(":", "\\u003a")  # a colon the bytes do not show
    return f'"{_escaped(key, how)}":{raw}'


_claims = st.one_of(
    st.none(),
    st.sampled_from(["c-1", "HIS:2026:11:22", "a\\b", 'a"b', "x:y\\z", "路径:1", ":::"]),
    st.text(alphabet=':\\"ab\u3000', max_size=8),
)


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[str, bool]:
    """A single check or a batch as raw JSON, sometimes with a key repeated (spelt plainly or
    with escapes, before or after its twin), with claim ids full of colons and backslashes."""

    def one() -> str:
        values: dict[str, Any] = {
            "institution_code": "H37080200001",
            "department_code": "A01",
            "practitioner_code": "D370802000001",
        }
        if draw(st.booleans()):
            values["service_date"] = "2026-11-22"
        if draw(st.booleans()):
            values["emergency"] = draw(st.booleans())
        claim = draw(_claims)
        if claim is not None:
            values["claim_id"] = claim
        members = [_member(k, v, draw(st.sampled_from([0, 0, 1, 3]))) for k, v in values.items()]
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
            key = draw(st.sampled_from([*values, *_KEYS]))
            twin = _member(
                key,
                draw(st.sampled_from([True, False, "A02", None])),
                draw(st.sampled_from([0, 1, 2])),
            )
            members.insert(draw(st.integers(0, len(members))), twin)
        sep = draw(st.sampled_from([",", ", ", ",\n "]))
        return "{" + sep.join(members) + "}"

    if draw(st.booleans()):
        body = one()
    else:
        items = [one() for _ in range(draw(st.integers(1, 4)))]
        body = '{"checks":[' + ",".join(items) + "]}"
        if draw(st.integers(0, 9)) == 0:
            body = '{"checks":[],' + body[1:]
    return body, duplicate_key(body) is not None


@settings(max_examples=3000, deadline=None)
@given(_bodies())
def test_the_fast_path_never_takes_a_body_with_a_key_given_twice(case: tuple[str, bool]) -> None:
    text, has_duplicate = case
    raw = text.encode()
    data = orjson.loads(raw)
    today = TODAY.isoformat()
    if "checks" in data:
        lines = plain_batch(data, today, 1000)
        keys = 1 + sum(map(len, data["checks"])) if lines is not None else 0
    else:
        line = plain_line(data, today)
        lines = None if line is None else [line]
        keys = len(data)
    if lines is None:
        return  # handed to the route, which reads every pair
    assert unique_keys(raw, keys, lines) is not has_duplicate, text


def test_duplicate_key_names_where_the_first_one_is() -> None:
    assert duplicate_key('{"a": 1, "b": {"c": 1, "\\u0063": 2}}') == ("b", "c")
    assert duplicate_key('{"a": [{"x": 1}, {"x": 1, "x": 2}], "a": 3}') in (("a",), ("a", 1, "x"))
    assert duplicate_key('{"a": 1, "b": [1, {"c": ":"}]}') is None
