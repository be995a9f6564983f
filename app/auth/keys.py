"""API keys and the in-memory store every request is verified against.

A key is 256 random bits; its SHA-256 is all the database keeps. Verification hashes the
presented key and looks it up in a dict loaded from PostgreSQL at start-up and reloaded when a
key changes (a Redis message) or every ``key_refresh_interval_s`` — never a database round trip
on the request path.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import api_keys

ROLES = ("his", "gateway", "agency", "ops")


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    role: str
    institutions: frozenset[str]
    prefix: str

    def may_check(self, institution: str) -> bool:
        if self.role == "gateway":
            return True
        return self.role == "his" and institution in self.institutions


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_key(role: str) -> str:
    return f"cg_{role}_{secrets.token_urlsafe(32)}"


_SEEN_MAX = 4096


class KeyStore:
    def __init__(self) -> None:
        self._by_hash: dict[str, Principal] = {}
        # Keys verified since the last reload, as presented: a HIS sends the same key with
        # every check, and hashing it each time was a few per cent of a check. Only keys that
        # verified are kept (unknown ones cannot fill it), it is bounded, and a reload — the
        # way a revocation arrives — starts it afresh.
        self._seen: dict[str, Principal] = {}
        self.loaded = False

    def verify(self, raw: str) -> Principal | None:
        found = self._seen.get(raw)
        if found is None:
            found = self._by_hash.get(hash_key(raw))
            if found is not None:
                if len(self._seen) >= _SEEN_MAX:
                    self._seen = {}
                self._seen[raw] = found
        return found

    async def reload(self, conn: AsyncConnection) -> None:
        rows = await conn.execute(
            select(
                api_keys.c.id,
                api_keys.c.key_hash,
                api_keys.c.role,
                api_keys.c.institutions,
                api_keys.c.prefix,
            ).where(api_keys.c.revoked_at.is_(None))
        )
        self._by_hash = {
            h: Principal(i, role, frozenset(insts or ()), prefix)
            for i, h, role, insts, prefix in rows
        }
        self._seen = {}
        self.loaded = True


async def create_key(
    conn: AsyncConnection, role: str, institutions: list[str], label: str = ""
) -> tuple[int, str]:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "his" and not institutions:
        raise ValueError("a his key must be bound to at least one institution (--institution)")
    raw = new_key(role)
    key_id = (
        await conn.execute(
            api_keys.insert()
            .values(
                key_hash=hash_key(raw),
                prefix=raw[: len(role) + 10],
                role=role,
                institutions=institutions,
                label=label,
            )
            .returning(api_keys.c.id)
        )
    ).scalar_one()
    return key_id, raw


async def revoke_key(conn: AsyncConnection, key_id_or_prefix: str) -> int:
    cond = (
        api_keys.c.id == int(key_id_or_prefix)
        if key_id_or_prefix.isdigit()
        else api_keys.c.prefix == key_id_or_prefix
    )
    res = await conn.execute(
        update(api_keys).where(cond, api_keys.c.revoked_at.is_(None)).values(revoked_at=func.now())
    )
    return res.rowcount
