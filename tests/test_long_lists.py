"""Lists longer than PostgreSQL's 32,767 parameters per statement.

A hospital can have more staff than that: re-judging it reads every staff member's outcome and
category in one statement, and ``IN (...)`` with one parameter per value failed outright. Every
list-membership query on a write or read path takes the list as one array parameter instead.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.db.any_of import any_of
from app.db.tables import practitioners
from app.projection.store import read_docs
from tests import factories as f
from tests.conftest import Harness

pytestmark = pytest.mark.asyncio(loop_scope="session")

MANY = 40_000


async def test_membership_in_a_list_longer_than_the_parameter_limit(h: Harness) -> None:
    await f.world(h)
    await h.synced()
    codes = [f"D{900_000_000_000 + i:012d}" for i in range(MANY)] + [f.DOC]
    async with h.runtime.engine.connect() as conn:
        found = (
            await conn.execute(
                select(practitioners.c.token).where(any_of(practitioners.c.token, codes))
            )
        ).all()
        assert [t for (t,) in found] == [f.DOC]
        keys = [f"cg:{{{f.INST}}}:p:D{i:012d}" for i in range(MANY)] + [f"cg:{{{f.INST}}}:i"]
        docs = await read_docs(conn, keys)
    assert list(docs) == [f"cg:{{{f.INST}}}:i"]
