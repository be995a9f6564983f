"""``claimgate import`` and ``claimgate template`` against the test database: the dry run
prints the report and writes nothing; the import draws its progress and writes once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import Harness
from tests.sheets import xlsx
from tests.test_interchange_import import weihai_rows

pytestmark = pytest.mark.asyncio(loop_scope="session")


def claimgate(h: Harness, *args: str) -> subprocess.CompletedProcess[str]:
    s = h.runtime.settings
    env = {
        **os.environ,
        "CLAIMGATE_DATABASE_URL": str(s.database_url),
        "CLAIMGATE_REDIS_URL": str(s.redis_url),
        "CLAIMGATE_PII_SECRET": s.pii_secret,
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_cli_dry_runs_then_imports_with_a_progress_bar(
    h: Harness, tmp_path: Path
) -> None:
    rows = weihai_rows()
    bad = [r[:] for r in rows]
    bad[1][5] = 3.71002e17
    (tmp_path / "bad.xlsx").write_bytes(xlsx(bad))
    (tmp_path / "roster.xlsx").write_bytes(xlsx(rows))
    out = claimgate(
        h, "import", str(tmp_path / "bad.xlsx"), "--preset", "weihai-roster", "--dry-run"
    )
    assert out.returncode == 1
    assert "Sheet1 第2行 身份证号码（F列）：以数字格式存储" in out.stdout
    assert "试导入：未写入任何数据" in out.stdout
    dry = claimgate(
        h,
        "import",
        str(tmp_path / "roster.xlsx"),
        "--preset",
        "weihai-roster",
        "--dry-run",
        "--as-of",
        "2026-06-30",
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    async with h.runtime.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM events"))).scalar_one() == 0
    real = claimgate(
        h,
        "import",
        str(tmp_path / "roster.xlsx"),
        "--preset",
        "weihai-roster",
        "--as-of",
        "2026-06-30",
    )
    assert real.returncode == 0, real.stdout + real.stderr
    assert "重新计算 [##############################] 3/3" in real.stderr
    again = claimgate(
        h,
        "import",
        str(tmp_path / "roster.xlsx"),
        "--preset",
        "weihai-roster",
        "--as-of",
        "2026-06-30",
    )
    assert again.returncode == 0
    async with h.runtime.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM registrations"))).scalar_one() == 3
        imports = "SELECT count(*) FROM audit_log WHERE action = 'import.weihai-roster'"
        assert (await conn.execute(text(imports))).scalar_one() == 1
    await h.synced()  # the outbox carries the CLI's writes into Redis
    template = claimgate(h, "template", str(tmp_path / "t.xlsx"))
    assert template.returncode == 0
    assert (tmp_path / "t.xlsx").read_bytes()[:2] == b"PK"
