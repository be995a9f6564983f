"""Running `claimgate` as an operator does, in a child process, and finding what it started."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent


def cli_env(data: Path, **settings: str) -> dict[str, str]:
    """The environment without this test session's CLAIMGATE_ settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMGATE_")}
    env["CLAIMGATE_DATA_DIR"] = str(data)
    env.update({f"CLAIMGATE_{k.upper()}": v for k, v in settings.items()})
    return env


def start_cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def serve(
    data: Path, port: int, log: Path, *extra: str, **settings: str
) -> subprocess.Popen[bytes]:
    return start_cli(["serve", "--port", str(port), *extra], cli_env(data, **settings), log)


def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
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


def wait_for_line(text: str, proc: subprocess.Popen[bytes], log: Path, count: int = 1) -> None:
    deadline = time.monotonic() + 90
    while log.read_text().count(text) < count:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no {text!r} within 90 s:\n" + log.read_text()[-3000:]
        time.sleep(0.1)


def started_under(data: Path) -> list[str]:
    """Live processes whose command line or working directory is inside ``data``: the embedded
    PostgreSQL (postmaster and backends), redis-server, the watchdog. A zombie has ended; only
    its exit status waits to be collected, so it does not count."""
    root = str(data.resolve())
    found = []
    for p in psutil.process_iter(["pid", "name", "cmdline", "cwd", "status"]):
        if p.info["status"] == psutil.STATUS_ZOMBIE or p.info["pid"] == os.getpid():
            continue
        cmd = " ".join(p.info["cmdline"] or [])
        if root in cmd or (p.info["cwd"] or "").startswith(root):
            found.append(f"{p.info['pid']} {p.info['name']}: {cmd[:160]}")
    return found


def gone_within(seconds: float, data: Path) -> list[str]:
    """What is still running under ``data`` after up to ``seconds`` of waiting for it to go."""
    deadline = time.monotonic() + seconds
    while (left := started_under(data)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left
