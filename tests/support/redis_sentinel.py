"""A Redis Sentinel set of the test's own on loopback ports: one master, one replica and three
Sentinels, every one a real `redis-server` (Sentinel is `redis-server --sentinel`), with the
Sentinel timing an operator sets in production (docs/brokers.md, "Redis with Sentinel")."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import redis

from tests.support.processes import ManagedProcess, free_port, redis_server_binary, wait_until

MASTER_NAME = "platform"
# What docs/brokers.md tells an operator to set, unshortened: the master is judged down after 5 s
# without an answer, by 2 of the 3 Sentinels.
DOWN_AFTER_MILLISECONDS = 5000
FAILOVER_TIMEOUT_MILLISECONDS = 60000
QUORUM = 2


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class SentinelSet:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="redis-sentinel-test-"))
        self.master_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.servers: dict[int, ManagedProcess] = {}
        self.sentinels: list[ManagedProcess] = []

    # --- what the platform is given ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """REDIS_URL (and CELERY_BROKER_URL) naming the three Sentinels, database 0."""
        return ";".join(f"sentinel://127.0.0.1:{port}" for port in self.sentinel_ports) + "/0"

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": self.url, "CELERY_BROKER_URL": self.url, "REDIS_SENTINEL_MASTER": MASTER_NAME}

    # --- the processes ------------------------------------------------------------------------------

    def _server(self, port: int, *extra: str) -> ManagedProcess:
        data = self.dir / str(port)
        data.mkdir()
        argv = [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            # As production runs a broker's Redis (docs/brokers.md): an append-only file fsynced
            # every second, nothing evicted.
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            # Replicas announce themselves as Sentinels and clients must reach them.
            "--replica-announce-ip",
            "127.0.0.1",
            *extra,
        ]
        process = ManagedProcess(argv, dict(os.environ), f"redis-{port}")
        self.servers[port] = process
        wait_until(lambda: _pings(self.client(port)), timeout=10, what=f"redis-server on {port}")
        return process

    def _sentinel(self, port: int) -> ManagedProcess:
        config = self.dir / f"sentinel-{port}.conf"  # Sentinel rewrites its file: one each, writable
        config.write_text(
            "\n".join(
                [
                    f"port {port}",
                    "bind 127.0.0.1",
                    f"dir {self.dir}",
                    "sentinel announce-ip 127.0.0.1",
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} {QUORUM}",
                    f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MILLISECONDS}",
                    f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MILLISECONDS}",
                    f"sentinel parallel-syncs {MASTER_NAME} 1",
                    "",
                ]
            )
        )
        process = ManagedProcess(
            [redis_server_binary(), str(config), "--sentinel"], dict(os.environ), f"sentinel-{port}"
        )
        wait_until(lambda: _pings(self.client(port)), timeout=10, what=f"sentinel on {port}")
        return process

    def start(self) -> SentinelSet:
        self._server(self.master_port)
        self._server(self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        wait_until(self._replica_in_sync, timeout=30, what="the replica to sync")
        self.sentinels = [self._sentinel(port) for port in self.sentinel_ports]
        # Ready once every Sentinel knows the replica and the two other Sentinels (they find each
        # other through the master's hello channel, within a few seconds).
        wait_until(self._sentinels_agree, timeout=60, interval=0.2, what="the Sentinels to find each other")
        return self

    def stop(self) -> None:
        for process in [*self.sentinels, *self.servers.values()]:
            process.stop()

    # --- looking at it ------------------------------------------------------------------------------

    @staticmethod
    def client(port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)

    def master_by_sentinels(self) -> int | None:
        """The master's port as a majority of the Sentinels give it (None while they disagree)."""
        ports = []
        for port in self.sentinel_ports:
            try:
                address = self.client(port).sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis.RedisError:
                continue
            if address:
                ports.append(int(address[1]))
        for candidate in set(ports):
            if ports.count(candidate) >= QUORUM:
                return candidate
        return None

    def _replica_in_sync(self) -> bool:
        try:
            info = self.client(self.replica_port).info("replication")
        except redis.RedisError:
            return False
        return info.get("master_link_status") == "up"

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            try:
                master = self.client(port).sentinel_master(MASTER_NAME)
            except redis.RedisError:
                return False
            if int(master.get("num-other-sentinels", 0)) < 2 or int(master.get("num-slaves", 0)) < 1:
                return False
        return True

    def kill_master(self) -> None:
        """SIGKILL the master: a crashed host, nothing flushed, no goodbye to anyone."""
        process = self.servers[self.master_port]
        process.kill()
        process.proc.wait(5)

    def promoted(self) -> bool:
        """The replica is master now, by the Sentinels' word and by its own."""
        if self.master_by_sentinels() != self.replica_port:
            return False
        try:
            return self.client(self.replica_port).info("replication").get("role") == "master"
        except redis.RedisError:
            return False
