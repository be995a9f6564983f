#!/usr/bin/env python3
"""Set-up and the two everyday commands, with nothing but Python >= 3.11 installed.

    python3 dev.py run     # the service on its embedded default, with demo data
    python3 dev.py test    # ruff, mypy and the whole test suite

Both create ./.venv on first use and install the pinned dependencies (requirements.lock) and
the project into it; later runs reuse it unless the lock file or pyproject.toml changed.
Extra arguments go to the command: ``python3 dev.py test -k checks``, ``python3 dev.py run --port 9000``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".claimgate-installed"


def _fingerprint() -> str:
    h = hashlib.sha256()
    for name in ("requirements.lock", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 — this file must run, and explain, on any Python
        sys.exit(f"claimgate needs Python >= 3.11; this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    want = _fingerprint()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    print("installing pinned dependencies into .venv ...", flush=True)
    subprocess.run([*pip, "-r", str(ROOT / "requirements.lock")], check=True)
    subprocess.run([*pip, "--no-deps", "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(want)


def run(cmd: list[str]) -> int:
    return subprocess.run(cmd, cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "setup"):
        print(__doc__)
        return 2
    ensure_env()
    what, extra = argv[0], argv[1:]
    if what == "setup":
        return 0
    if what == "run":
        os.execv(str(BIN / "claimgate"), [str(BIN / "claimgate"), "serve", "--demo", *extra])
    for step in (
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "mypy")],
    ):
        if code := run(step):
            print(f"failed: {Path(step[0]).name} {' '.join(step[1:])}", file=sys.stderr)
            return code
    return run([str(BIN / "pytest"), *extra])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
