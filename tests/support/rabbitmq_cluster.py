"""A RabbitMQ cluster of a test's own: N nodes of the machine's `rabbitmq-server`, clustered.

Nothing is shared with the machine's RabbitMQ node (rabbit@localhost on 5672, which other
tests use): every node has its own node name, AMQP and distribution ports, data, log and
config files under one temporary directory, and the cluster has its own Erlang cookie and its
own epmd (a private port, so no registration outlives the cluster). The cookie is found the
way Erlang finds it, in $HOME/.erlang.cookie, with HOME pointing into the temporary directory
for the servers and for every CLI call, so the machine's cookie is never read or written.

Start-up (about 20 s on two busy cores): the first node boots, then the others boot together and
join it as they boot (peer discovery with a classic config that names the first node), which
spares them a second start of the app and eight CLI calls (each CLI call costs about a second of
CPU). A node that booted on its own anyway is joined by hand (stop_app, reset, join_cluster,
start_app). `stop()` SIGKILLs every node's process group and the epmd and removes the directory;
it also runs after a failed start.

The Debian package's /usr/sbin/rabbitmqctl re-runs itself as the `rabbitmq` user (with that
user's HOME and cookie) when called as root, so the scripts are run from
/usr/lib/rabbitmq/bin, the package's unwrapped copies, when they are there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import ManagedProcess, free_port, wait_until

UNWRAPPED_SCRIPTS = Path("/usr/lib/rabbitmq/bin")
# rabbitmq.conf keys the harness sets itself for each node.
HARNESS_KEYS = ("listeners.", "cluster_formation.", "log.")


def rabbitmq_script(name: str) -> str | None:
    """Path of a RabbitMQ script (rabbitmq-server, rabbitmqctl, ...), None if not installed."""
    unwrapped = UNWRAPPED_SCRIPTS / name
    if unwrapped.exists():
        return str(unwrapped)
    return shutil.which(name)


def rabbitmq_installed() -> bool:
    return bool(rabbitmq_script("rabbitmq-server") and rabbitmq_script("rabbitmqctl") and _epmd_binary())


def _epmd_binary() -> str | None:
    found = shutil.which("epmd")
    if found:
        return found
    candidates = sorted(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"))
    return str(candidates[-1]) if candidates else None


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class RabbitNode:
    index: int
    name: str  # Erlang node name, e.g. clu3f9a1cn1@localhost
    amqp_port: int
    dist_port: int
    base: Path
    process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.url_at("127.0.0.1")

    def url_at(self, address: str) -> str:
        return f"amqp://guest:guest@{address}:{self.amqp_port}//"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.proc.poll() is None

    @property
    def log_file(self) -> Path:
        return self.base / "log" / f"{self.name}.log"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no log at {self.log_file})"


class CommandFailed(RuntimeError):
    pass


class RabbitCluster:
    """`size` clustered RabbitMQ nodes on loopback, disposable. Use as a context manager or
    call start() and stop() (stop is safe to call more than once, and after a failed start)."""

    def __init__(self, size: int = 3, *, server_config: str = "", listen_on: tuple[str, ...] = ()) -> None:
        """`server_config`: rabbitmq.conf lines for every node (e.g. production's,
        ops/rabbitmq/rabbitmq.conf); its listeners, cluster_formation and log lines are
        replaced by the harness's. Every node listens on 127.0.0.1 and on each `listen_on`
        address (e.g. a bridge that worker hosts in network namespaces reach it through)."""
        self.size = size
        self.server_config = server_config
        self.listen_on = listen_on
        self.token = uuid.uuid4().hex[:6]
        self.dir: Path | None = None
        self.epmd: ManagedProcess | None = None
        self.epmd_port = 0
        self.nodes: list[RabbitNode] = []
        self.timings: dict[str, float] = {}

    # --- life cycle ------------------------------------------------------------------------

    def __enter__(self) -> RabbitCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, *, timeout: float = 90) -> RabbitCluster:
        began = time.monotonic()
        try:
            self._prepare()
            self._start_epmd()
            seed, others = self.nodes[0], self.nodes[1:]
            self._boot(seed)
            self._await_boot(seed, timeout=timeout)
            self.timings["seed"] = time.monotonic() - began
            # The others boot together and join the running seed as they boot (peer discovery,
            # classic config naming the seed): no second boot of the app, no CLI call.
            for node in others:
                self._boot(node)
            for node in others:
                self._await_boot(node, timeout=timeout)
            self._join_stragglers()
            self.timings["start"] = time.monotonic() - began
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None:
                node.process.kill(signal.SIGKILL)
                try:
                    node.process.proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        if self.epmd is not None:
            self.epmd.kill(signal.SIGKILL)
            self.epmd.proc.wait(10)
            self.epmd = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def _prepare(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"rabbit-cluster-{self.token}-"))
        home = self.dir / "home"
        home.mkdir()
        cookie = home / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)
        # An empty env file instead of /etc/rabbitmq/rabbitmq-env.conf (which names the
        # machine's node); no plugins.
        (self.dir / "rabbitmq-env.conf").write_text("")
        (self.dir / "enabled_plugins").write_text("[].\n")
        self.epmd_port = free_port()
        used = {self.epmd_port}
        for index in range(1, self.size + 1):
            amqp_port, dist_port = _distinct_free_ports(2, used)
            base = self.dir / f"n{index}"
            (base / "log").mkdir(parents=True)
            node = RabbitNode(
                index=index,
                name=f"clu{self.token}n{index}@localhost",
                amqp_port=amqp_port,
                dist_port=dist_port,
                base=base,
            )
            (base / "rabbitmq.conf").write_text(self._node_config(node))
            self.nodes.append(node)

    def _node_config(self, node: RabbitNode) -> str:
        """The harness's own lines (where to listen, whom to join, where to log), then
        `server_config` without the lines the harness owns."""
        seed = self.nodes[0] if self.nodes else node
        lines = [f"listeners.tcp.default = 127.0.0.1:{node.amqp_port}"]
        lines += [
            f"listeners.tcp.{n} = {address}:{node.amqp_port}" for n, address in enumerate(self.listen_on, 2)
        ]
        if node is not seed:
            lines += [
                "cluster_formation.peer_discovery_backend = classic_config",
                f"cluster_formation.classic_config.nodes.1 = {seed.name}",
                "cluster_formation.randomized_startup_delay_range.min = 0",
                "cluster_formation.randomized_startup_delay_range.max = 0",
            ]
        lines += ["log.console = false", "log.file.level = info"]
        lines += [
            line for line in self.server_config.splitlines() if not line.strip().startswith(HARNESS_KEYS)
        ]
        return "\n".join(lines) + "\n"

    def _base_env(self) -> dict[str, str]:
        assert self.dir is not None
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("RABBITMQ_", "ERL_")) and key != "HOME"
        }
        env.update(
            HOME=str(self.dir / "home"),
            RABBITMQ_CONF_ENV_FILE=str(self.dir / "rabbitmq-env.conf"),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env

    def _node_env(self, node: RabbitNode) -> dict[str, str]:
        env = self._base_env()
        env.update(
            RABBITMQ_NODENAME=node.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(node.amqp_port),
            RABBITMQ_DIST_PORT=str(node.dist_port),
            RABBITMQ_CONFIG_FILE=str(node.base / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(node.base / "advanced.config"),
            RABBITMQ_MNESIA_BASE=str(node.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(node.base / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.dir / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(node.base / "rabbitmq.pid"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        return env

    def _start_epmd(self) -> None:
        argv = [_epmd_binary(), "-port", str(self.epmd_port), "-address", "127.0.0.1"]
        self.epmd = ManagedProcess(argv, self._base_env(), "epmd")
        wait_until(lambda: _accepts(self.epmd_port), timeout=10, what="the cluster's epmd")

    def _boot(self, node: RabbitNode) -> None:
        node.process = ManagedProcess(
            [rabbitmq_script("rabbitmq-server")], self._node_env(node), node.name.split("@")[0]
        )

    def _await_boot(self, node: RabbitNode, *, timeout: float) -> None:
        wait_until(
            lambda: _accepts(node.amqp_port) or not node.alive,
            timeout=timeout,
            interval=0.2,
            what=lambda: f"{node.name} to accept AMQP connections\n{node.log_tail()}",
        )
        if not node.alive:
            raise RuntimeError(f"{node.name} exited while booting:\n{node.process.tail()}\n{node.log_tail()}")

    def _join_stragglers(self) -> None:
        """Join by hand (stop_app, reset, join_cluster, start_app) any node that booted on its
        own instead of joining the seed; then wait until the seed sees every node running."""
        seed = self.nodes[0]
        running = set(self.running_nodes(via=seed))
        for node in self.nodes[1:]:
            if node.name in running:
                continue
            self.timings["joined_by_hand"] = self.timings.get("joined_by_hand", 0) + 1
            self.ctl(node, "stop_app")
            self.ctl(node, "reset")
            self.ctl(node, "join_cluster", seed.name)
            self.ctl(node, "start_app")
            self._await_boot(node, timeout=60)
        self.ctl(seed, "await_online_nodes", str(self.size), timeout=60)

    # --- operations ------------------------------------------------------------------------

    def ctl(self, node: RabbitNode, *args: str, tool: str = "rabbitmqctl", timeout: float = 60) -> str:
        """Run a RabbitMQ CLI command against `node`; its standard output."""
        argv = [rabbitmq_script(tool), "-n", node.name, *args]
        done = subprocess.run(argv, env=self._base_env(), capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise CommandFailed(
                f"{' '.join(argv[1:])} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )
        return done.stdout

    def failover_url(self, nodes: list[RabbitNode] | None = None, *, address: str = "127.0.0.1") -> str:
        """The broker URL a client uses to reach the cluster: every node, ';'-separated
        (kombu connects to the first that answers and moves on to the next when it is lost)."""
        return ";".join(node.url_at(address) for node in (nodes or self.nodes))

    def running(self) -> list[RabbitNode]:
        return [node for node in self.nodes if node.alive]

    def node_named(self, name: str) -> RabbitNode:
        return next(node for node in self.nodes if node.name == name)

    def queues(self, via: RabbitNode | None = None) -> dict[str, dict]:
        """Every queue of the default vhost: {name: {type, leader, members, online, messages}},
        asked of `via` (or the first running node)."""
        via = via or self.running()[0]
        out = self.ctl(
            via,
            "list_queues",
            "name",
            "type",
            "leader",
            "members",
            "online",
            "messages",
            "--formatter",
            "json",
        )
        return {row["name"]: row for row in json.loads(out)}

    def running_nodes(self, via: RabbitNode | None = None) -> list[str]:
        via = via or self.running()[0]
        out = self.ctl(via, "cluster_status", "--formatter", "json")
        return sorted(json.loads(out)["running_nodes"])

    def kill(self, node: RabbitNode) -> None:
        """SIGKILL the node's whole process group (the Erlang VM and its helpers): the node is
        gone at once, as when its machine dies, without telling its peers."""
        assert node.process is not None
        node.process.kill(signal.SIGKILL)
        node.process.proc.wait(10)


def _distinct_free_ports(count: int, used: set[int]) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in used:
            used.add(port)
            ports.append(port)
    return ports
