"""The writer process: admin writes and the sync worker in a process of their own.

On a writer thread (app.admin.writer_thread) a write no longer stalled the checks' event loop,
but it still shared their interpreter: under 20 writes a second the checks lost the writer's
share of the GIL, and each write waited for the GIL again at each of its round trips to
PostgreSQL (docs/performance.md, "Third round: the kept head counts measured, the staff share
made linear"). Here ``claimgate serve`` starts one child process that serves the same app on a
Unix socket in a private folder (0700), with writes on its own loop (``CLAIMGATE_WRITER_CHILD``)
and the sync worker beside them; the check workers forward the write side's requests to it
(app.api.forward).

- **One per server**: started by ``claimgate serve`` before uvicorn, so ``--workers 2`` share it.
- **Dies with its parent**: the child arms ``PR_SET_PDEATHSIG`` (SIGTERM) first thing, and exits
  if its parent is already gone. It runs in a process group of its own, so a Ctrl-C to the
  terminal's group reaches the parent alone, which drains its requests (forwarded ones still
  answered by the writer) before it stops the writer.
- **Restarted if it dies**: a watcher thread in the parent waits on it and starts it again, after
  a pause that grows while it keeps dying at once (so a writer that cannot start does not spin).
  The kernel ties the death signal to the *thread* that started the child: that watcher lives
  until :meth:`WriterProcess.stop`.
- **Stops within a bound**: SIGTERM (uvicorn's graceful drain, ``CLAIMGATE_SHUTDOWN_TIMEOUT_S``),
  then SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

log = logging.getLogger("claimgate.writer")

SOCKET_NAME = "writer.sock"
_PR_SET_PDEATHSIG = 1
_RESTART_PAUSE_S = (0.2, 10.0)  # first pause, longest pause
_STABLE_S = 30.0  # alive this long: the next death is not "dying at once"


class WriterProcess:
    """The parent's handle on its writer: start, watch and restart, stop."""

    def __init__(self, env: dict[str, str], *, stop_wait_s: float) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="claimgate-writer-"))  # 0700
        self.socket = str(self.folder / SOCKET_NAME)
        self._env = {
            **env,
            "CLAIMGATE_WRITER": "inline",
            "CLAIMGATE_WRITER_CHILD": "true",
            "CLAIMGATE_WRITER_SOCKET": "",
        }
        self._stop_wait_s = stop_wait_s
        self._stopping = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = threading.Event()
        self._lock = threading.Lock()
        self.starts = 0
        self._watcher = threading.Thread(target=self._watch, name="claimgate-writer-watch")

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self, wait_s: float) -> bool:
        """Start the writer and its watcher; wait up to ``wait_s`` for it to answer. False if it
        did not (the checks serve anyway; admin requests answer 503 until it does)."""
        self._watcher.start()
        self._started.wait(10)
        return self.wait_answering(wait_s)

    def wait_answering(self, wait_s: float) -> bool:
        deadline = time.monotonic() + wait_s
        transport = httpx.HTTPTransport(uds=self.socket)
        with httpx.Client(transport=transport, base_url="http://claimgate-writer") as c:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if c.get("/healthz", timeout=1.0).status_code == 200:
                        return True
                if time.monotonic() > deadline or self._stopping.is_set():
                    return False
                time.sleep(0.05)

    def _spawn(self) -> subprocess.Popen[bytes]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)  # a killed writer's socket file
        return subprocess.Popen(
            [sys.executable, "-m", "app.api.writer_process", self.socket, str(os.getpid())],
            env=self._env,
            process_group=0,  # a terminal's Ctrl-C reaches the parent, which stops us in order
        )

    def _watch(self) -> None:
        pause = _RESTART_PAUSE_S[0]
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    break
                self._proc = proc = self._spawn()
                self.starts += 1
            self._started.set()
            born = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                break
            log.warning(
                "writer process %d exited (%s); starting it again",
                proc.pid,
                f"signal {-code}" if code < 0 else f"status {code}",
            )
            pause = _RESTART_PAUSE_S[0] if time.monotonic() - born > _STABLE_S else pause
            self._stopping.wait(pause)
            pause = min(pause * 2, _RESTART_PAUSE_S[1])

    def stop(self) -> None:
        """SIGTERM the writer (it drains its requests), SIGKILL past the bound; remove its
        folder."""
        with self._lock:
            self._stopping.set()
            proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(self._stop_wait_s)
            except subprocess.TimeoutExpired:
                log.warning("writer process %d did not stop; killing it", proc.pid)
                proc.kill()
                proc.wait(5)
        if self._watcher.is_alive():
            self._watcher.join(10)
        shutil.rmtree(self.folder, ignore_errors=True)


def _die_with(parent: int) -> None:
    """SIGTERM when the parent dies (Linux); exit now if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)


def main(argv: list[str]) -> int:
    socket, parent = argv[0], int(argv[1])
    _die_with(parent)
    import uvicorn

    from app import lifecycle
    from app.api.server import uvicorn_options
    from app.observability.logs import configure as configure_logging
    from app.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    lifecycle.exit_on_sigterm()
    if settings.writer_nice:
        os.nice(settings.writer_nice)
    try:
        uvicorn.run(
            "app.api.main:create_app",
            factory=True,
            uds=socket,
            workers=1,
            **uvicorn_options(settings),
        )
    except KeyboardInterrupt:
        return 130
    finally:
        if os.getppid() != parent:  # the parent died (SIGKILL): nobody else removes the folder
            shutil.rmtree(Path(socket).parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
