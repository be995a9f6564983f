"""Real distributed servers for the tests, on loopback and free ports: a Redis Cluster of three
masters and three replicas (the system redis-server in cluster mode), Redis Sentinel (one master,
one replica, three sentinels), and PgBouncer in transaction mode in front of the test PostgreSQL.
Each is skipped, naming its Debian package, where the binary is missing."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def binary(name: str, package: str) -> str:
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if path is None:
        pytest.skip(f"{name} not installed (Debian package {package})")
    return path


def _cli(port: int, *args: str) -> str:
    out = subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=10
    )
    return out.stdout.strip()


def _wait(what: str, ok: object, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ok():  # type: ignore[operator]
                return
        time.sleep(0.05)
    raise AssertionError(f"{what} not ready within {within} s")


@dataclass
class Node:
    port: int
    proc: subprocess.Popen[bytes]
    folder: Path
    args: list[str] = field(default_factory=list)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.stop()
        self.proc = subprocess.Popen(self.args, cwd=self.folder, stdout=subprocess.DEVNULL)
        _wait(f"redis on {self.port}", lambda: _cli(self.port, "ping") == "PONG")


def _redis(folder: Path, port: int, *extra: str) -> Node:
    folder.mkdir(parents=True, exist_ok=True)
    args = [
        binary("redis-server", "redis-server"),
        "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
        "--save", "", "--appendonly", "no", "--protected-mode", "no",
        # A replica that stops answering is dropped after 2 s (default 60): the failover tests
        # make a replica lag on purpose this way.
        "--repl-timeout", "2", *extra,
    ]  # fmt: skip
    proc = subprocess.Popen(args, cwd=folder, stdout=subprocess.DEVNULL)
    node = Node(port, proc, folder, args)
    _wait(f"redis on {port}", lambda: _cli(port, "ping") == "PONG")
    return node


def wait_replicas_dropped(master: Node, within: float = 15.0) -> None:
    """Until ``master`` has no replica connected (a stopped one timed out)."""
    _wait(
        f"{master.port} to drop its replica",
        lambda: "connected_slaves:0" in _cli(master.port, "info", "replication"),
        within,
    )


@dataclass
class Cluster:
    nodes: list[Node]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def masters(self) -> list[Node]:
        return [n for n in self.nodes if "role:master" in _cli(n.port, "info", "replication")]

    def master_of(self, key: str) -> Node:
        slot = int(_cli(self.nodes[0].port, "cluster", "keyslot", key))
        for n in self.masters():
            for line in _cli(n.port, "cluster", "nodes").splitlines():
                if "myself" in line and "master" in line:
                    for part in line.split()[8:]:
                        lo, _, hi = part.partition("-")
                        if lo.isdigit() and int(lo) <= slot <= int(hi or lo):
                            return n
        raise AssertionError(f"no master serves slot {slot}")

    def healthy(self) -> bool:
        live = [n for n in self.nodes if n.proc.poll() is None]
        return len(self.masters()) == 3 and all(
            "cluster_state:ok" in _cli(n.port, "cluster", "info") for n in live
        )

    def wait_healthy(self, within: float = 30.0) -> None:
        _wait("the cluster", self.healthy, within)

    def node_id(self, node: Node) -> str:
        return _cli(node.port, "cluster", "myid")

    def replica_of(self, master: Node) -> Node:
        mid = self.node_id(master)
        for n in self.nodes:
            mine = [ln for ln in _cli(n.port, "cluster", "nodes").splitlines() if "myself" in ln]
            parts = mine[0].split() if mine else []
            if len(parts) > 3 and "slave" in parts[2] and parts[3] == mid:
                return n
        raise AssertionError("the master has no replica")

    def wait_role(self, node: Node, role: str, within: float = 30.0) -> None:
        _wait(
            f"{node.port} to become {role}",
            lambda: f"role:{role}" in _cli(node.port, "info", "replication") and self.healthy(),
            within,
        )


@contextlib.contextmanager
def redis_cluster() -> Iterator[Cluster]:
    """Six redis-server in cluster mode, joined as three masters with a replica each."""
    binary("redis-cli", "redis-tools")
    root = Path(tempfile.mkdtemp(prefix="claimgate-cluster-"))
    nodes: list[Node] = []
    try:
        for i in range(6):
            port = free_port()
            nodes.append(
                _redis(
                    root / str(i),
                    port,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    # The bus's own free port: the default (port + 10000) may be taken or past 65535.
                    "--cluster-port",
                    str(free_port()),
                    # Fast failover for the tests; production keeps the default 15 s.
                    "--cluster-node-timeout",
                    "1000",
                    "--cluster-replica-validity-factor",
                    "0",
                )
            )
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        cluster = Cluster(nodes)
        _wait("the cluster", cluster.healthy, 30)
        yield cluster
    finally:
        for n in nodes:
            n.kill()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class SentinelSet:
    master: Node
    replica: Node
    sentinels: list[Node]
    name: str = "cgmaster"

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.name}/0"

    def current_master_port(self) -> int:
        out = _cli(self.sentinels[0].port, "sentinel", "get-master-addr-by-name", self.name)
        return int(out.split()[1])

    def wait_master(self, port: int, within: float = 30.0) -> None:
        _wait(
            f"sentinels to promote {port}",
            lambda: (
                self.current_master_port() == port
                and "role:master" in _cli(port, "info", "replication")
            ),
            within,
        )


@contextlib.contextmanager
def redis_sentinel() -> Iterator[SentinelSet]:
    """One master, one replica and three sentinels (quorum 2) watching them."""
    sentinel_bin = shutil.which("redis-sentinel")
    if sentinel_bin is None:
        pytest.skip("redis-sentinel not installed (Debian package redis-sentinel)")
    root = Path(tempfile.mkdtemp(prefix="claimgate-sentinel-"))
    nodes: list[Node] = []
    try:
        master = _redis(root / "m", free_port())
        nodes.append(master)
        replica = _redis(root / "r", free_port(), "--replicaof", "127.0.0.1", str(master.port))
        nodes.append(replica)
        _wait(
            "replication",
            lambda: "master_link_status:up" in _cli(replica.port, "info", "replication"),
        )
        sentinels = []
        for i in range(3):
            folder = root / f"s{i}"
            folder.mkdir()
            port = free_port()
            conf = folder / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {folder}\n"
                f"sentinel monitor cgmaster 127.0.0.1 {master.port} 2\n"
                "sentinel down-after-milliseconds cgmaster 1000\n"
                "sentinel failover-timeout cgmaster 5000\n"
                "sentinel parallel-syncs cgmaster 1\n"
            )
            args = [sentinel_bin, str(conf)]
            proc = subprocess.Popen(args, cwd=folder, stdout=subprocess.DEVNULL)
            s = Node(port, proc, folder, args)
            nodes.append(s)
            sentinels.append(s)
            _wait(f"sentinel on {port}", lambda p=port: _cli(p, "ping") == "PONG")
        found = SentinelSet(master, replica, sentinels)
        _wait(
            "sentinels to see each other",
            lambda: all(
                "num-other-sentinels\n2" in _cli(s.port, "sentinel", "master", "cgmaster")
                for s in sentinels
            ),
            30,
        )
        yield found
    finally:
        for n in nodes:
            n.kill()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Bouncer:
    port: int
    proc: subprocess.Popen[bytes]

    def url_for(self, database_url: str) -> str:
        u = make_url(database_url)
        return u.set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)


@contextlib.contextmanager
def pgbouncer(database_url: str) -> Iterator[Bouncer]:
    """PgBouncer in transaction mode in front of the test database's server."""
    exe = binary("pgbouncer", "pgbouncer")
    u = make_url(database_url)
    root = Path(tempfile.mkdtemp(prefix="claimgate-pgbouncer-"))
    port = free_port()
    users = root / "users.txt"
    users.write_text(f'"{u.username or "postgres"}" ""\n')
    conf = root / "pgbouncer.ini"
    conf.write_text(
        "[databases]\n"
        f"* = host={u.host or '127.0.0.1'} port={u.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {users}\n"
        "pool_mode = transaction\nmax_client_conn = 500\ndefault_pool_size = 20\n"
        "ignore_startup_parameters = extra_float_digits\n"
        f"logfile = {root / 'pgbouncer.log'}\npidfile = {root / 'pgbouncer.pid'}\n"
    )
    shutil.chown(root, "postgres") if _as_root() else None
    for f in root.iterdir():
        if _as_root():
            shutil.chown(f, "postgres")
    cmd = [exe, str(conf)]
    if _as_root():  # pgbouncer refuses to run as root
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def up() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True

        _wait("pgbouncer", up)
        yield Bouncer(port, proc)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


def _as_root() -> bool:
    import os

    return os.geteuid() == 0
