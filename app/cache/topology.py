"""Which Redis the mirror lives in — one server, a Sentinel-watched master, or a Redis Cluster —
read from ``CLAIMGATE_REDIS_URL``, and the few operations whose shape depends on it.

URL grammar (docs/operations.md, "Redis topologies"):

- ``redis://[user:password@]host:port/db`` (or ``rediss://``, ``unix://``): one server.
- ``redis+sentinel://[user:password@]host:port[,host:port...]/master-name[/db]``: the sentinels,
  and the name they monitor; the client asks them for the master on every new connection.
  ``?sentinel_password=...`` when the sentinels themselves require one.
- ``redis+cluster://[user:password@]host:port[,host:port...]``: seed nodes of a Redis Cluster
  (database 0 only: a cluster has no other).

The clients are redis-py's own (``redis.asyncio.sentinel.Sentinel``,
``redis.asyncio.cluster.RedisCluster``). On a cluster, every key a check reads carries its
institution's hash tag (app.cache.layout), so one check is still one MGET to one node; what a
cluster changes is below: multi-slot reads split by slot, scripts grouped by slot or by node, the
mirror's stamp kept on every master, and invalidations on a sharded channel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.crc import key_slot

SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SINGLE_SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True)
class RedisTarget:
    kind: str  # "single" | "sentinel" | "cluster"
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    master: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    tls: bool = False


def _hosts(netloc: str, url_name: str) -> tuple[tuple[str, int], ...]:
    found = []
    for part in netloc.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"{url_name}: {part.strip() or 'an empty entry'!r} is not host:port "
                "(list several as host:port,host:port)"
            )
        found.append((host.strip("[]"), int(port)))
    return tuple(found)


def parse_redis_url(url: str, url_name: str = "CLAIMGATE_REDIS_URL") -> RedisTarget:
    """Read one of the three URL forms; a ValueError names the setting and what is wrong
    (never the password)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in SINGLE_SCHEMES:
        return RedisTarget("single", url)
    if scheme not in (SENTINEL_SCHEME, *CLUSTER_SCHEMES):
        raise ValueError(
            f"{url_name}: unknown scheme {scheme!r}; use redis://, rediss://, unix://, "
            "redis+sentinel:// or redis+cluster://"
        )
    creds, _, netloc = parts.netloc.rpartition("@")
    user, _, password = creds.partition(":")
    if not netloc:
        raise ValueError(f"{url_name}: no host:port after {scheme}://")
    hosts = _hosts(netloc, url_name)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    path = [p for p in parts.path.split("/") if p]
    common: dict[str, Any] = {
        "url": url,
        "hosts": hosts,
        "username": unquote(user) or None,
        "password": unquote(password) or None,
    }
    if scheme == SENTINEL_SCHEME:
        if not path or len(path) > 2:
            raise ValueError(
                f"{url_name}: a Sentinel URL names the master after the hosts: "
                "redis+sentinel://host:port,host:port/master-name[/db]"
            )
        db = path[1] if len(path) == 2 else "0"
        if not db.isdigit():
            raise ValueError(f"{url_name}: database {db!r} is not a number")
        return RedisTarget(
            "sentinel",
            master=unquote(path[0]),
            db=int(db),
            sentinel_password=query.get("sentinel_password"),
            **common,
        )
    if path not in ([], ["0"]):
        raise ValueError(f"{url_name}: a Redis Cluster has database 0 only; drop the path")
    return RedisTarget("cluster", tls=scheme.startswith("rediss"), **common)


def make_client(
    target: RedisTarget,
    *,
    pool_size: int,
    timeout_s: float,
    on_connect: Callable[[Any], Awaitable[None]] | None = None,
) -> Redis:
    """A pooled client for the target. ``on_connect`` runs as each connection opens (one server
    and Sentinel; redis-py's cluster client has no such hook — there the mirror watch's probe
    of every master stands in for it, app.api.runtime)."""
    timeouts: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    if target.kind == "single":
        pool = BlockingConnectionPool.from_url(
            target.url,
            max_connections=pool_size,
            timeout=timeout_s,
            redis_connect_func=on_connect,
            **timeouts,
        )
        return Redis(connection_pool=pool)
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.kind == "sentinel":
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.hosts),
            sentinel_kwargs={"password": target.sentinel_password, **timeouts},
            **timeouts,
        )
        client: Redis = sentinel.master_for(
            target.master,
            db=target.db,
            max_connections=pool_size,
            redis_connect_func=on_connect,
            **auth,
            **timeouts,
        )
        return client
    cluster = RedisCluster(
        startup_nodes=[ClusterNode(h, p) for h, p in target.hosts],
        max_connections=pool_size,
        # A failing node must cost a check a short wait, then PostgreSQL answers: not the
        # client's default of several retries with backoff.
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 2),
        require_full_coverage=False,
        ssl=target.tls,
        **auth,
        **timeouts,
    )
    return cluster  # type: ignore[return-value]  # same commands; the helpers below split the rest


def is_cluster(redis: Any) -> bool:
    return isinstance(redis, RedisCluster)


async def mget(redis: Any, keys: Sequence[str]) -> list[Any]:
    """MGET in key order; on a cluster, one MGET per slot (pipelined per node)."""
    if is_cluster(redis):
        values: list[Any] = await redis.mget_nonatomic(list(keys))
        return values
    values = await redis.mget(keys)
    return values


