"""What a cluster run takes from the training section, and what it leaves out.

Every worker reads the same project; these functions say which settings the
cluster loop (:mod:`engine.train.distributed.loop`) uses, how many epochs it trains,
its global batch, the metrics it reports, and the fingerprint every worker must share.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from engine.train.config import METRICS, Emit, batch_size_of, find_key, split_typed

_IGNORED = {
    "class_weight": ((None,), "class_weight is not applied in a cluster run"),
    "steps_per_execution": (
        (1, "auto"),
        "steps_per_execution is ignored in a cluster run (one step at a time)",
    ),
    "precision": (("float32",), "a cluster run trains in float32; precision is ignored"),
    "jit_compile": (("auto",), "jit_compile is ignored in a cluster run"),
}
"""Section keys the cluster loop does not use: (values that need no warning, warning)."""


def ignored_settings(section: dict[str, Any]) -> list[str]:
    """Warnings for the section's settings a cluster run leaves out."""
    notes = [
        note
        for key, (fine, note) in _IGNORED.items()
        if section.get(key) is not None and section.get(key) not in fine
    ]
    schedule = section.get("schedule")
    if isinstance(schedule, dict) and str(schedule.get("type", "")).lower() == "reduce_on_plateau":
        notes.append(
            "the reduce_on_plateau schedule is not applied in a cluster run (the "
            "learning rate stays constant)"
        )
    return notes


def fingerprint(project: dict[str, Any]) -> int:
    """A 48-bit hash of what every worker must agree on: graph, data and training
    (without epochs, device and the cluster's addresses, which may differ)."""
    training = {
        k: v
        for k, v in (project.get("training") or {}).items()
        if k not in ("epochs", "device", "cluster")
    }
    cluster = (project.get("training") or {}).get("cluster") or {}
    training["global_batch_size"] = (
        cluster.get("global_batch_size") if isinstance(cluster, dict) else None
    )
    text = json.dumps(
        {"graph": project.get("graph"), "data": project.get("data"), "training": training},
        sort_keys=True,
        default=str,
    )
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def global_batch_of(section: dict[str, Any]) -> int:
    """The cluster's ``global_batch_size``, else the section's ``batch_size``."""
    cluster = section.get("cluster") or {}
    value = cluster.get("global_batch_size") if isinstance(cluster, dict) else None
    return int(value) if value else batch_size_of(section)


def metric_names(section: dict[str, Any], kind: str, warn: Emit | None) -> tuple[str, ...]:
    """The metrics a cluster run reports: accuracy for classification, mae/mse/rmse
    for regression when asked; others are left out with a warning."""
    wanted = []
    for m in section.get("metrics", []):
        name = find_key(split_typed(m, "metric")[0], METRICS)
        if name:
            wanted.append(name)
    if kind != "regression":
        out = ("accuracy",)
    else:
        out = tuple(n for n in wanted if n in ("mae", "mse", "rmse"))
    left = [n for n in wanted if n not in out]
    if left and warn is not None:
        warn(
            {
                "event": "warning",
                "message": f"metric(s) {', '.join(left)} are not computed "
                "in a cluster run; loss and " + (", ".join(out) or "nothing else") + " are",
            }
        )
    return out
