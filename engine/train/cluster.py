"""A cluster's settings: addresses, ``TF_CONFIG``, the ``cluster`` object, commands,
and the shard plan (which samples each worker reads in an epoch of streamed data).

Checks and turns ``--cluster`` values, the training section's ``cluster`` object and
``TF_CONFIG`` into worker addresses, and writes the commands that start the other
workers. No TensorFlow, no processes: :mod:`engine.train.distributed.run` runs the
cluster. The training section's checks (:mod:`engine.train.config`) use it, so it
imports nothing else of :mod:`engine.train`.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shlex
import socket
from typing import Any

import numpy as np

DEFAULT_TIMEOUT_S = 60.0
"""Collective timeout: a step waiting longer than this for a peer fails."""
DEFAULT_JOIN_TIMEOUT_S = 300.0
"""How long the chief waits for every worker to be started."""
CLUSTER_KEYS = (
    "workers",
    "global_batch_size",
    "timeout_s",
    "join_timeout_s",
    "checkpoint_interval_s",
)

_ADDRESS = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.\-]+):(\d{1,5})$")


class ClusterError(Exception):
    """A cluster request that cannot work (bad addresses, index, TF_CONFIG)."""


def parse_cluster(cluster: str | list[str]) -> list[str]:
    """``"a:1,b:2"`` or ``["a:1", "b:2"]`` -> checked addresses, in index order.

    Raises:
        ClusterError: Naming the first address that is not ``host:port``.
    """
    items = cluster.split(",") if isinstance(cluster, str) else list(cluster)
    workers = [str(w).strip() for w in items if str(w).strip()]
    if not workers:
        raise ClusterError("the cluster lists no worker; give HOST:PORT,HOST:PORT,...")
    for w in workers:
        m = _ADDRESS.match(w)
        if not m or not 1 <= int(m.group(2)) <= 65535:
            raise ClusterError(f"cluster address {w!r} is not HOST:PORT (a port 1-65535)")
    dupes = sorted({w for w in workers if workers.count(w) > 1})
    if dupes:
        raise ClusterError(f"cluster address {dupes[0]} is listed twice")
    return workers


def cluster_problems(cluster: Any) -> list[str]:
    """Everything wrong with a training section's ``cluster`` object (no TensorFlow)."""
    if cluster is None:
        return []
    if not isinstance(cluster, dict):
        return [f"cluster must be an object; got {cluster!r}"]
    problems = [
        f"cluster has no key '{k}'; it takes {', '.join(CLUSTER_KEYS)}"
        for k in cluster
        if k not in CLUSTER_KEYS
    ]
    if "workers" in cluster:
        try:
            parse_cluster(cluster["workers"])
        except ClusterError as exc:
            problems.append(str(exc))
    gbs = cluster.get("global_batch_size")
    if gbs is not None and (not isinstance(gbs, int) or isinstance(gbs, bool) or gbs < 1):
        problems.append(f"cluster global_batch_size must be a whole number >= 1; got {gbs!r}")
    for key in ("timeout_s", "join_timeout_s", "checkpoint_interval_s"):
        v, low = cluster.get(key), 0 if key == "checkpoint_interval_s" else 1e-9
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < low):
            problems.append(
                f"cluster {key} must be a number of seconds "
                f"{'>= 0' if low == 0 else '> 0'}; got {v!r}"
            )
    return problems


def tf_config(workers: list[str], index: int) -> dict[str, Any]:
    """The ``TF_CONFIG`` of worker ``index`` (worker 0 is the chief)."""
    return {"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": index}}


def from_tf_config(text: str) -> tuple[list[str], int]:
    """(addresses with the chief first, this task's index) from a ``TF_CONFIG`` text."""
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        chiefs, workers = list(cluster.get("chief") or []), list(cluster.get("worker") or [])
        index = int(task["index"]) + (len(chiefs) if task["type"] == "worker" else 0)
    except (ValueError, KeyError, TypeError) as exc:
        raise ClusterError(
            f"TF_CONFIG is not a cluster and task description ({exc}); got {text[:200]!r}"
        ) from exc
    return parse_cluster(chiefs + workers), index


def resolve_cluster(
    spec: str, index: int | None, section: dict[str, Any]
) -> tuple[list[str], int, dict[str, Any]]:
    """The addresses, this worker's index and its TF_CONFIG for a ``--cluster`` value.

    Args:
        spec: ``HOST:PORT,...``; ``project`` (the section's ``cluster.workers``);
            ``env`` (``TF_CONFIG`` from the environment, kept as it is).
        index: ``--index`` (ignored with ``env``).
        section: The project's training section.
    """
    spec = (spec or "").strip()
    if spec.lower() == "env":
        text = os.environ.get("TF_CONFIG", "")
        if not text:
            raise ClusterError("--cluster env: TF_CONFIG is not set in the environment")
        workers, index = from_tf_config(text)
        return workers, index, json.loads(text)
    if spec.lower() == "project":
        cluster = section.get("cluster") or {}
        if not isinstance(cluster, dict) or not cluster.get("workers"):
            raise ClusterError(
                "--cluster project: the project's training section has no cluster.workers list"
            )
        workers = parse_cluster(cluster["workers"])
    else:
        workers = parse_cluster(spec)
    index = 0 if index is None else index
    if not 0 <= index < len(workers):
        raise ClusterError(
            f"--index {index} is outside the cluster's {len(workers)} "
            f"worker(s) (0 to {len(workers) - 1})"
        )
    return workers, index, tf_config(workers, index)


