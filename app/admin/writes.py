"""The one place a write commits: :meth:`Writes.run`.

In one transaction: the Idempotency-Key record looked up (a retry answers the first answer), the
service's work on a :class:`~app.admin.unit_of_work.UnitOfWork` (entity change, ledger events,
audit rows), the recompute of everything the work recorded (projections and outbox rows), and
the Idempotency-Key record of this answer — together or not at all. After the commit and before
the answer: the changed projections put into Redis (version-guarded), so an acknowledged write
is already what checks read; the outbox delivers them if that fails.

Nothing here knows HTTP. The endpoint reads the request (principal, ``X-Request-ID``,
``Idempotency-Key``, the fingerprint of path and body) into a :class:`Write`; the demo loader,
the tests and any other caller build one by hand.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec

import orjson
from redis.exceptions import RedisError
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.admin.unit_of_work import UnitOfWork
from app.db.tables import idempotency_keys
from app.errors import Conflict
from app.projection.ledger import WriteContext
from app.sync.mirror import Mirror

log = logging.getLogger("claimgate.admin")

P = ParamSpec("P")
Answer = dict[str, Any]  # a write's answer: a JSON object, kept as the idempotent reply
Work = Callable[Concatenate[UnitOfWork, P], Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class Write:
    """One write as the transaction needs it, the request already read.

    ``scope`` names the route (an Idempotency-Key is remembered per scope); with
    ``idempotency_key``, the write is applied at most once per (scope, key), and a retry must
    carry the same ``fingerprint`` (see :func:`fingerprint`) or it is refused with a 409."""

    context: WriteContext
    scope: str = ""
    status: int = 200  # the status of success, remembered with the answer
    idempotency_key: str | None = None
    fingerprint: str = ""


def fingerprint(secret: str, path: str, body: Any) -> str:
    """What a retry under the same Idempotency-Key must match: the path as sent and the body as
    the route's model reads it. Keyed by the PII secret (HMAC-SHA256): a path may hold a
    resident ID number, and a bare hash of it could be confirmed by guessing. (Fingerprints
    stored before this was keyed do not match: a retry across that upgrade is a 409.)"""
    canonical = orjson.dumps({"p": path, "b": body}, option=orjson.OPT_SORT_KEYS, default=str)
    return hmac.new(secret.encode(), canonical, hashlib.sha256).hexdigest()


class Writes:
    """Runs writes against one database, mirroring what they changed into Redis when given a
    :class:`~app.sync.mirror.Mirror` (the serving process does; a script need not — the outbox
    delivers)."""

    def __init__(self, engine: AsyncEngine, mirror: Mirror | None = None) -> None:
        self.engine = engine
        self.mirror = mirror

    async def run(
        self, write: Write, work: Work[P], *args: P.args, **kwargs: P.kwargs
    ) -> tuple[int, Answer]:
        """``work(uow, *args, **kwargs)`` in one transaction; return (status, answer)."""
        key = write.idempotency_key
        async with self.engine.begin() as conn:
            if key is not None:
                prior = await _prior_answer(conn, write, key)
                if prior is not None:
                    return prior
            uow = UnitOfWork(conn, write.context)
            answer = await work(uow, *args, **kwargs)
            written = await uow.finish()
            if key is not None:
                await conn.execute(
                    idempotency_keys.insert().values(
                        scope=write.scope,
                        key=key,
                        request_hash=write.fingerprint,
                        status_code=write.status,
                        response=answer,
                    )
                )
        if self.mirror is not None and written:
            try:
                await self.mirror.write(written)
            except (RedisError, OSError) as exc:
                log.warning(
                    "direct mirror write failed (%s); the outbox will deliver", type(exc).__name__
                )
        return write.status, answer

    async def close(self) -> None:
        """Nothing of its own to close: the engine and Redis are the caller's."""


async def _prior_answer(conn: AsyncConnection, write: Write, key: str) -> tuple[int, Answer] | None:
    """The answer already given under (scope, key), or None; a 409 if it was given to another
    request. Retries of one key are serialised: the second waits for the first's commit."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{write.scope}:{key}"}
    )
    prior = (
        await conn.execute(
            select(
                idempotency_keys.c.request_hash,
                idempotency_keys.c.status_code,
                idempotency_keys.c.response,
            ).where(idempotency_keys.c.scope == write.scope, idempotency_keys.c.key == key)
        )
    ).one_or_none()
    if prior is None:
        return None
    if not hmac.compare_digest(prior[0], write.fingerprint):
        raise Conflict(
            "this Idempotency-Key was already used with a different request",
            field="header.Idempotency-Key",
            code="IDEMPOTENCY_KEY_REUSED",
        )
    return int(prior[1]), dict(prior[2])
