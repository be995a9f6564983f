"""The per-process L1: a bounded LRU of decoded Redis documents, valid only while this process
hears every invalidation.

The subscriber task evicts keys named in published invalidations and empties the whole cache
whenever its subscription drops, so nothing stale survives a missed message. A read that raced
with an invalidation (fetched before, stored after) is not stored: ``epoch`` counts messages, and
``put_many`` refuses results fetched under an older epoch.

Entries are kept as the raw values Redis returned (bytes, or None for a key Redis does not hold)
and decoded on each hit. Decoded documents are hundreds of thousands of small dicts and lists
that the cyclic garbage collector would walk on every full collection — pauses of a hundred
milliseconds and more with a warm cache, most of the p99. Bytes are not tracked by the collector,
and decoding a document with orjson costs about a microsecond.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from redis.asyncio import Redis

from app.cache.layout import decode, invalidation_channel, is_institution_key, keys_channel
from app.cache.shapes import Entry
from app.cache.topology import Subscription, subscribe

log = logging.getLogger("claimgate.l1")

MISSING: Any = object()
_SHARED_MAX = 4096


class L1Cache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, bytes | str | None] = OrderedDict()
        # Institution documents, decoded once and shared: every line reads one, a city has a
        # few thousand, and decoding the same few hundred bytes for every line not remembered
        # was a twentieth of such a line's CPU. Kept with the raw value they came from, so a
        # newer value stored under the key is decoded afresh.
        self._shared: dict[str, tuple[bytes | str, Entry]] = {}
        self.epoch = 0
        self.healthy = False  # only trusted while subscribed
        self.hits = 0
        self.misses = 0
        # Told the keys each invalidation evicts (None: all): the verdicts remembered from
        # them must go too (app.checks.verdicts.VerdictMemo.forget).
        self.on_invalidate: Callable[[Iterable[str] | None], None] | None = None

    @property
    def enabled(self) -> bool:
        return self.healthy and self.size > 0

    def get(self, key: str) -> Entry | None:
        """Return the entry, None for a key Redis does not hold, or MISSING. Decoded afresh —
        the caller may keep or change it — but for an institution's document, which is shared
        and must only be read."""
        try:
            raw = self._data[key]
        except KeyError:
            self.misses += 1
            return cast(Entry, MISSING)
        self._data.move_to_end(key)
        self.hits += 1
        if raw is None:
            return None
        if not is_institution_key(key):
            return decode(raw)
        kept = self._shared.get(key)
        if kept is not None and kept[0] is raw:
            return kept[1]
        entry = decode(raw)
        if len(self._shared) >= _SHARED_MAX:
            self._shared = {}
        self._shared[key] = (raw, entry)
        return entry

    def put_many(self, items: Iterable[tuple[str, bytes | str | None]], epoch: int) -> None:
        """Store raw values as Redis returned them (None: Redis does not hold the key); values
        must already have been decoded once successfully by the caller."""
        if epoch != self.epoch or not self.enabled:
            return
        data = self._data
        for key, entry in items:
            data[key] = entry
            data.move_to_end(key)
        while len(data) > self.size:
            data.popitem(last=False)

    def invalidate(self, keys: Iterable[str]) -> None:
        self.epoch += 1
        keys = list(keys)
        for key in keys:
            self._data.pop(key, None)
            self._shared.pop(key, None)
        if self.on_invalidate is not None:
            self.on_invalidate(keys)

    def clear(self) -> None:
        self.epoch += 1
        self._data.clear()
        self._shared = {}
        if self.on_invalidate is not None:
            self.on_invalidate(None)

    def __len__(self) -> int:
        return len(self._data)


async def run_subscriber(
    redis: Redis,
    l1: L1Cache,
    on_keys_changed: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
) -> None:
    """Keep the L1 honest: evict on messages, flush and distrust it while disconnected."""
    backoff = 0.05
    while not stop.is_set():
        sub: Subscription | None = None
        try:
            keys_ch = keys_channel(redis)
            sub = await subscribe(redis, invalidation_channel(redis), keys_ch)
            pubsub = sub.pubsub
            l1.clear()
            l1.healthy = True
            backoff = 0.05
            while not stop.is_set():
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if msg is None:
                    await pubsub.ping()  # notices a dead connection within a second
                    continue
                if msg["type"] not in ("message", "smessage"):  # smessage: a cluster's shard
                    continue
                data = msg["data"]
                if msg["channel"] == keys_ch.encode():
                    await on_keys_changed()
                elif data == b"*":
                    l1.clear()
                else:
                    l1.invalidate(data.decode().split("\n"))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure means we may have missed a message
            log.warning("invalidation subscription lost (%s); L1 flushed", type(exc).__name__)
        finally:
            l1.healthy = False
            l1.clear()
            if sub is not None:
                await sub.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        backoff = min(backoff * 2, 1.0)
