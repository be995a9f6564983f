"""claimgate on a real Redis Cluster (three masters, three replicas) and on Redis Sentinel (one
master, one replica, three sentinels), started by the tests on loopback (tests/topologies.py).

The promise under failover is the single server's: no acknowledged write lost, and never an
allow for a practitioner whose suspension was acknowledged (201). The hard case is the promoted
replica that lagged: it holds the old, payable document and says it is built. The tests make it
happen on purpose — the replica is stopped (SIGSTOP) while the suspension is written and
drained, the master killed, the replica resumed and promoted — and a small load of checks runs
throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from app.admin.practitioners import practitioner_action
from app.admin.schemas import PractitionerActionIn
from app.admin.writes import Write, Writes
from app.cache.layout import institution_key, view_key
from app.cache.topology import parse_redis_url, stamp_places
from app.codes import practitioner_token
from app.projection.ledger import WriteContext
from app.settings import Settings
from app.sync.mirror import verify
from app.sync.stamp import SINGLE_PLACE, read_held
from app.sync.worker import SyncWorker
from tests import factories as f
from tests.conftest import Harness, Servers, make_settings, reset, start_harness
from tests.topologies import (
    Cluster,
    Node,
    SentinelSet,
    redis_cluster,
    redis_sentinel,
    wait_replicas_dropped,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

INST2 = "H37080200002"
DOC2 = "D370802000002"


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with redis_cluster() as c:
        yield c


@pytest.fixture(scope="session")
def sentinel() -> Iterator[SentinelSet]:
    with redis_sentinel() as s:
        yield s


def _flush(port: int) -> None:
    subprocess.run(["redis-cli", "-p", str(port), "flushall"], capture_output=True, check=True)


@contextlib.asynccontextmanager
async def app_on(
    servers: Servers, redis_url: str, ports: list[int], **settings: Any
) -> AsyncIterator[Harness]:
    await reset(servers)
    for port in ports:
        _flush(port)
    harness = start_harness(make_settings(servers, redis_url=redis_url, **settings))
    h = await anext(harness)
    try:
        yield h
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await anext(harness)


def view(code: str = f.DOC, inst: str = f.INST) -> str:
    return view_key(inst, practitioner_token(code, "test-secret"))


async def two_institutions(h: Harness) -> None:
    await f.world(h)
    await f.institution(h, code=INST2, name="济宁市第二人民医院")
    await f.department(h, inst=INST2)
    await f.practitioner(h, code=DOC2)
    await f.registration(h, code=DOC2, inst=INST2)
    await f.agreement(h, code=DOC2, inst=INST2)


async def suspend(h: Harness, code: str = f.DOC) -> None:
    r = await h.client.post(
        f"/v1/admin/practitioners/{code}/actions",
        json={"action": "suspend", "start": "2026-11-01", "end": "2027-02-01", "reason": "test"},
        headers=h.auth("agency"),
    )
    assert r.status_code == 201, r.text


@dataclass
class Load:
    """Checks of one practitioner, back to back, until stopped: every answer with the time
    its check was asked."""

    h: Harness
    answers: list[tuple[float, str, str]] = field(default_factory=list)
    failures: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            # The time a check was asked, not answered: a check asked before the write's 201
            # may be answered from before it, and its answer can reach this task after the
            # writer's own task has taken the 201.
            asked = loop.time()
            r = await self.h.client.post(
                "/v1/checks",
                json={
                    "institution_code": f.INST,
                    "department_code": f.DEPT,
                    "practitioner_code": f.DOC,
                    "service_date": "2026-11-22",
                },
                headers=self.h.auth("his"),
            )
            if r.status_code == 200:
                body = r.json()
                self.answers.append((asked, body["decision"], body["source"]))
            else:
                self.failures += 1  # 503: the gate said it cannot answer — never an allow
            await asyncio.sleep(0.005)


async def until_cache_answers(h: Harness, decision: str, within: float = 20.0) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        answer = await f.check(h)
        assert answer["decision"] == decision, answer
        if answer["source"] == "cache":
            return loop.time() - start
        assert loop.time() - start < within, f"the cache never answered again: {answer}"
        await asyncio.sleep(0.02)


async def test_redis_urls_are_read_or_refused_naming_the_setting() -> None:
    cluster = parse_redis_url("redis+cluster://u:pw@10.0.0.1:7000,10.0.0.2:7001")
    assert (cluster.kind, cluster.hosts, cluster.password) == (
        "cluster",
        (("10.0.0.1", 7000), ("10.0.0.2", 7001)),
        "pw",
    )
    s = parse_redis_url("redis+sentinel://a:26379,b:26380/mymaster/3?sentinel_password=x")
    assert (s.kind, s.master, s.db, s.sentinel_password) == ("sentinel", "mymaster", 3, "x")
    assert parse_redis_url("redis://127.0.0.1:6379/2").kind == "single"
    for bad, says in (
        ("redis+cluster://127.0.0.1:7000/3", "database 0 only"),
        ("redis+sentinel://127.0.0.1:26379", "names the master"),
        ("redis+sentinel://127.0.0.1:26379/m/x", "not a number"),
        ("redis+cluster://127.0.0.1", "not host:port"),
        ("redis+cluster://:secret@h:70000", "not host:port"),
        ("memcached://127.0.0.1:11211", "unknown scheme"),
    ):
        with pytest.raises(ValidationError) as err:
            Settings(redis_url=bad)
        text = str(err.value)
        assert "CLAIMGATE_REDIS_URL" in text, text
        assert says in text, text
        assert "secret" not in text


async def test_the_check_path_rebuild_verify_and_invalidations_work_on_a_cluster(
    servers: Servers, cluster: Cluster
) -> None:
    async with app_on(servers, cluster.url, [n.port for n in cluster.masters()]) as h:
        rt = h.runtime
        rc: Any = rt.redis  # the cluster client
        await two_institutions(h)
        await h.synced()
        # The two institutions' keys live on different slots: a batch of both is answered from
        # the cache, one MGET per slot.
        assert rc.keyslot(view()) != rc.keyslot(view(DOC2, INST2))
        r = await h.client.post(
            "/v1/checks/batch",
            json={
                "checks": [
                    {
                        "claim_id": f"c{i}",
                        "institution_code": inst,
                        "department_code": f.DEPT,
                        "practitioner_code": doc,
                        "service_date": "2026-11-22",
                    }
                    for i, (inst, doc) in enumerate(((f.INST, f.DOC), (INST2, DOC2)))
                ]
            },
            headers=h.auth("gateway"),
        )
        assert r.status_code == 200, r.text
        assert [x["decision"] for x in r.json()["results"]] == ["allow", "allow"]
        # Every master holds a copy of the stamp, all equal to PostgreSQL's count.
        places = await stamp_places(rt.redis, SINGLE_PLACE)
        assert len(places) == 3
        assert {p.node.name for p in places} == {m.name for m in rc.get_primaries()}
        held = await read_held(rt.redis)
        assert held.built
        assert held.batches >= 1

        # Invalidations reach the L1 over the sharded channel: a cached allow becomes a deny.
        await f.wait_for_l1(h)
        assert (await f.check_from_cache(h))["decision"] == "allow"
        await suspend(h)
        loop = asyncio.get_running_loop()
        acked = loop.time()
        while (answer := await f.check(h))["decision"] == "allow":
            assert loop.time() - acked < rt.settings.max_staleness_s, "the L1 kept the allow"
            await asyncio.sleep(0.01)
        assert answer["source"] == "cache"
        assert f.codes_of(answer) == {"PRACTITIONER_SUSPENDED": True}

        # A key lost on its master is found and repaired by the deep verify.
        await rt.redis.delete(institution_key(INST2))
        report = await verify(rt.engine, rt.redis, repair=True)
        assert (report.missing, report.repaired) == (1, 1)
        assert await rt.redis.exists(institution_key(INST2))


def _resume(node: Node) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(node.proc.pid, signal.SIGCONT)


async def _lagging_failover(
    h: Harness, stop_replica: Node, kill_master: Node, promoted: Any
) -> tuple[Load, float, float]:
    """Suspend the doctor while ``stop_replica`` cannot replicate, kill ``kill_master``, let the
    stale replica take over, under load. Returns the load, the moment the suspension was
    acknowledged, and how long after the kill the cache answered again."""
    loop = asyncio.get_running_loop()
    load = Load(h)
    stop = asyncio.Event()
    task = asyncio.create_task(load.run(stop))
    try:
        await asyncio.sleep(0.3)
        os.kill(stop_replica.proc.pid, signal.SIGSTOP)
        try:
            # Nothing written from now on reaches it, not even into its socket's buffer.
            await asyncio.to_thread(wait_replicas_dropped, kill_master)
            await suspend(h)
            acked = loop.time()
            await h.synced()  # drained into the master: PostgreSQL counts the batch
            await asyncio.sleep(0.2)
            kill_master.kill()
            killed = loop.time()
        finally:
            _resume(stop_replica)
        await asyncio.to_thread(promoted)
        await until_cache_answers(h, "deny", within=30.0)
        recovered = loop.time() - killed
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await task
    return load, acked, recovered


def _assert_no_wrong_allow(load: Load, acked: float) -> None:
    after = [(d, s) for t, d, s in load.answers if t > acked]
    assert len(load.answers) > 100, len(load.answers)
    assert after
    assert all(d == "deny" for d, _ in after), [a for a in after if a[0] != "deny"][:5]
    assert ("deny", "database") in after  # the regressed copy was noticed and not read
    assert after[-1] == ("deny", "cache")  # and repaired: the cache answers again


async def test_a_cluster_master_failing_over_to_a_lagging_replica_never_answers_allow(
    servers: Servers, cluster: Cluster
) -> None:
    async with app_on(servers, cluster.url, [n.port for n in cluster.masters()]) as h:
        await f.world(h)
        await h.synced()
        await f.wait_for_l1(h)
        assert (await f.check_from_cache(h))["decision"] == "allow"
        master = cluster.master_of(view())
        replica = cluster.replica_of(master)

        def promoted() -> None:
            cluster.wait_role(replica, "master", within=30)

        load, acked, recovered = await _lagging_failover(h, replica, master, promoted)
        _assert_no_wrong_allow(load, acked)
        worker = h.runtime.worker
        assert worker is not None
        assert worker.resyncs >= 1
        # The promoted replica really was behind: the resync repaired what it lacked (the
        # suspended view stale, or missing where the replica lagged from before it was written).
        assert worker.resync_repaired >= 1
        print(
            f"\ncluster failover: {len(load.answers)} checks, {load.failures} 503s; "
            f"cache answering again {recovered:.2f} s after the kill"
        )
        master.restart()  # back as a replica of the promoted one, for the next test
        await asyncio.to_thread(cluster.wait_healthy)


async def test_a_sentinel_failover_to_a_lagging_replica_never_answers_allow(
    servers: Servers, sentinel: SentinelSet
) -> None:
    ports = [sentinel.master.port, sentinel.replica.port]
    async with app_on(servers, sentinel.url, ports) as h:
        await f.world(h)
        await h.synced()
        await f.wait_for_l1(h)
        assert (await f.check_from_cache(h))["decision"] == "allow"
        assert sentinel.current_master_port() == sentinel.master.port

        def promoted() -> None:
            sentinel.wait_master(sentinel.replica.port, within=30)

        load, acked, recovered = await _lagging_failover(
            h, sentinel.replica, sentinel.master, promoted
        )
        _assert_no_wrong_allow(load, acked)
        # Noticed (by the worker or the watch, whichever looked first) and resynced.
        worker = h.runtime.worker
        assert worker is not None
        assert worker.resync_repaired >= 1
        print(
            f"\nsentinel failover: {len(load.answers)} checks, {load.failures} 503s; "
            f"cache answering again {recovered:.2f} s after the kill"
        )


FIRST_DAY = date(2026, 9, 1)  # the rounds' days, all before the checked day (2026-11-22)


async def test_a_write_is_visible_on_the_cluster_within_the_staleness_bound(
    servers: Servers, cluster: Cluster
) -> None:
    """The staleness across the cluster, from a write's 201 to the checks answering it, checked
    every few milliseconds while other checks race the invalidations into the L1 and the
    remembered verdicts: never an allow later than the bound after a suspension. Then the same
    with no sync worker and a write that only the outbox knows: the watch sees the undrained
    row and checks answer from PostgreSQL within the bound."""
    await asyncio.to_thread(cluster.wait_healthy)
    ports = [n.port for n in cluster.masters()]
    async with app_on(servers, cluster.url, ports) as h:
        await f.world(h)
        await h.synced()
        await f.wait_for_l1(h)
        first = await f.check_from_cache(h)
        assert first["decision"] == "allow"
        version = first["data_version"]["practitioner"]
        bound = h.runtime.settings.max_staleness_s
        loop = asyncio.get_running_loop()
        racers = [Load(h), Load(h)]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(r.run(stop)) for r in racers]
        delays = []
        try:
            for i in range(12):
                # A restore ends the suspensions that began before its day (app.policy.manual).
                action = "suspend" if i % 2 == 0 else "restore"
                await f.practitioner_action(h, f.DOC, action, str(FIRST_DAY + timedelta(days=i)))
                acked = loop.time()
                want = "deny" if action == "suspend" else "allow"
                while True:
                    asked = loop.time()
                    answer = await f.check(h)
                    if answer["decision"] == want:
                        break
                    assert asked - acked < bound, f"{action}: {answer}, {asked - acked:.3f} s on"
                    await asyncio.sleep(0.003)
                assert answer["data_version"]["practitioner"] == version + 1 + i, answer
                delays.append(loop.time() - acked)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        assert sum(len(r.answers) for r in racers) > 50
        assert not any(r.failures for r in racers)
        print(
            f"\ncluster write→visible: median {sorted(delays)[len(delays) // 2] * 1000:.1f} ms, "
            f"max {max(delays) * 1000:.1f} ms over {len(delays)} writes"
        )

    async with app_on(servers, cluster.url, ports, run_sync_worker=False) as h:
        worker = SyncWorker(h.runtime.engine, h.runtime.redis)
        await f.world(h)
        await worker.ensure_built()
        await worker.drain()
        await f.wait_for_l1(h)
        assert (await f.check_from_cache(h))["decision"] == "allow"
        body = PractitionerActionIn(
            action="suspend", start=date(2026, 10, 1), end=None, reason="test"
        )
        await Writes(h.runtime.engine).run(  # committed, not mirrored: only the outbox knows
            Write(WriteContext(None, "test")), practitioner_action, f.DOC, body, "test-secret"
        )
        acked = loop.time()
        while (answer := await f.check(h))["decision"] == "allow":
            assert loop.time() - acked < bound + 0.1, answer  # + one request's time
            await asyncio.sleep(0.01)
        assert answer["source"] == "database"
        assert h.runtime.checks.mirror_behind
        await worker.drain()
        assert (await f.check_from_cache(h))["source"] == "cache"
