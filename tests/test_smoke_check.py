from __future__ import annotations

import pytest

from tests import factories as f
from tests.conftest import Harness

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_registered_doctor_is_allowed_from_cache(h: Harness) -> None:
    await f.world(h)
    await h.synced()
    answer = await f.check(h)
    assert answer["decision"] == "allow", answer
    assert answer["source"] == "cache"
    assert answer["reasons"] == []
