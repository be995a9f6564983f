"""Micro-benchmark: what the duplicate-key judgement (app.checks.plain.unique_keys) adds to the
fast path's reading of a body, for a single check and a 1,000-line batch.

    .venv/bin/python -m loadtests.dupkeys            # prints a table; --number N to vary

Each row times the fast path's own work on the body — ``orjson.loads`` and the hand validation
(``plain_line`` / ``plain_batch``) — and, apart, ``unique_keys`` on what it parsed, on realistic
bodies: claim ids without a colon (the common case: one ``bytes.count``), with colons (the claim
ids' colons are counted too), with colons and a backslash (the same), and with a colon spelt
``\\u003a`` beside another (the exact re-parse with the stdlib's ``object_pairs_hook``). The
route's strict reading of a batch is shown for scale.
"""

from __future__ import annotations

import argparse
import json
import timeit
from collections.abc import Callable
from typing import Any

import orjson

from app.api.bodies import loads as strict_loads
from app.checks.plain import plain_batch, plain_line, unique_keys

TODAY = "2026-11-23"


def _line(i: int, claim: str) -> dict[str, Any]:
    return {
        "institution_code": f"H3708020{i % 1000:04d}",
        "department_code": f"A{i % 40:02d}",
        "practitioner_code": f"D37080200{i % 10000:04d}",
        "service_date": "2026-11-22",
        "emergency": i % 50 == 0,
        "claim_id": claim.format(i=i),
    }


CLAIMS = {
    "plain claim ids": "HIS-20261122-{i:06d}",
    "claim ids with colons": "HIS:20261122:{i:06d}",
    "claim ids with a colon and an escape": 'HIS:{i:06d}\\"x',
    # JSON's only escape of a colon: the bytes hide it, so the check re-parses exactly.
    "claim ids with a colon and an escaped colon": "ESC:{i:06d}:x",
}


def _escape_colons(body: bytes) -> bytes:
    return body.replace(b'"ESC:', b'"ESC\\u003a')


def _single(claim: str) -> bytes:
    return _escape_colons(orjson.dumps(_line(7, claim)))


def _batch(claim: str) -> bytes:
    return _escape_colons(orjson.dumps({"checks": [_line(i, claim) for i in range(1000)]}))


def _parse(body: bytes) -> Callable[[], object]:
    """The fast path's reading of the body without the check: parse and validate."""

    def run() -> object:
        d = orjson.loads(body)
        if "checks" in d:
            return plain_batch(d, TODAY, 1000)
        return plain_line(d, TODAY)

    return run


def _check(body: bytes) -> Callable[[], object]:
    """The check alone, as the fast path calls it on what it has already parsed."""
    d = orjson.loads(body)
    if "checks" in d:
        lines = plain_batch(d, TODAY, 1000)
        assert lines is not None

        def run() -> object:
            ok = unique_keys(body, 1 + sum(map(len, d["checks"])), lines)
            assert ok
            return ok

        return run
    line = plain_line(d, TODAY)
    assert line is not None

    def run_one() -> object:
        ok = unique_keys(body, len(d), (line,))
        assert ok
        return ok

    return run_one


def _best(fn: Callable[[], object], number: int, repeat: int = 15) -> float:
    """The fastest of ``repeat`` timings: the least disturbed by other work on the machine."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--number", type=int, default=20_000, help="runs per timing, single body")
    args = ap.parse_args()
    n1, nb = args.number, max(args.number // 1000, 20)
    print("| body | claim ids | parse + validate | the check | check ÷ parse + validate |")
    print("|---|---|---|---|---|")
    for kind, make, number in (("single", _single, n1), ("batch of 1,000", _batch, nb)):
        for label, claim in CLAIMS.items():
            body = make(claim)
            json.loads(body)  # valid JSON, no duplicate
            base = _best(_parse(body), number)
            check = _best(_check(body), number)
            print(
                f"| {kind} ({len(body):,} B) | {label} | {base * 1e6:,.2f} µs | "
                f"{check * 1e6:,.2f} µs | {check / base * 100:.1f} % |"
            )
    body = _batch(CLAIMS["plain claim ids"])
    stdlib = _best(lambda: json.loads(body), nb)
    strict = _best(lambda: strict_loads(body), nb)
    print(
        f"\nThe route's reading of the same batch: stdlib json.loads {stdlib * 1e3:.2f} ms, "
        f"strict (object_pairs_hook, UTF-8, no NaN) {strict * 1e3:.2f} ms "
        f"({(strict - stdlib) / stdlib * 100:+.0f} %)."
    )


if __name__ == "__main__":
    main()
