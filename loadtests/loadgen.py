"""Driving load: ``wrk`` with a Lua script when available (installed with apt-get when missing
and permitted), otherwise :mod:`loadtests.pyload` in a second process. Both print one
``CGRESULT {json}`` line."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson

from loadtests import servers

LUA = Path(__file__).resolve().parent / "lua" / "bodies.lua"


def ensure_wrk(install: bool = True) -> str | None:
    """Path to wrk; tries ``apt-get install wrk`` (as root) when missing. None = not available."""
    found = shutil.which("wrk")
    if found or not install:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "wrk"]):
        try:
            subprocess.run(argv, env=env, capture_output=True, timeout=300, check=True)
        except (subprocess.SubprocessError, OSError):
            return None
    return shutil.which("wrk")


def run(
    wrk: str | None,
    url: str,
    bodies: Path,
    auth: str,
    duration_s: float,
    connections: int,
    threads: int = 1,
) -> dict[str, Any]:
    """One closed-loop load run; returns requests, duration and latency percentiles (µs)."""
    if wrk is not None:
        argv = [
            wrk,
            f"-t{threads}",
            f"-c{max(connections, threads)}",
            f"-d{max(1, round(duration_s))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            url,
        ]
    else:
        argv = [
            servers.PY,
            "-m",
            "loadtests.pyload",
            url,
            str(bodies),
            auth,
            str(duration_s),
            str(connections),
        ]
    env = {**os.environ, "CG_BODIES": str(bodies), "CG_AUTH": auth}
    p = subprocess.run(
        argv,
        cwd=servers.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=duration_s + 120,
        check=False,
    )
    for line in p.stdout.splitlines():
        if line.startswith("CGRESULT "):
            out: dict[str, Any] = orjson.loads(line[9:])
            return out
    raise RuntimeError(
        f"load generator failed ({p.returncode}): {p.stdout[-800:]}{p.stderr[-800:]}"
    )
