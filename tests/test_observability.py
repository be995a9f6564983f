"""Operable in production (docs/observability.md), tested against real servers:

- a real `claimgate serve --workers 2` is scraped by a real Prometheus (Debian's `prometheus`),
  whose HTTP API returns the service's series — the lines counted exactly once across both
  workers — and every query of the Grafana dashboard returns data;
- the alert rules pass `promtool check rules` and their unit tests (`promtool test rules`);
- every line the service logged in a scenario with planted personal data (names, ID numbers,
  a phone number, in bodies, paths and a request id) is one JSON object with a request id,
  and none of that data is in any of them; a safe `X-Request-ID` is kept and returned;
- the decision log of both workers is written at the stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.embedded import free_port
from tests import factories as f
from tests.conftest import Harness, _plain
from tests.serving import ROOT, serve, wait_ready

RULES = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "claimgate.json"
RID = "371002198001010010"
NAME = "欧阳秀英"
PHONE = "13812345678"


def _need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"`{binary}` not installed: apt-get install prometheus (Debian package)")
    return path


def test_alert_rules_pass_promtool() -> None:
    promtool = _need("promtool")
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run(
            [promtool, *args], cwd=RULES, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout + done.stderr


@contextlib.contextmanager
def prometheus(target_port: int, folder: Path) -> Iterator[str]:
    binary = _need("prometheus")
    port = free_port()
    config = folder / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: claimgate\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
    )
    log = (folder / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


async def _query(client: httpx.AsyncClient, base: str, expr: str) -> list[dict[str, Any]]:
    r = await client.get(f"{base}/api/v1/query", params={"query": expr})
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


async def _until(what: str, seconds: float, probe: Any) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        got = await probe()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        await asyncio.sleep(0.25)


def _total(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


@pytest.mark.asyncio(loop_scope="session")
async def test_a_running_service_is_scraped_logs_json_without_pii_and_logs_its_decisions(
    h: Harness, tmp_path: Path
) -> None:
    _need("prometheus")
    await f.world(h)  # through the in-process app: the PII goes through the served one
    await h.synced()
    s = h.runtime.settings
    port, log = free_port(), tmp_path / "serve.log"
    proc = serve(
        tmp_path / "data",
        port,
        log,
        "--workers",
        "2",
        database_url=s.database_url or "",
        redis_url=s.redis_url or "",
        pii_secret=s.pii_secret,
        metrics_fold_interval_s="0.2",
        log_checks="true",
        run_sync_worker="false",  # the test's own app drains the outbox
    )
    try:
        await asyncio.to_thread(wait_ready, port, proc, log)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            served = Harness(client, h.runtime, h.keys)
            # Personal data where a careless service would log it: a path, bodies, a request id.
            await f.practitioner(served, RID, name=NAME)
            await f.registration(served, RID)
            refused = await client.put(
                f"/v1/admin/practitioners/{RID}",
                json={"name": NAME, "category": "doctor", "phone": PHONE},
                headers=h.auth("agency"),
            )
            assert refused.status_code == 422
            await h.synced()
            lines = 0
            for i in range(20):
                # New connections, so both workers answer some.
                async with httpx.AsyncClient(base_url=base, timeout=10) as one:
                    r = await one.post(
                        "/v1/checks",
                        json={
                            "institution_code": f.INST,
                            "department_code": f.DEPT,
                            "practitioner_code": RID if i % 2 else f.DOC,
                            "service_date": "2026-11-22",
                            "claim_id": f"{NAME}-{i}",
                        },
                        headers={**h.auth("his"), "X-Request-ID": RID if i == 3 else f"hisreq-{i}"},
                    )
                assert r.status_code == 200, r.text
                lines += 1
                if i == 3:
                    assert r.headers["x-request-id"] != RID
                else:
                    assert r.headers["x-request-id"] == f"hisreq-{i}"
            batch = {
                "checks": [
                    {
                        "institution_code": f.INST,
                        "department_code": f.DEPT,
                        "practitioner_code": RID,
                    }
                ]
                * 10
            }
            r = await client.post("/v1/checks/batch", json=batch, headers=h.auth("gateway"))
            assert r.status_code == 200
            lines += 10
            bad = await client.post(
                "/v1/checks", json={"institution_code": PHONE}, headers=h.auth("his")
            )
            assert bad.status_code == 422
            generated = bad.headers["x-request-id"]

            # Every scrape, whichever worker answers it, counts both workers' lines once.
            async def counted() -> bool:
                text = (await client.get("/metrics")).text
                return _total(text, "claimgate_lines_checked_total") == lines

            for _ in range(4):
                await _until("all lines counted", 15, counted)

            with prometheus(port, tmp_path) as prom:

                async def arrived() -> list[dict[str, Any]]:
                    try:
                        got = await _query(client, prom, "sum(claimgate_lines_checked_total)")
                    except httpx.TransportError:  # Prometheus still starting
                        return []
                    return got if got and float(got[0]["value"][1]) == lines else []

                await _until("Prometheus has the lines", 60, arrived)
                by = await _query(client, prom, "claimgate_lines_checked_total")
                assert {(m["metric"]["decision"], m["metric"]["source"]) for m in by} >= {
                    ("allow", "cache")
                }
                codes = await _query(client, prom, "claimgate_http_problems_total")
                assert {m["metric"]["code"] for m in codes} >= {"VALIDATION_FAILED"}
                assert await _query(client, prom, "claimgate_check_duration_seconds_count")
                writes = await _query(client, prom, "claimgate_admin_writes_total")
                assert {m["metric"]["status"] for m in writes} >= {"200", "201"}
                # rate() over the dashboard's windows needs two samples of each series.
                await asyncio.sleep(2.5)
                panels = json.loads(DASHBOARD.read_text())["panels"]
                empty = [
                    p["title"]
                    for p in panels
                    for t in p["targets"]
                    if not await _query(client, prom, t["expr"])
                ]
                assert empty == []
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)
    assert proc.returncode == 0, log.read_text()[-3000:]

    # The log: one JSON object per line, each request's with its id; no personal data at all.
    text = log.read_text()
    for forbidden in (RID, NAME, PHONE, "欧阳"):
        assert forbidden not in text
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "event"} <= r.keys() for r in records)
    requests = [r for r in records if r["event"] == "request"]
    assert len(requests) >= 20 + 5
    assert all(r.get("request_id") and r.get("route") and "duration_ms" in r for r in requests)
    checks = [r for r in requests if r["route"] == "/v1/checks" and r["status"] == 200]
    assert {r["request_id"] for r in checks} >= {f"hisreq-{i}" for i in range(20) if i != 3}
    assert all(r.get("decision_id") and r.get("key_id") for r in checks)
    assert any(r["request_id"] == generated and r["status"] == 422 for r in requests)
    routes = {r["route"] for r in requests}
    assert "/v1/admin/practitioners/{code}" in routes

    # Both workers' decision logs were written at the stop: every line answered is there.
    conn = await asyncpg.connect(_plain(s.database_url or ""))
    try:
        logged = await conn.fetchval("SELECT count(*) FROM decision_log")
    finally:
        await conn.close()
    assert logged == lines
