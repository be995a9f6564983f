"""``python -m loadtests.checkpath``: what a single check costs in process, layer by layer.

The application object is called directly (no HTTP server, no load generator), with the
runtime started against a seeded database and a built Redis, for single checks whose verdicts
the memo already holds (the hot path). Each layer is timed by calling it, and everything inside
it, with the same requests:

- ``raw``: the bare ASGI callable of ``loadtests.raw`` (the baseline every ratio is taken to);
- ``app``: the application as uvicorn calls it (``ClaimgateApp``);
- ``front``: our outermost middleware on (request id, metrics, log line, and all below);
- ``guard``: the edge guard on (headers, key, body, capacity, and all below);
- ``fastpath``: the check fast path on (the body's parse and hand validation, the use case);
- ``usecase``: ``CheckUseCase.answer_one`` alone (stamp, decision id, render, the decision log's
  row, the counters), and beside it the same line through the batch's stamping, as
  ``answer_one`` did before (``usecase-old``);

each the best of ``--repeat`` passes over ``--requests`` requests, in µs per request, so a
layer's own cost is its figure less the one below. The runtime's background tasks (the decision
log's flush, the metrics' fold) run between passes, not inside them. ``--decision-log false``
and ``--metrics false`` time the same with those off. Prints a table and the ratios to ``raw``;
no file is written (the figures go in docs/performance.md with the command). First, without
the stores, the pieces this round changed, old and new in the same process (``--micro``: only
those).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from loadtests import __main__ as harness
from loadtests.dataset import Dataset
from loadtests.seed import Target, prepare

Call = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtests.checkpath", description=__doc__)
    p.add_argument("--scale", type=int, default=100_000, help="a seeded bench database")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--requests", type=int, default=2000, help="requests per pass")
    p.add_argument("--repeat", type=int, default=15, help="passes per layer (best kept)")
    p.add_argument("--decision-log", default="true")
    p.add_argument("--metrics", default="true")
    p.add_argument("--micro", action="store_true", help="only the pieces, old ÷ new (no stores)")
    return p.parse_args(argv)


def _scope(app: Any, key: bytes, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": "/v1/checks",
        "raw_path": b"/v1/checks",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", b"Bearer " + key),
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
        ],
        "state": {},
        "app": app,
    }


async def _pass(call: Call, scopes: list[dict[str, Any]], bodies: list[bytes]) -> float:
    """µs per request over one pass."""
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    messages = [{"type": "http.request", "body": b, "more_body": False} for b in bodies]
    t0 = time.perf_counter()
    for scope, msg in zip(scopes, messages, strict=True):

        async def receive(msg: dict[str, Any] = msg) -> dict[str, Any]:
            return msg

        await call(scope, receive, send)
    dt = time.perf_counter() - t0
    bad = [s for s in statuses if s != 200]
    if bad:
        raise RuntimeError(f"{len(bad)} answers not 200 (first {bad[0]})")
    return dt / len(scopes) * 1e6


async def run(a: argparse.Namespace, t: Target, key: str) -> dict[str, float]:
    os.environ.update(t.env())
    os.environ["CLAIMGATE_DECISION_LOG"] = a.decision_log
    os.environ["CLAIMGATE_METRICS"] = a.metrics
    os.environ.setdefault("CLAIMGATE_DB_POOL_SIZE", "2")
    os.environ.setdefault("CLAIMGATE_DB_MAX_OVERFLOW", "2")
    from app.api.front import ClaimgateApp
    from app.api.limits import BODY, PRINCIPAL, EdgeGuard
    from app.api.main import create_app
    from app.checks.fastpath import CheckFastPath
    from app.checks.plain import plain_line
    from app.fields import today_shanghai_iso
    from loadtests.raw import create_app as raw_app

    app: Any = create_app()
    assert isinstance(app, ClaimgateApp)
    lines = Dataset(t.scale).check_lines(a.requests)
    # the known lines only: an unknown code's answer is remembered too, but keep it plain
    bodies = [orjson.dumps(ln) for ln in lines]
    kb = key.encode()
    async with app.router.lifespan_context(app):
        rt = app.state.runtime
        front: Any = app.front
        assert front is not None, "the check routes' front door is closed"
        layer: Any = front
        layers: dict[str, Any] = {}
        while layer is not None:
            if isinstance(layer, EdgeGuard):
                layers["guard"] = layer
            elif isinstance(layer, CheckFastPath):
                layers["fastpath"] = layer
            layer = getattr(layer, "app", None)
        principal = rt.keys.verify(key)
        usecase = rt.check_usecase
        today = today_shanghai_iso()
        parsed = [plain_line(orjson.loads(b), today) for b in bodies]
        assert all(p is not None for p in parsed)

        def scopes(extra: bool) -> list[dict[str, Any]]:
            out = []
            for b in bodies:
                s = _scope(app, kb, b)
                if extra:
                    s[BODY], s[PRINCIPAL] = b, principal
                out.append(s)
            return out

        async def uc(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await usecase.answer_one(principal, scope["line"])
            await send({"type": "http.response.start", "status": 200})

        async def uc_old(scope: dict[str, Any], receive: Any, send: Any) -> None:
            # answer_one as it was (7e90ee3): the one line through the batch's stamping
            verdict, source = await usecase.checks.check_one(scope["line"])
            usecase._stamped(principal, (scope["line"],), (verdict,), source)
            await send({"type": "http.response.start", "status": 200})

        def uc_scopes() -> list[dict[str, Any]]:
            return [{"line": p} for p in parsed]

        plan: list[tuple[str, Call, Callable[[], list[dict[str, Any]]]]] = [
            ("raw", raw_app(), lambda: scopes(False)),  # type: ignore[list-item]
            ("app", app, lambda: scopes(False)),
            ("front", front, lambda: scopes(False)),
            ("guard", layers["guard"], lambda: scopes(False)),
            ("fastpath", layers["fastpath"], lambda: scopes(True)),
            ("usecase", uc, uc_scopes),
            ("usecase-old", uc_old, uc_scopes),
        ]
        # warm: every line decided once, so each pass below is answered from the memo
        await _pass(app, scopes(False), bodies)
        memo = usecase.checks.memo
        hits = memo.hits
        best = {name: float("inf") for name, _, _ in plan}
        for _ in range(a.repeat):
            for name, call, make in plan:
                s = make()
                await asyncio.sleep(0.05)  # the flush and the fold run here, between passes
                best[name] = min(best[name], await _pass(call, s, bodies))
        # every check timed should have been remembered: say so if not (a mirror not built,
        # invalidations arriving)
        remembered = (memo.hits - hits) / (a.repeat * (len(plan) - 1) * len(bodies))
        best["remembered"] = remembered
        return best


class OldClock:
    """``checked_at`` as formatted before (app.checks.verdicts at 7e90ee3): a datetime per
    new millisecond."""

    def __init__(self) -> None:
        self._ms = -1
        self._iso = ""

    def now_iso(self) -> str:
        from datetime import UTC, datetime

        ms = time.time_ns() // 1_000_000
        if ms != self._ms:
            secs, frac = divmod(ms, 1000)
            moment = datetime.fromtimestamp(secs, UTC).replace(microsecond=frac * 1000)
            self._iso = moment.isoformat(timespec="milliseconds")
            self._ms = ms
        return self._iso


def _best(f: Callable[[], object], n: int = 20_000, repeat: int = 9) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e6


def micro() -> list[tuple[str, float, float]]:
    """The pieces this round changed, before and after, in this process: µs per call."""
    import os

    from app.checks import verdicts
    from app.observability.context import new_request_id

    out = []
    out.append(("request id", _best(lambda: os.urandom(16).hex().encode()), _best(new_request_id)))
    old, new = OldClock(), verdicts._Clock()

    def old_fresh() -> str:
        old._ms = -1  # a new millisecond at every call: the formatting itself
        return old.now_iso()

    def new_fresh() -> str:
        new._ms = -1
        return new.now_iso()

    out.append(("checked_at, a new millisecond", _best(old_fresh), _best(new_fresh)))
    return out


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    print("pieces, µs per call (best of 9 × 20,000), old → new:")
    for name, before, after in micro():
        print(f"  {name:<32} {before:6.3f} → {after:6.3f}  (new ÷ old {after / before:.2f})")
    if a.micro:
        return 0
    t = Target(a.scale, a.pg, harness.private_redis())
    logdir = harness.RESULTS / "logs"
    keys = prepare(t, logdir)
    harness.ensure_built(t, logdir)
    best = asyncio.run(run(a, t, keys["gateway"]))
    remembered = best.pop("remembered")
    raw = best["raw"]
    order = list(best)
    print(f"decision log {a.decision_log}, metrics {a.metrics}; best of {a.repeat} × {a.requests}")
    print(f"{'layer':<10} {'µs/check':>9} {'own µs':>7} {'÷ raw':>6}")
    old_uc = best.pop("usecase-old")
    order.remove("usecase-old")
    for i, name in enumerate(order):
        below = best[order[i + 1]] if name != "raw" and i + 1 < len(order) else 0.0
        own = best[name] - below if name != "raw" else best[name]
        print(f"{name:<10} {best[name]:9.2f} {own:7.2f} {best[name] / raw:6.2f}")
    print(f"raw ÷ app (the in-process ceiling of `full ÷ raw`): {raw / best['app']:.3f}")
    print(
        f"usecase, one line: {best['usecase']:.2f} µs; the same line through a batch's "
        f"stamping, as before: {old_uc:.2f} µs (new ÷ old {best['usecase'] / old_uc:.2f})"
    )
    print(f"checks answered from remembered verdicts: {remembered:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
