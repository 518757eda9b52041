"""A private RabbitMQ cluster for tests: ``deploy/cluster.sh`` writes it, the harness runs it.

The script is the one a person uses to try logfan on a cluster; the tests share it rather than
copy it: ``cluster.sh init`` writes each node's folder (cookie, config, ``node.env``),
``cluster.sh run-node N`` runs a node in the foreground and ``cluster.sh join`` clusters them
(``stop_app``, ``join_cluster FIRST``, ``start_app``). Here the names are random, the ports are
chosen free, and each node is a ``RabbitNode`` (``rabbitnode.py``): started under ``setpriv
--pdeathsig`` so a crashed test run leaves no node behind, stopped, killed or restarted one by
one. The shared broker on 127.0.0.1:5672 is never touched: other names, ports and cookie.

    with rabbit_cluster(tmp_path) as cluster:      # three nodes, clustered
        cluster.urls(first=1)                      # the node URLs, node 1 first
        cluster.nodes[1].stop(); cluster.nodes[1].start()   # it rejoins by itself
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

from rabbitnode import CTL, RabbitNode, clean_environ, pick_ports

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_SH = ROOT / "deploy" / "cluster.sh"


def read_node_env(path: Path) -> dict[str, str]:
    """The ``KEY='value'`` lines of a ``node.env`` written by ``cluster.sh init``."""
    env: dict[str, str] = {}
    for word in shlex.split(path.read_text(), comments=True):
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"{path}: not KEY=VALUE: {word!r}")
        env[key] = value
    return env


class RabbitCluster:
    """``size`` private nodes in ``base``, clustered by ``deploy/cluster.sh``."""

    def __init__(self, base: Path, size: int = 3) -> None:
        self.base = base
        self.size = size
        ports = pick_ports(2 * size)
        self.script_env = {
            **clean_environ(),
            "LOGFAN_CLUSTER_DIR": str(base),
            "LOGFAN_CLUSTER_NAME": f"lftest-{secrets.token_hex(3)}",
            "LOGFAN_CLUSTER_NODES": str(size),
            "LOGFAN_CLUSTER_PORTS": " ".join(map(str, ports[:size])),
            "LOGFAN_CLUSTER_DIST_PORTS": " ".join(map(str, ports[size:])),
            "LOGFAN_RABBITMQ_BIN": str(Path(CTL).parent),
        }
        self.script("init")
        self.nodes = [
            RabbitNode(
                base / f"node{n}",
                env={**self.script_env, **read_node_env(base / f"node{n}" / "node.env")},
                argv=[str(CLUSTER_SH), "run-node", str(n)],
            )
            for n in range(1, size + 1)
        ]

    def script(self, *args: str, timeout: float = 180.0) -> str:
        """Run ``cluster.sh ARGS`` on this cluster; its output, or RuntimeError."""
        done = subprocess.run(
            [str(CLUSTER_SH), *args],
            env=self.script_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"cluster.sh {' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def start(self, timeout: float = 120.0) -> RabbitCluster:
        """Boot every node at once, then cluster them; return once all run as one cluster."""
        for node in self.nodes:
            node.launch(timeout)
        for node in self.nodes:
            node.wait_ready(timeout)
        self.script("join", timeout=timeout)
        running = self.running_nodes()
        if running != {node.name for node in self.nodes}:
            raise RuntimeError(f"cluster not formed: running nodes {sorted(running)}")
        return self

    def running_nodes(self, via: int | None = None) -> set[str]:
        """The nodes the cluster says are running (asked of node ``via``, else any running)."""
        asked = [self.nodes[via]] if via is not None else [n for n in self.nodes if n.running()]
        for node in asked:
            done = node.ctl("cluster_status", "--formatter", "json")
            if done.returncode == 0:
                return set(json.loads(done.stdout)["running_nodes"])
        return set()

    def urls(self, first: int = 0) -> list[str]:
        """Every node's AMQP URL, node ``first`` first, then the others in order."""
        order = self.nodes[first:] + self.nodes[:first]
        return [node.url for node in order]

    def ctl(self, *args: str) -> str:
        """``rabbitmqctl ARGS`` on a running node; its output, or RuntimeError."""
        for node in self.nodes:
            if node.running():
                done = node.ctl(*args)
                if done.returncode == 0:
                    return done.stdout
                raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stdout}{done.stderr}")
        raise RuntimeError("no node of the cluster is running")

    def queue_types(self) -> dict[str, str]:
        """Each queue's type (``classic``, ``quorum``), as the cluster reports it."""
        rows = self.ctl("list_queues", "name", "type", "--no-table-headers")
        return dict(row.split("\t")[:2] for row in rows.splitlines() if "\t" in row)

    def connections(self) -> list[int]:
        """For each client connection in the cluster, the AMQP port it is connected to."""
        rows = self.ctl("list_connections", "name", "--no-table-headers")
        # a connection's name is "CLIENT_IP:PORT -> SERVER_IP:PORT"
        return [int(row.rsplit(":", 1)[1]) for row in rows.splitlines() if "->" in row]

    def close(self) -> None:
        """Kill every node (idempotent); only ``base`` holds anything of the cluster."""
        for node in self.nodes:
            node.close()


@contextlib.contextmanager
def rabbit_cluster(base: Path, size: int = 3) -> Iterator[RabbitCluster]:
    """A cluster of ``size`` private nodes in ``base``, started; always killed at the end."""
    cluster = RabbitCluster(base, size)
    try:
        yield cluster.start()
    finally:
        cluster.close()
