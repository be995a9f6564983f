"""The one place an admin write commits: ledger event, entity change, recomputed projections,
outbox rows, audit row and (when the caller sent one) the Idempotency-Key record — together or
not at all."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import Request
from redis.exceptions import RedisError
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.api.deps import runtime
from app.auth.keys import Principal
from app.db.tables import idempotency_keys
from app.errors import Conflict, InvalidField
from app.projection.ledger import WriteContext
from app.projection.recompute import Recompute
from app.sync.mirror import Mirror

log = logging.getLogger("claimgate.admin")

Work = Callable[[AsyncConnection, Recompute, WriteContext], Awaitable[dict[str, Any]]]


def request_id(request: Request) -> str:
    rid = request.headers.get("x-request-id", "")
    return rid[:64] if rid else uuid.uuid4().hex


async def run_write(
    request: Request,
    principal: Principal,
    work: Work,
    *,
    status: int = 200,
    scope: str,
    body: Any = None,
    require_idempotency_key: bool = False,
) -> tuple[int, dict[str, Any]]:
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 200:
        raise InvalidField("must be 1-200 characters", field="header.Idempotency-Key")
    if key is None and require_idempotency_key:
        raise InvalidField(
            "this write needs an Idempotency-Key header, so a retry is never counted twice",
            field="header.Idempotency-Key",
            code="IDEMPOTENCY_KEY_REQUIRED",
        )
    ctx = WriteContext(principal.key_id, request_id(request))
    fingerprint = hashlib.sha256(
        orjson.dumps({"p": request.url.path, "b": body}, option=orjson.OPT_SORT_KEYS, default=str)
    ).hexdigest()
    rt = runtime(request)
    result = await execute(
        rt.engine,
        ctx,
        work,
        status=status,
        scope=scope,
        key=key,
        fingerprint=fingerprint,
        mirror=rt.mirror,
    )
    # Which write, by which key, under which request id — never the body, which may hold
    # names and ID numbers (the audit log has the details).
    log.info(
        "admin write %s status=%s key=%s request=%s",
        scope,
        result[0],
        principal.key_id,
        ctx.request_id,
    )
    return result


async def execute(
    engine: AsyncEngine,
    ctx: WriteContext,
    work: Work,
    *,
    status: int = 200,
    scope: str = "",
    key: str | None = None,
    fingerprint: str = "",
    mirror: Mirror | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run one write in one transaction; with ``key``, at most once per (scope, key).

    With ``mirror``, the projections the write changed are also put into Redis (version-
    guarded) after the commit and before the answer, so an acknowledged write is already what
    checks read. The outbox still carries them: if this fails, the sync worker delivers.
    """
    async with engine.begin() as conn:
        if key is not None:
            # Serialise retries of one key: the second waits, then finds the first's answer.
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{scope}:{key}"}
            )
            prior = (
                await conn.execute(
                    select(
                        idempotency_keys.c.request_hash,
                        idempotency_keys.c.status_code,
                        idempotency_keys.c.response,
                    ).where(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
                )
            ).one_or_none()
            if prior is not None:
                if prior[0] != fingerprint:
                    raise Conflict(
                        "this Idempotency-Key was already used with a different request",
                        field="header.Idempotency-Key",
                        code="IDEMPOTENCY_KEY_REUSED",
                    )
                return int(prior[1]), dict(prior[2])
        rc = Recompute(conn)
        result = await work(conn, rc, ctx)
        written = await rc.run()
        if key is not None:
            await conn.execute(
                idempotency_keys.insert().values(
                    scope=scope,
                    key=key,
                    request_hash=fingerprint,
                    status_code=status,
                    response=result,
                )
            )
    if mirror is not None and written:
        try:
            await mirror.write(written)
        except (RedisError, OSError) as exc:
            log.warning(
                "direct mirror write failed (%s); the outbox will deliver", type(exc).__name__
            )
    return status, result
