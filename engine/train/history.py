"""A project's run history: what each run was, and how two runs differ.

Run directories are written by the training engine and named by
:func:`engine.train.runs.new_run_dir`; this module reads them (including
``origin.json``, the start time and project file of a run the window started). The
one thing it writes: a ``status.json`` still saying ``running`` although no process
holds the run (killed with its caller) is repaired to an interrupted stop, taking
the run's lock for the moment (:func:`engine.train.runs.repair_status`).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.train.config import monitor_mode
from engine.train.lock import RunDirBusy, acquire, lock_state
from engine.train.runs import (
    ORIGIN,
    interrupted_status,
    read_history,
    read_json,
    repair_status,
    stale_running,
)

STATUS_NAMES = {"done": "finished", "stopped": "stopped", "failed": "failed", "running": "running"}
_STAMP = re.compile(r"(\d{8}-\d{6})")

# Short names for settings in one-line summaries ("lr 0.001→0.01").
_SHORT = {
    "learning_rate": "lr",
    "batch_size": "batch",
    "validation_split": "val split",
    "test_split": "test split",
    "early_stopping": "early stop",
    "steps_per_execution": "steps/exec",
    "jit_compile": "XLA",
}


@dataclass
class RunInfo:
    """One run as the history shows it.

    Attributes:
        run_dir: The run directory.
        name: The project name in the run's snapshot.
        started: When the run began (local time).
        duration_s: How long it ran (until now while it runs), or None if unknown.
        status: ``finished``, ``stopped``, ``failed`` or ``running``.
        epochs: Epochs trained.
        best: Best value of each validation metric (``val_loss`` lowest,
            ``val_accuracy`` highest, ...).
        settings: The snapshot's ``training`` and ``data`` sections.
        message: Why a failed run failed, or how a stopped one was interrupted.
        kind: The kind of failure or stop (``died``, ``interrupted``, ``killed``,
            ``signal``, ``nan``, ...), "" when it ended normally.
        has_checkpoint: ``checkpoints/last.keras`` exists (the run can be resumed).
        has_model: ``model.keras`` exists (it can be evaluated and exported).
        has_evaluation: ``evaluation.json`` exists.
        fine_tune_from: The first epoch of phase 2 of a run that fine-tuned (the
            training section's ``fine_tune``), 0 when it did not (yet).
    """

    run_dir: Path
    name: str
    started: datetime
    duration_s: float | None
    status: str
    epochs: int
    best: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    kind: str = ""
    has_checkpoint: bool = False
    has_model: bool = False
    has_evaluation: bool = False
    fine_tune_from: int = 0

    @property
    def best_val_loss(self) -> float | None:
        return self.best.get("val_loss")

    @property
    def best_val_accuracy(self) -> float | None:
        return self.best.get("val_accuracy")

    @property
    def can_resume(self) -> bool:
        """A stopped run, or one whose process died or could not write, with a last
        checkpoint to go on from."""
        if not self.has_checkpoint:
            return False
        return self.status == "stopped" or (
            self.status == "failed" and self.kind in ("died", "disk")
        )


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _started(run_dir: Path) -> float:
    origin = read_json(run_dir / ORIGIN)
    if isinstance(origin, dict) and isinstance(origin.get("created"), (int, float)):
        return float(origin["created"])
    match = _STAMP.search(run_dir.name)
    if match:
        try:
            return time.mktime(time.strptime(match.group(1), "%Y%m%d-%H%M%S"))
        except ValueError:
            pass
    return _mtime(run_dir / "project.json") or _mtime(run_dir) or 0.0


def best_metrics(history: dict[str, list[float]]) -> dict[str, float]:
    """Best value of each ``val_*`` series: highest for accuracy-like, else lowest."""
    best = {}
    for key, values in history.items():
        if not key.startswith("val_"):
            continue
        finite = [
            float(v)
            for v in values
            if isinstance(v, (int, float)) and v == v and abs(v) != float("inf")
        ]
        if finite:
            best[key] = max(finite) if monitor_mode(key) == "max" else min(finite)
    return best


def read_run_info(run_dir: str | os.PathLike) -> RunInfo:
    """What one run directory holds, as a :class:`RunInfo` (missing files are tolerated)."""
    run_dir = Path(run_dir)
    project = read_json(run_dir / "project.json") or {}
    status = read_json(run_dir / "status.json")
    if stale_running(run_dir, status):
        status = _repaired(run_dir, status)
    has_model = (run_dir / "model.keras").is_file()
    history = read_history(run_dir)
    if isinstance(status, dict):
        state = STATUS_NAMES.get(status.get("state"), "failed")
        message = str(status.get("message", ""))
        kind = str(status.get("kind") or "")
    else:
        live = lock_state(run_dir)[0] in ("held", "elsewhere")
        state = "finished" if has_model else "running" if live else "stopped"
        message, kind = "", ""
    start = _started(run_dir)
    if state == "running":
        duration = max(0.0, time.time() - start)
    else:
        end = _mtime(run_dir / "status.json") or _mtime(run_dir / "model.keras")
        duration = max(0.0, end - start) if end else None
    epochs = status.get("epochs_done") if isinstance(status, dict) else None
    if not isinstance(epochs, int):
        epochs = max((len(v) for v in history.values()), default=0)
    fine_tune_from = status.get("fine_tune_from") if isinstance(status, dict) else None
    if not isinstance(fine_tune_from, int):  # running, or ended without writing it
        ckpt = read_json(run_dir / "checkpoints" / "state.json")
        fine_tune_from = ckpt.get("fine_tune_from") if isinstance(ckpt, dict) else None
    return RunInfo(
        run_dir=run_dir,
        name=str(project.get("name", run_dir.name)),
        started=datetime.fromtimestamp(start),
        duration_s=duration,
        status=state,
        epochs=epochs,
        best=best_metrics(history),
        settings={"training": project.get("training") or {}, "data": project.get("data") or {}},
        message=message,
        kind=kind,
        has_checkpoint=(run_dir / "checkpoints" / "last.keras").is_file(),
        has_model=has_model,
        has_evaluation=(run_dir / "evaluation.json").is_file(),
        fine_tune_from=fine_tune_from if isinstance(fine_tune_from, int) else 0,
    )


def _repaired(run_dir: Path, status: dict[str, Any]) -> dict[str, Any]:
    """A stale ``running`` status as an interrupted stop; written back when the run's
    lock can be had (else only shown so)."""
    with contextlib.suppress(RunDirBusy, OSError):
        with acquire(run_dir):
            repair_status(run_dir)
            fixed = read_json(run_dir / "status.json")
            if isinstance(fixed, dict) and fixed.get("state") != "running":
                return fixed
    return interrupted_status(run_dir, status)


def list_runs(root: str | os.PathLike) -> list[RunInfo]:
    """Every run directory directly under ``root``, newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [
        read_run_info(d) for d in root.iterdir() if d.is_dir() and (d / "project.json").is_file()
    ]
    runs.sort(key=lambda r: (r.started, r.run_dir.name), reverse=True)
    return runs


# ---------------------------------------------------------------------------- differences


def _snapshot(run: Any) -> dict[str, Any]:
    if isinstance(run, RunInfo):
        run = run.run_dir
    if isinstance(run, dict):
        return run
    data = read_json(Path(run) / "project.json")
    return data if isinstance(data, dict) else {}


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            _flatten(sub, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def _section_key_order(key: str) -> tuple[int, str]:
    return (0 if key.startswith("training.") else 1, key)


def settings_diff(run_a: Any, run_b: Any) -> list[tuple[str, Any, Any]]:
    """Training and data settings that differ from run ``a`` to run ``b``.

    Args:
        run_a, run_b: Run directories (or :class:`RunInfo`, or project dicts).

    Returns:
        ``(key, old, new)`` with dotted keys such as ``training.optimizer.learning_rate``;
        a value missing on one side is None. Training keys come first.
    """
    flat_a: dict[str, Any] = {}
    flat_b: dict[str, Any] = {}
    for flat, snap in ((flat_a, _snapshot(run_a)), (flat_b, _snapshot(run_b))):
        for section in ("training", "data"):
            _flatten(snap.get(section) or {}, section, flat)
    keys = sorted(set(flat_a) | set(flat_b), key=_section_key_order)
    return [(k, flat_a.get(k), flat_b.get(k)) for k in keys if flat_a.get(k) != flat_b.get(k)]


def _nodes(snap: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nodes = (snap.get("graph") or {}).get("nodes") or []
    return {n["id"]: n for n in nodes if isinstance(n, dict) and "id" in n}


def _inputs(snap: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for e in (snap.get("graph") or {}).get("edges") or []:
        if isinstance(e, dict):
            out.setdefault(e.get("target"), []).append((int(e.get("port", 0)), e.get("source")))
    return {k: [s for _, s in sorted(v)] for k, v in out.items()}


def value_text(value: Any) -> str:
    """A setting's value in a few characters (``0.001``, ``[3, 3]``, ``Adam``, ``—``)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return str(value)


def layer_diff(run_a: Any, run_b: Any) -> list[str]:
    """Layers added, removed, changed or rewired from run ``a``'s model to run ``b``'s.

    Returns:
        One line per layer, e.g. ``"added drop (Dropout)"``, ``"removed conv2 (Conv2D)"``,
        ``"changed dense (Dense): units 32→64, activation relu→tanh"``,
        ``"rewired out (Dense): inputs flat → drop"``.
    """
    a, b = _snapshot(run_a), _snapshot(run_b)
    nodes_a, nodes_b = _nodes(a), _nodes(b)
    inputs_a, inputs_b = _inputs(a), _inputs(b)
    lines = []
    for nid, node in nodes_b.items():
        if nid not in nodes_a:
            lines.append(f"added {nid} ({node.get('type')})")
    for nid, node in nodes_a.items():
        if nid not in nodes_b:
            lines.append(f"removed {nid} ({node.get('type')})")
    for nid, old in nodes_a.items():
        new = nodes_b.get(nid)
        if new is None:
            continue
        kind = new.get("type")
        if old.get("type") != kind:
            lines.append(f"changed {nid}: type {old.get('type')}→{kind}")
            continue
        pa, pb = old.get("params") or {}, new.get("params") or {}
        changes = [
            f"{k} {value_text(pa.get(k))}→{value_text(pb.get(k))}"
            for k in sorted(set(pa) | set(pb))
            if pa.get(k) != pb.get(k)
        ]
        if changes:
            lines.append(f"changed {nid} ({kind}): {', '.join(changes)}")
        ia, ib = inputs_a.get(nid, []), inputs_b.get(nid, [])
        if ia != ib:
            lines.append(
                f"rewired {nid} ({kind}): inputs {', '.join(ia) or 'none'} → "
                f"{', '.join(ib) or 'none'}"
            )
    return lines


def short_key(key: str) -> str:
    """``training.optimizer.learning_rate`` -> ``lr``; ``data.source`` -> ``source``."""
    parts = key.split(".")[1:] or key.split(".")
    if parts[0] == "optimizer" and parts[-1] == "type":
        return "optimizer"
    if parts[-1] == "type" and len(parts) > 1:
        return parts[-2]
    last = parts[-1]
    return _SHORT.get(last, last.replace("_", " "))


def change_summary(run_a: Any, run_b: Any, limit: int = 4) -> str:
    """A short line of what changed from ``a`` to ``b``: ``"lr 0.001→0.01, epochs 10→20"``.

    Layer changes are counted at the end (``"+1 layer, 2 layers changed"``).
    """
    parts = [
        f"{short_key(k)} {value_text(old)}→{value_text(new)}"
        for k, old, new in settings_diff(run_a, run_b)
    ]
    layers = layer_diff(run_a, run_b)
    added = sum(line.startswith("added") for line in layers)
    removed = sum(line.startswith("removed") for line in layers)
    changed = len({line.split()[1] for line in layers if line.startswith(("changed", "rewired"))})
    extra = []
    if added:
        extra.append(f"+{added} layer{'s' if added > 1 else ''}")
    if removed:
        extra.append(f"−{removed} layer{'s' if removed > 1 else ''}")
    if changed:
        extra.append(f"{changed} layer{'s' if changed > 1 else ''} changed")
    if len(parts) > limit:
        parts = parts[:limit] + [f"+{len(parts) - limit} more"]
    return ", ".join(parts + extra)


def when_text(started: datetime, now: datetime | None = None) -> str:
    """``"today 14:05"``, ``"yesterday 09:12"`` or ``"3 Mar 2026 14:05"``."""
    now = now or datetime.now()
    days = (now.date() - started.date()).days
    clock = started.strftime("%H:%M:%S")
    if days == 0:
        return f"today {clock}"
    if days == 1:
        return f"yesterday {clock}"
    return f"{started.day} {started.strftime('%b %Y')} {started.strftime('%H:%M')}"


def metric_label(key: str) -> str:
    """``val_accuracy`` -> ``val accuracy``."""
    return key.replace("_", " ")


def base_dir_of(run_dir: str | os.PathLike) -> Path | None:
    """The folder a run's relative data paths are resolved against (its project's)."""
    run_dir = Path(run_dir)
    origin = read_json(run_dir / ORIGIN)
    if isinstance(origin, dict) and origin.get("project"):
        return Path(origin["project"]).parent
    if run_dir.parent.name.endswith("-runs"):
        return run_dir.parent.parent
    return None
