"""Processes the harness starts: servers on free loopback ports, and the CPU they spend.

Every server runs under the same uvicorn settings as ``claimgate serve`` (uvloop, httptools with
read deadlines, no access log); ``bare`` and ``naive`` go through :mod:`loadtests.serve`, which
mirrors them.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# No type stubs ship for psutil in this environment; its use here is small and checked by hand.
psutil: Any = importlib.import_module("psutil")

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = "127.0.0.1"


_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on, never one handed out before in this run: the kernel may give
    the same free port twice to servers started one after the other, before the first binds it
    (then the second's uvicorn fails to bind, and the scenario measured the first server)."""
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port: int = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def tree(self) -> list[Any]:
        try:
            p = psutil.Process(self.proc.pid)
            return [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


def start(
    name: str, argv: list[str], env: dict[str, str], port: int, logdir: Path, cwd: Path = ROOT
) -> Server:
    """Start a server process; ``cwd`` is the tree whose ``app`` it runs (``python -m`` puts
    the working directory first on the import path: loadtests.ab runs an older build so)."""
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{name}-{port}.log"
    fh = log.open("wb")
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=fh,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as a whole, and only it
    )
    fh.close()
    return Server(name, proc, port, log)


def wait_ready(server: Server, path: str, timeout_s: float = 120.0) -> None:
    """Poll ``path`` until it answers 200; raise with the log tail if the server died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited ({server.proc.returncode}):\n{tail(server.log)}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + path, timeout=2.0).status_code == 200:
                return
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.name} not ready after {timeout_s}s:\n{tail(server.log)}")


def tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def cpu_by_pid(procs: list[Any]) -> dict[int, float]:
    out: dict[int, float] = {}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
    return out


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two samples by the processes alive at the second (a process
    born in between counts whole; one that exited in between is lost, never negative)."""
    return sum(max(0.0, v - before.get(pid, 0.0)) for pid, v in after.items())


def store_procs(redis_pid: int | None) -> list[Any]:
    """The PostgreSQL server processes and the Redis server: the stores' CPU is theirs."""
    out: list[Any] = []
    for p in psutil.process_iter(["name", "pid"]):
        name = p.info["name"] or ""
        if name.startswith("postgres") or p.info["pid"] == redis_pid:
            out.append(p)
    return out


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()