def worker_commands(
    project_path: str | os.PathLike, cluster: str | list[str], index: int = 0
) -> list[str]:
    """The command to start on each other machine, in index order.

    Args:
        project_path: The project file as the other machines see it.
        cluster: The addresses (``"a:1,b:2"`` or a list).
        index: The machine this is (its own command is left out).
    """
    workers = parse_cluster(cluster)
    joined = ",".join(workers)
    return [
        f"layerlab worker {shlex.quote(str(project_path))} --cluster {joined} --index {i}"
        for i in range(len(workers))
        if i != index
    ]


def resume_command(run_dir: str | os.PathLike, workers: list[str]) -> str:
    """The chief's command that continues a run from its last checkpoint."""
    return (
        f"layerlab train --resume {shlex.quote(str(run_dir))} --cluster "
        f"{','.join(workers)} --index 0"
    )


def split_address(address: str) -> tuple[str, int]:
    """``"host:port"`` (or ``"[v6]:port"``) -> (host, port)."""
    host, port = address.rsplit(":", 1)
    return host.strip("[]"), int(port)


def knock(address: str, timeout: float = 1.0) -> bool:
    """Whether something accepts a TCP connection at ``address``."""
    try:
        with socket.create_connection(split_address(address), timeout=timeout):
            return True
    except OSError:
        return False


_HTTP2_GREETING = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
"""An HTTP/2 client preface plus an empty SETTINGS frame: a live gRPC server replies."""


def answers(address: str, timeout: float = 2.0) -> bool | None:
    """Whether the worker at ``address`` is alive: True when its gRPC server replies to an
    HTTP/2 greeting, False when the port is open but nothing replies within ``timeout``
    (a process that is stopped or hung: the kernel still accepts its connections), None
    when nothing listens there (the process is gone)."""
    try:
        with socket.create_connection(split_address(address), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(_HTTP2_GREETING)
            return bool(s.recv(16))
    except TimeoutError:
        return False
    except OSError:
        return None


def free_ports(n: int) -> list[int]:
    """``n`` loopback ports that are free right now (for trying a cluster on one machine)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_taken(address: str) -> bool:
    """Whether this machine's port of ``address`` is already listened on."""
    port = split_address(address)[1]
    for family, host in ((socket.AF_INET, ""), (socket.AF_INET6, "::")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
    return False


def named_workers(workers: list[str], indices: list[int]) -> str:
    """``"a:1 (worker 0, the chief), b:2 (worker 1)"`` for the workers at ``indices``."""
    return ", ".join(f"{workers[i]} (worker {i}{', the chief' if i == 0 else ''})" for i in indices)


# ------------------------------------------------------------------- shards of a split


def worker_batch(global_batch: int, workers: int) -> int:
    """Samples each worker reads per step: ``ceil(global_batch / workers)``."""
    return max(1, -(-int(global_batch) // max(1, int(workers))))


def shard_plan(n: int, workers: int, global_batch: int, seed: int | None) -> list[np.ndarray]:
    """Which samples of a split each worker reads in one epoch, in reading order.

    The split's positions ``0..n-1`` are put in a seeded order (``seed`` None: in
    order; pass the run's seed plus the epoch, so every epoch reshuffles and every
    worker computes the same order); step ``s`` trains on the global batch
    ``order[s*B:(s+1)*B]``, and worker ``i`` reads its ``i``-th slice of
    :func:`worker_batch` samples of it. Every position is in exactly one worker's
    plan: the union over workers is the whole split each epoch, no sample twice. A
    global batch that divides evenly by the workers gives every worker the same
    share of every step (otherwise the last worker's slices are shorter).

    Returns:
        One int64 array of positions per worker (index ``i`` is worker ``i``'s).
    """
    n, workers, global_batch = int(n), max(1, int(workers)), max(1, int(global_batch))
    order = (
        np.arange(n, dtype=np.int64)
        if seed is None
        else np.random.default_rng(int(seed)).permutation(n).astype(np.int64)
    )
    owner = (np.arange(n, dtype=np.int64) % global_batch) // worker_batch(global_batch, workers)
    return [order[owner == i] for i in range(workers)]
