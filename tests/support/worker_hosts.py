"""Worker hosts on one machine: network namespaces, each with a network stack of its own.

`count` namespaces hang off one bridge of their own, like machines on a LAN: the machine itself is
the bridge's gateway address (10.231.N.1; the RabbitMQ cluster listens there too, and so do
forwarders to the database and Redis, which listen on the machine's loopback only), host i is
10.231.N.(10 + i). A process started with `argv(i, ...)` sees only its host's interfaces: it
reaches the broker over the bridge as it would over a network. Needs root (`ip netns`).

`stop()` deletes the namespaces (their veth ends go with them), the bridge and the forwarders,
also after a failed start.
"""

from __future__ import annotations

import ipaddress
import json
import random
import shutil
import subprocess
import uuid

from tests.support.processes import ManagedProcess, free_port, wait_until


class WorkerHosts:
    def __init__(self, count: int) -> None:
        self.count = count
        self.token = uuid.uuid4().hex[:6]
        self.bridge = f"cb{self.token}"
        self.namespaces = [f"cwh{self.token}{index}" for index in range(count)]
        self.subnet = _unused_subnet()
        self.gateway = str(self.subnet.network_address + 1)
        self.addresses = [str(self.subnet.network_address + 10 + index) for index in range(count)]
        self.forwarders: list[ManagedProcess] = []
        self._made: list[tuple[str, str]] = []  # ("netns" | "link", name), to undo

    def __enter__(self) -> WorkerHosts:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> WorkerHosts:
        try:
            prefix = self.subnet.prefixlen
            _ip("link", "add", self.bridge, "type", "bridge")
            self._made.append(("link", self.bridge))
            _ip("addr", "add", f"{self.gateway}/{prefix}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for index, (namespace, address) in enumerate(zip(self.namespaces, self.addresses, strict=True)):
                outside, inside = f"cv{self.token}{index}h", f"cv{self.token}{index}n"
                _ip("netns", "add", namespace)
                self._made.append(("netns", namespace))
                _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
                self._made.append(("link", outside))
                _ip("link", "set", inside, "netns", namespace)
                _ip("link", "set", outside, "master", self.bridge, "up")
                _ip("-n", namespace, "addr", "add", f"{address}/{prefix}", "dev", inside)
                _ip("-n", namespace, "link", "set", inside, "up")
                _ip("-n", namespace, "link", "set", "lo", "up")
        except BaseException:
            self.stop()
            raise
        return self

    def forward(self, host: str, port: int) -> int:
        """A TCP forwarder on the gateway to host:port on the machine (a service that listens on
        loopback only); returns the gateway port the worker hosts connect to."""
        listen = free_port()
        argv = [
            shutil.which("socat") or "socat",
            f"TCP-LISTEN:{listen},bind={self.gateway},reuseaddr,fork",
            f"TCP:{host}:{port}",
        ]
        forwarder = ManagedProcess(argv, {}, f"forward-{port}")
        self.forwarders.append(forwarder)
        wait_until(lambda: _listening(self.gateway, listen), timeout=10, what=f"socat on {listen}")
        return listen

    def argv(self, index: int, argv: list[str]) -> list[str]:
        """`argv` run on worker host `index` (inside its namespace)."""
        return ["ip", "netns", "exec", self.namespaces[index], *argv]

    def stop(self) -> None:
        for forwarder in self.forwarders:
            forwarder.stop(timeout=2)
        self.forwarders.clear()
        for kind, name in reversed(self._made):
            if kind == "netns":
                subprocess.run(["ip", "netns", "del", name], capture_output=True)
            else:
                subprocess.run(["ip", "link", "del", name], capture_output=True)
        self._made.clear()


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _listening(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _unused_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.231.0.0/16 that no interface of the machine is on."""
    shown = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout
    taken = [
        ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}", strict=False)
        for link in json.loads(shown)
        for info in link.get("addr_info", [])
        if info.get("family") == "inet"
    ]
    candidates = [ipaddress.ip_network(f"10.231.{third}.0/24") for third in range(256)]
    random.shuffle(candidates)
    return next(net for net in candidates if not any(net.overlaps(other) for other in taken))
