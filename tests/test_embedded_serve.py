"""The embedded default, end to end as a newcomer meets it: `claimgate serve --demo` with no
database or Redis configured starts its own servers under the data folder, loads the demo,
prints keys and a curl example that answers; stopping it stops its servers; starting it again
keeps the data. Also `claimgate keys create` against the same folder."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.embedded import free_port
from tests.serving import ROOT, cli_env, gone_within, serve, started_under, wait_ready


def _serve(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    return serve(data, port, log, "--demo")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(30)


def test_serve_demo_on_the_embedded_default(embedded_dir: Path) -> None:
    data, port, log = embedded_dir / "data", free_port(), embedded_dir / "serve.log"
    proc = _serve(data, port, log)
    try:
        wait_ready(port, proc, log)
        text = log.read_text()
        keys = dict(re.findall(r"^\s+(his|gateway|agency|ops)\s+key: (\S+)$", text, re.M))
        assert set(keys) == {"his", "gateway", "agency", "ops"}
        curl = next(
            line for line in text.splitlines() if "curl -s" in line and "/v1/checks" in line
        )
        body = re.search(r"-d '(\{.*\})'", curl)
        assert body is not None
        # Ready means serving; right after the demo load the answers may still come from
        # PostgreSQL until the outbox is drained, then from the cache.
        for _ in range(100):
            r = httpx.post(
                f"http://127.0.0.1:{port}/v1/checks",
                content=body.group(1),
                headers={
                    "Authorization": f"Bearer {keys['his']}",
                    "Content-Type": "application/json",
                },
            )
            assert r.status_code == 200
            assert r.json()["decision"] == "deny"
            if r.json()["source"] == "cache":
                break
            time.sleep(0.1)
        assert r.json()["source"] == "cache"
        assert started_under(data), "the embedded servers should be running under the data folder"
    finally:
        _stop(proc)
    assert gone_within(1, data) == [], "stopping the service stops its embedded servers"

    # A key issued from the command line against the same folder, then a second start.
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "keys", "create", "--role", "gateway"],
        cwd=ROOT,
        env=cli_env(data),
        capture_output=True,
        check=True,
    )
    new_key = out.stdout.decode().strip().splitlines()[-1]
    assert new_key.startswith("cg_gateway_")
    proc = _serve(data, port, log := embedded_dir / "serve2.log")
    try:
        wait_ready(port, proc, log)
        assert "already present (kept)" in log.read_text()
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/checks",
            json={
                "institution_code": "H37080200001",
                "department_code": "A07",
                "practitioner_code": "D370802100006",
                "service_date": "2026-11-22",
            },
            headers={"Authorization": f"Bearer {new_key}"},
        )
        assert r.status_code == 200
        assert r.json()["decision"] == "deny"
    finally:
        _stop(proc)