async def publish(redis: Any, channel: str, message: str) -> None:
    """A cluster carries invalidations on a sharded channel (SPUBLISH, Redis 7): delivered by the
    shard that owns the channel's slot, not broadcast over the cluster bus to every node."""
    if is_cluster(redis):
        await redis.spublish(channel, message)
    else:
        await redis.publish(channel, message)


def slot_groups(redis: Any, keys: Sequence[str]) -> list[list[int]]:
    """Indexes of ``keys`` grouped so that each group may go into one script call: all of them
    on one server, by hash slot on a cluster (a cluster refuses a script whose keys span slots)."""
    if not is_cluster(redis):
        return [list(range(len(keys)))] if keys else []
    groups: dict[int, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(key_slot(k.encode()), []).append(i)
    return list(groups.values())


@lru_cache(maxsize=16384)
def tag_for_slot(slot: int) -> str:
    """A short hash tag that lands in ``slot``: names a key that lives on the master serving it."""
    n = 0
    while key_slot(b"m%d" % n) != slot:
        n += 1
    return f"m{n}"


@dataclass(frozen=True)
class StampPlace:
    """Where one copy of the mirror's stamp lives (app.sync.stamp): the built marker, the batch
    count, the generation and the rebuild's token, in one slot; ``node`` is the master that
    holds it (None on one server)."""

    built: str
    batches: str
    generation: str
    token: str
    node: Any = None

    @property
    def keys(self) -> tuple[str, str, str]:
        return (self.built, self.batches, self.generation)


def node_stamp(slot: int, node: Any = None) -> StampPlace:
    tag = tag_for_slot(slot)
    return StampPlace(
        f"cg:{{{tag}}}:built",
        f"cg:{{{tag}}}:batches",
        f"cg:{{{tag}}}:generation",
        f"cg:{{{tag}}}:rebuild-token",
        node,
    )


async def stamp_places(redis: Any, single: StampPlace) -> list[StampPlace]:
    """Every copy of the stamp: ``single`` on one server; on a cluster one per master, in the
    lowest slot it serves — data a failover or a restart loses on one master is lost with that
    master's copy of the stamp, so every master must carry one for the loss to show. Worked out
    again only when the client's view of the masters changes (a failover, a reshard)."""
    if not is_cluster(redis):
        return [single]
    await redis.initialize()
    slots = redis.nodes_manager.slots_cache
    seen = (id(slots), tuple(sorted(n.name for n in redis.get_primaries())))
    cached = getattr(redis, "_cg_stamp_places", None)
    if cached is not None and cached[0] == seen:
        places: list[StampPlace] = cached[1]
        return places
    lowest: dict[str, int] = {}
    for slot, nodes in slots.items():
        if nodes and slot < lowest.get(nodes[0].name, 16384):
            lowest[nodes[0].name] = slot
    places = [node_stamp(lowest[n.name], n) for n in redis.get_primaries() if n.name in lowest]
    redis._cg_stamp_places = (seen, places)
    return places


def node_of(redis: Any, key: str) -> Any:
    return redis.get_node_from_key(key)


async def eval_on(
    redis: Any, place: StampPlace, script: str, keys: Sequence[Any], args: Sequence[Any]
) -> Any:
    """One script call on the server (or the cluster master) that holds ``place``. On a cluster
    the script declares the place's keys (one slot) and names the other keys it touches in ARGV;
    its ``allow-cross-slot-keys`` flag lets it reach them on the same master."""
    if place.node is None:
        return await redis.eval(script, len(keys), *keys, *args)
    flagged = "#!lua flags=allow-cross-slot-keys\n" + script
    return await redis.execute_command(
        "EVAL", flagged, len(keys), *keys, *args, target_nodes=place.node
    )


async def bounded(calls: Sequence[Callable[[], Awaitable[Any]]], limit: int = 16) -> list[Any]:
    """Run ``calls`` concurrently, at most ``limit`` at a time (a cluster client refuses more
    connections per node than its pool holds), results in order."""
    sem = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with sem:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))


@dataclass
class Subscription:
    """A pub/sub connection for the invalidation channels, and the client to close with it."""

    pubsub: Any
    client: Any = None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()


async def subscribe(redis: Any, *channels: str) -> Subscription:
    """Subscribe to ``channels``: SUBSCRIBE on one server; on a cluster SSUBSCRIBE on the master
    that owns their slot (they share a hash tag), through a plain connection of its own — so a
    failover of that master ends the subscription with an error the subscriber sees (and
    flushes its L1 for), rather than a reconnection that would hide the messages it missed."""
    if not is_cluster(redis):
        pubsub = redis.pubsub()
        await pubsub.subscribe(*channels)
        return Subscription(pubsub)
    await redis.nodes_manager.initialize()  # the owner may have changed since we last looked
    node = redis.get_node_from_key(channels[0])
    kwargs = redis.get_connection_kwargs()
    client = Redis(
        host=node.host,
        port=node.port,
        username=kwargs.get("username"),
        password=kwargs.get("password"),
        socket_timeout=kwargs.get("socket_timeout"),
        socket_connect_timeout=kwargs.get("socket_connect_timeout"),
        ssl=kwargs.get("connection_class") is not None and "SSL" in str(kwargs["connection_class"]),
    )
    sub = Subscription(client.pubsub(), client)
    try:
        await sub.pubsub.ssubscribe(*channels)
    except BaseException:
        await sub.close()
        raise
    return sub
