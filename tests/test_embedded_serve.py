"""The embedded default, end to end as a newcomer meets it: `claimgate serve --demo` with no
database or Redis configured starts its own servers under the data folder, loads the demo,
prints keys and a curl example that answers; stopping it stops its servers; starting it again
keeps the data. Also `claimgate keys create` against the same folder."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from app.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMGATE_")}
    env["CLAIMGATE_DATA_DIR"] = str(data)
    return env


def _serve(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--demo", "--port", str(port)],
            cwd=ROOT,
            env=_env(data),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("not ready within 90 s:\n" + log.read_text()[-3000:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(30)


def _servers_of(data: Path) -> list[int]:
    out = []
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(data.resolve()) in cmd and p.info["name"] in ("postgres", "redis-server"):
            out.append(p.info["pid"])
    return out


def test_serve_demo_on_the_embedded_default(tmp_path: Path) -> None:
    data, port, log = tmp_path / "data", free_port(), tmp_path / "serve.log"
    proc = _serve(data, port, log)
    try:
        _wait_ready(port, proc, log)
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
        assert _servers_of(data), "the embedded servers should be running under the data folder"
    finally:
        _stop(proc)
    time.sleep(1)
    assert _servers_of(data) == [], "stopping the service stops its embedded servers"

    # A key issued from the command line against the same folder, then a second start.
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "keys", "create", "--role", "gateway"],
        cwd=ROOT,
        env=_env(data),
        capture_output=True,
        check=True,
    )
    new_key = out.stdout.decode().strip().splitlines()[-1]
    assert new_key.startswith("cg_gateway_")
    proc = _serve(data, port, log := tmp_path / "serve2.log")
    try:
        _wait_ready(port, proc, log)
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
