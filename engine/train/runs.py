"""Run directories: where they go, how they are named, what one training leaves
behind, and how it is written. (What a run was, read back for the history, and how
two runs differ: :mod:`engine.train.history`.)

A project's runs are keyed by its FILE, not its name (:func:`runs_root`):
``<project folder>/<stem>-runs`` next to a saved project, a folder of its own for an
unsaved one, moved to the file's folder on its first save (:func:`adopt_runs`).
:func:`project_run_dir` makes the next run's folder there,
``<runs_root>/<YYYYmmdd-HHMMSS>`` with ``origin.json``, for the window's Train button
and ``layerlab train PROJECT`` alike; :func:`new_run_dir` names a fresh folder
(``<stem>-<YYYYmmdd-HHMMSS>`` when given a stem).

A run directory holds::

    origin.json           (runs started from the window) start time, project file

    project.json          the project snapshot the run trained
    model.keras           the final model, optimizer state included
    checkpoints/last.keras, checkpoints/best.keras, checkpoints/state.json
    history.json, history.csv   one value per epoch for each metric
    evaluation.json       metrics on validation/test; for classification a confusion
                          matrix, per-class precision/recall/F1 and sample predictions
    status.json           running | done | stopped | failed
    events.jsonl          every event but the per-batch ones (and boundary fields)
    error.log             the traceback of an unexpected failure
    worker.log            the training process's output
    logs/                 TensorBoard scalars (train/ and validation/)
    run.lock              while a run uses the folder (:mod:`engine.train.lock`)

Every file is written through :mod:`engine.files` (a temporary file in the same
folder, synced, then renamed), so a crash or a full disk never leaves half a file:
the previous checkpoint stays whole. Only :func:`save_model_atomic`, :func:`evaluate`
and :class:`TensorBoardWriter` touch TensorFlow, inside functions.

What a hard stop leaves is put right when the folder is next used
(:func:`claim_run_dir`, under the run's lock): a ``status.json`` still saying
``running`` becomes ``stopped`` (interrupted), history rows past the last checkpoint
are dropped on resume (one row per epoch), and a run stopped before its first
checkpoint starts again from scratch in the same folder.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import time
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.files import atomic_path, write_atomic
from engine.train.lock import lock_state

RUN_MARKERS = ("model.keras", "checkpoints", "history.json")
"""Files whose presence means a folder already holds a run."""

SAMPLE_PREDICTIONS = 8
MAX_EVAL_SAMPLES = 10_000


ENV_ROOT = "LAYERLAB_RUNS_DIR"
"""Environment variable that moves every project's runs (from the window) under one
folder (tests)."""

ORIGIN = "origin.json"
"""Written by :func:`new_run_dir` when it creates a folder: the start time and the
project file the run came from."""


def safe_name(name: str) -> str:
    """``name`` as a folder name: letters, digits, ``-`` and ``_`` only."""
    text = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.strip())
    return re.sub("-{2,}", "-", text).strip("-") or "untitled"


def file_key(path: str | os.PathLike) -> str:
    """The folder name that keys a project FILE's runs under one shared folder
    (``$LAYERLAB_RUNS_DIR``): its stem and a short hash of its resolved absolute
    path, ``iris-3f2a1c``. Two files with one stem (or one name inside) never share."""
    resolved = Path(path).expanduser().resolve()
    digest = hashlib.sha1(str(resolved).encode("utf-8", "surrogateescape")).hexdigest()
    return f"{safe_name(resolved.stem)}-{digest[:6]}"


_UNSAVED: dict[int, tuple[weakref.ref[Any], str]] = {}


def unsaved_key(project: Any) -> str:
    """The folder name of an unsaved project's runs: its name, the time it was first
    asked for and a random tag (``Untitled-20261204-174501-3f2a``), the same for one
    project object for as long as it lives, never shared by two projects (two File >
    New in one session, or two windows)."""
    entry = _UNSAVED.get(id(project))
    if entry is not None and entry[0]() is project:
        return entry[1]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    key = f"{safe_name(getattr(project, 'name', '') or 'untitled')}-{stamp}-{secrets.token_hex(2)}"
    pid = id(project)
    try:
        ref = weakref.ref(project, lambda _ref: _UNSAVED.pop(pid, None))
    except TypeError:  # not weak-referenceable: a fresh key each time
        return key
    _UNSAVED[pid] = (ref, key)
    return key


def runs_root(project: Any, app_data: str | os.PathLike | None = None) -> Path:
    """Where a project's runs go (not created): keyed by the project's FILE, never
    by its name, for the window and ``layerlab train`` alike.

    - a saved project: ``<project folder>/<file stem>-runs``, next to the file (it
      travels with the project's folder); with ``$LAYERLAB_RUNS_DIR`` set,
      ``$LAYERLAB_RUNS_DIR/<stem>-<hash of the path>`` (:func:`file_key`);
    - an unsaved project: its own folder for this session, ``<app_data>/runs/<key>``
      (or ``$LAYERLAB_RUNS_DIR/<key>``; :func:`unsaved_key`); ``app_data`` is the
      app's data folder (None: ``./runs``). Its first save moves them
      (:func:`adopt_runs`).
    """
    override = os.environ.get(ENV_ROOT)
    path = getattr(project, "path", None)
    if path:
        path = Path(path)
        if override:
            return Path(override) / file_key(path)
        return path.parent / f"{path.stem}-runs"
    key = unsaved_key(project)
    if override:
        return Path(override) / key
    return (Path(app_data) / "runs" if app_data is not None else Path("runs")) / key


def project_run_dir(
    project: Any, app_data: str | os.PathLike | None = None, *, create: bool = True
) -> Path:
    """The folder for the next run of ``project``: ``<runs_root>/<YYYYmmdd-HHMMSS>``, the
    one rule for the window's Train button and ``layerlab train PROJECT`` (without
    ``--out``). ``create``: make it now with ``origin.json`` naming the project file
    (the window); else only choose it (the command line: a run refused before it
    starts leaves no empty folder)."""
    return new_run_dir(
        None,
        runs_root(project, app_data),
        create=create,
        project_file=getattr(project, "path", None),
    )


def _starting(run: Path) -> bool:
    """A run folder made moments ago whose process has not taken it yet."""
    if (run / "project.json").exists():
        return False
    try:
        return time.time() - (run / ORIGIN).stat().st_mtime < STARTING_S
    except OSError:
        return False


STARTING_S = 60.0
"""How long a new run folder with no snapshot yet counts as taken (:func:`adopt_runs`)."""


def adopt_runs(old_root: Path, new_root: Path) -> tuple[list[Path], list[Path]]:
    """Move the runs under ``old_root`` to ``new_root`` (a project's runs from before
    its first save go with it to its file's folder). A run in use (its lock held) stays
    where it is; a name taken in ``new_root`` gets ``-2``, ``-3``... ``old_root`` is
    removed when nothing is left in it.

    Returns:
        The runs moved (their new folders) and the runs left where they were.
    """
    old_root, new_root = Path(old_root), Path(new_root)
    moved: list[Path] = []
    kept: list[Path] = []
    if not old_root.is_dir() or old_root.resolve() == new_root.resolve():
        return moved, kept
    for run in sorted(old_root.iterdir()):
        if not run.is_dir() or run.is_symlink():
            continue
        if lock_state(run)[0] in ("held", "elsewhere") or _starting(run):
            kept.append(run)
            continue
        new_root.mkdir(parents=True, exist_ok=True)
        target, n = new_root / run.name, 2
        while target.exists():
            target, n = new_root / f"{run.name}-{n}", n + 1
        try:
            shutil.move(str(run), str(target))
        except OSError:
            kept.append(run)
            continue
        moved.append(target)
    with contextlib.suppress(OSError):
        old_root.rmdir()
    return moved, kept


def new_run_dir(
    project_name: str | os.PathLike | None,
    root: str | os.PathLike = "runs",
    *,
    create: bool = False,
    project_file: str | os.PathLike | None = None,
) -> Path:
    """A fresh run folder under ``root``: ``<stem>-<YYYYmmdd-HHMMSS>``, then ``-2``, ``-3``...

    Args:
        project_name: A file or name whose stem starts the folder name. None: the
            time stamp alone (:func:`project_run_dir`, under :func:`runs_root`).
        root: The folder that holds the runs.
        create: Create the folder now (race-free) and write ``origin.json`` in it:
            the start time and ``project_file``. Otherwise the path is only chosen
            (:func:`prepare_run_dir` creates it when the run starts).
        project_file: The project file the run comes from (``origin.json``).
    """
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    if project_name is None:
        base = Path(root) / stamp
    else:
        stem = Path(project_name).stem or "run"
        stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in stem).strip("-") or "run"
        base = Path(root) / f"{stem}-{stamp}"
    if not create:
        path, n = base, 2
        while path.exists():
            path, n = Path(f"{base}-{n}"), n + 1
        return path
    Path(root).mkdir(parents=True, exist_ok=True)
    path, n = base, 2
    while True:
        try:
            path.mkdir()
            break
        except FileExistsError:
            path, n = Path(f"{base}-{n}"), n + 1
    origin = {"created": now, "project": str(project_file) if project_file else None}
    write_atomic(path / ORIGIN, json.dumps(origin, indent=1) + "\n")
    return path


def has_checkpoint(run_dir: Path) -> bool:
    """``checkpoints/last.keras`` exists: the run can be resumed."""
    return (Path(run_dir) / "checkpoints" / "last.keras").is_file()


def unstarted(run_dir: Path) -> bool:
    """``run_dir`` holds a run that ended before its first checkpoint (and left no
    model): nothing in it can be resumed, so it may start again from scratch."""
    run_dir = Path(run_dir)
    return (
        run_dir.is_dir()
        and any((run_dir / m).exists() for m in RUN_MARKERS)
        and not has_checkpoint(run_dir)
        and not (run_dir / "model.keras").exists()
    )


def run_dir_problem(run_dir: Path, resume: bool) -> str | None:
    """Why ``run_dir`` cannot take this run (a fresh run into an old one, a resume of
    nothing), or None. A run stopped before its first checkpoint is no problem either
    way: it starts again from scratch (:func:`claim_run_dir`)."""
    if unstarted(run_dir):
        return None
    if resume:
        if not has_checkpoint(run_dir):
            return f"{run_dir} has no checkpoints/last.keras to resume from"
        return None
    if run_dir.is_dir() and any((run_dir / m).exists() for m in RUN_MARKERS):
        return f"{run_dir} already holds a run; choose another output folder, or resume it"
    return None


STARTED_OVER = (
    "history.json",
    "history.csv",
    "status.json",
    "evaluation.json",
    "error.log",
    "events.jsonl",
    "checkpoints",
    "logs",
)
"""What :func:`claim_run_dir` removes from a run that never reached a checkpoint."""


def claim_run_dir(run_dir: Path, resume: bool) -> tuple[bool, list[str]]:
    """Put right what a hard stop left in ``run_dir``, before a run starts in it.

    Call it holding the folder's lock (:func:`engine.train.lock.acquire`), after
    :func:`run_dir_problem` found nothing wrong:

    - a ``status.json`` still saying ``running`` is rewritten as an interrupted stop;
    - a run that ended before its first checkpoint is cleared (:data:`STARTED_OVER`;
      ``project.json``, ``origin.json`` and ``worker.log`` stay) and starts again, fresh
      even when a resume was asked for.

    Returns:
        Whether the run resumes, and notes saying what was done.
    """
    notes = []
    repaired = repair_status(run_dir)
    if repaired:
        notes.append(repaired)
    if unstarted(run_dir):
        for name in STARTED_OVER:
            path = run_dir / name
            with contextlib.suppress(FileNotFoundError):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        notes.append(
            f"{run_dir} held a run stopped before its first checkpoint; it starts again "
            "from scratch in the same folder"
        )
        return False, notes
    return resume, notes


def interrupted_status(run_dir: Path, status: dict[str, Any]) -> dict[str, Any]:
    """The ``status.json`` a run gets when it was found ``running`` with no live
    process: ``stopped``, ``interrupted``, ``epochs_done`` = the last checkpoint's."""
    epoch = checkpoint_epoch(run_dir)
    pid = status.get("pid")
    who = f"its process ({pid})" if pid else "its process"
    kept = (
        f"epochs 1-{epoch} are kept in checkpoints/last.keras"
        if epoch and has_checkpoint(run_dir)
        else "no checkpoint was written"
    )
    return {
        "state": "stopped",
        "interrupted": True,
        "kind": "interrupted",
        "message": f"interrupted: {who} ended without finishing the run; {kept}",
        "epochs_done": epoch if has_checkpoint(run_dir) else 0,
        "time": status.get("time") or time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def stale_running(run_dir: Path, status: Any) -> bool:
    """``status`` says ``running`` but no live process holds ``run_dir``'s lock."""
    if not isinstance(status, dict) or status.get("state") != "running":
        return False
    return lock_state(run_dir)[0] not in ("held", "elsewhere")


def repair_status(run_dir: Path) -> str | None:
    """Rewrite a stale ``running`` status (see :func:`stale_running`) as an interrupted
    stop; returns a note saying so, or None when there was nothing to repair. Call it
    holding the lock, or when nobody holds it."""
    run_dir = Path(run_dir)
    status = read_json(run_dir / "status.json")
    if not isinstance(status, dict) or status.get("state") != "running":
        return None
    fixed = interrupted_status(run_dir, status)
    with contextlib.suppress(OSError):
        write_json(run_dir / "status.json", fixed)
    return f"the previous run in {run_dir} was {fixed['message']}"


def checkpoint_epoch(run_dir: Path) -> int:
    """The epoch ``checkpoints/last.keras`` holds (its ``state.json``), 0 if none."""
    state = read_json(Path(run_dir) / "checkpoints" / "state.json")
    epoch = state.get("epoch") if isinstance(state, dict) else None
    return epoch if isinstance(epoch, int) and epoch > 0 else 0


def prepare_run_dir(run_dir: Path, project: dict[str, Any], resume: bool) -> dict[str, Any]:
    """Create the folders, write the project snapshot; return the checkpoint state.

    Returns:
        ``checkpoints/state.json`` of a resumed run (``epoch``, ``monitor``, ``best``),
        else an empty dict.
    """
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "project.json", project)
    if not resume:
        return {}
    state = read_json(run_dir / "checkpoints" / "state.json") or {}
    if "epoch" not in state:
        history = read_history(run_dir)
        state["epoch"] = max((len(v) for v in history.values()), default=0)
    return state


def resumed_history(run_dir: Path, epochs: int) -> dict[str, list[float]]:
    """The history of a run resumed from the checkpoint of epoch ``epochs``: rows past
    it (epochs trained after the last checkpoint, before a hard stop) are dropped, on
    disk too, so the resumed run adds exactly one row per epoch."""
    history = read_history(run_dir)
    cut = {k: v[:epochs] for k, v in history.items()}
    if cut != history:
        write_history(run_dir, cut)
    return cut


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` (through :func:`engine.files.write_atomic`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=1, default=_json_default) + "\n")


def read_json(path: Path) -> Any:
    """Parsed JSON at ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _json_default(value: Any) -> Any:
    try:
        return value.item() if hasattr(value, "item") else value.tolist()
    except Exception:
        return str(value)


def save_model_atomic(model: Any, path: Path) -> None:
    """``model.save`` to a temporary ``.keras`` next to ``path``, then replace ``path``
    (:func:`engine.files.atomic_path`): a failure (a full disk) leaves ``path`` as it was
    and no temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path, suffix=".keras") as tmp:
            model.save(tmp)
    except OSError as exc:
        if exc.filename or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def write_history(run_dir: Path, history: dict[str, list[float]]) -> None:
    """``history.json`` (metric -> values) and ``history.csv`` (one row per epoch)."""
    write_json(run_dir / "history.json", history)
    keys = list(history)
    rows = max((len(v) for v in history.values()), default=0)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for i in range(rows):
        writer.writerow([i + 1, *(_cell(history[k], i) for k in keys)])
    write_atomic(run_dir / "history.csv", buf.getvalue())


def _cell(values: list[float], i: int) -> str:
    return repr(values[i]) if i < len(values) else ""


def read_history(run_dir: Path) -> dict[str, list[float]]:
    data = read_json(Path(run_dir) / "history.json")
    return {k: list(v) for k, v in data.items()} if isinstance(data, dict) else {}


def write_status(run_dir: Path, state: str, **info: Any) -> None:
    """``status.json``: ``running``, ``done``, ``stopped`` or ``failed`` with details
    (and the writer's ``pid``)."""
    with contextlib.suppress(OSError):
        write_json(
            Path(run_dir) / "status.json",
            {
                "state": state,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "pid": os.getpid(),
                **info,
            },
        )


class EventLog:
    """Appends every event but ``batch`` to ``events.jsonl`` (a failed run keeps its story)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "events.jsonl"
        self._file: Any = None

    def write(self, event: dict[str, Any]) -> None:
        if event.get("event") in ("batch", "boundary"):  # boundary: a picture per epoch
            return
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")
            self._file.write(json.dumps(event, default=_json_default) + "\n")
            self._file.flush()
        except OSError:
            pass

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class TensorBoardWriter:
    """Epoch scalars for TensorBoard under ``logs/train`` and ``logs/validation``.

    Written with ``tf.summary.write`` and scalar metadata, so TensorBoard itself
    need not be installed (Keras's callback needs it); tags follow Keras
    (``epoch_loss``, ``epoch_accuracy``, ...).
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self._writers: dict[str, Any] = {}
        self._metadata: Any = None

    def __call__(self, epoch: int, logs: dict[str, float]) -> None:
        import tensorflow as tf

        if self._metadata is None:
            from tensorflow.core.framework import summary_pb2

            self._metadata = summary_pb2.SummaryMetadata()
            self._metadata.plugin_data.plugin_name = "scalars"
        for key, value in logs.items():
            split, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            writer = self._writers.get(split)
            if writer is None:
                writer = self._writers[split] = tf.summary.create_file_writer(
                    str(self.log_dir / split)
                )
            with writer.as_default():
                tf.summary.write(
                    f"epoch_{name}",
                    tf.constant(float(value), tf.float32),
                    step=epoch,
                    metadata=self._metadata,
                )
        for writer in self._writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


# ---------------------------------------------------------------------------- evaluation


def evaluate(
    model: Any,
    ds: Any,
    loss: str,
    batch_size: int,
    *,
    labels_for_loss: Callable[..., Any],
    run_dir: Path | None = None,
    from_logits: bool = False,
    measured: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Metrics on the validation and test splits, plus classification details.

    Args:
        model: The trained, compiled model.
        ds: The dataset (numpy splits, ``task``, ``num_classes``, ``class_names``).
        loss: The loss name (decides the label form given to ``model.evaluate``).
        batch_size: Batch size for evaluation and prediction.
        labels_for_loss: ``engine.data.dataset.labels_for_loss``.
        run_dir: Where ``evaluation.json`` goes (not written when None).
        from_logits: The model outputs logits rather than probabilities.
        measured: ``{split: metrics}`` already measured with these very weights (the
            last epoch's validation): that split is not read again.

    Returns:
        ``{"validation": {...}, "test": {...}, "details": {...}}`` (splits that exist).
    """
    out: dict[str, Any] = {}
    detail_split = None
    for split in ("validation", "test"):
        if not ds.count(split):
            continue
        if measured and split in measured:
            metrics = measured[split]
        else:
            y_loss = labels_for_loss(ds.targets(split), loss, ds.num_classes)
            if ds.streamed:  # batch by batch, as training read it
                x, y_loss = ds.batches(split, batch_size, labels=y_loss), None
            else:
                x = ds.inputs(split)
            with warnings.catch_warnings():  # a stream's length is known once it ends
                warnings.filterwarnings("ignore", message=".*ran out of data")
                metrics = model.evaluate(
                    x, y_loss, batch_size=batch_size, verbose=0, return_dict=True
                )
        out[split] = {
            "samples": ds.count(split),
            "metrics": {k: _finite(v) for k, v in metrics.items()},
        }
        detail_split = split
    split = detail_split or "train"
    pred, y = ds.predictions(model, split, MAX_EVAL_SAMPLES, batch_size)
    y = np.asarray(y)
    if not isinstance(pred, (list, tuple, dict)):
        pred = np.asarray(pred, dtype=np.float64)
        if ds.task == "classification":
            out["details"] = _classification(pred, y, ds, from_logits)
        else:
            out["details"] = _regression(pred, y)
        out["details"]["split"] = split
    if run_dir is not None:
        write_json(Path(run_dir) / "evaluation.json", out)
    return out


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _classification(pred: Any, y: Any, ds: Any, from_logits: bool) -> dict[str, Any]:
    if pred.ndim == 1 or pred.shape[-1] == 1:
        p = pred.reshape(len(pred))
        if from_logits:
            p = 1 / (1 + np.exp(-p))
        predicted = (p > 0.5).astype(int)
        confidence = np.where(predicted == 1, p, 1 - p)
    else:
        p = pred.reshape(len(pred), -1)
        if from_logits:
            p = np.exp(p - p.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
        predicted = p.argmax(-1)
        confidence = p.max(-1)
    true = y.argmax(-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(len(y))
    true = true.astype(int)
    k = max(
        int(ds.num_classes or 0), int(true.max(initial=0)) + 1, int(predicted.max(initial=0)) + 1
    )
    names = list(ds.class_names or [])
    names += [str(i) for i in range(len(names), k)]
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (true, predicted), 1)
    per_class = []
    for i in range(k):
        tp, col, row = cm[i, i], cm[:, i].sum(), cm[i, :].sum()
        precision = tp / col if col else 0.0
        recall = tp / row if row else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append(
            {
                "class": names[i],
                "precision": round(float(precision), 4),
                "recall": round(float(recall), 4),
                "f1": round(float(f1), 4),
                "support": int(row),
            }
        )
    samples = [
        {
            "index": i,
            "true": names[true[i]],
            "predicted": names[predicted[i]],
            "confidence": round(float(confidence[i]), 4),
        }
        for i in range(min(SAMPLE_PREDICTIONS, len(true)))
    ]
    return {
        "samples": int(len(true)),
        "accuracy": round(float((true == predicted).mean()), 4),
        "class_names": names,
        "confusion_matrix": cm.tolist(),
        "per_class": per_class,
        "predictions": samples,
    }


def _regression(pred: Any, y: Any) -> dict[str, Any]:
    y = y.astype(np.float64).reshape(len(y), -1)
    p = pred.reshape(len(pred), -1)
    if p.shape != y.shape:
        return {"samples": int(len(y))}
    err = p - y
    samples = [
        {"index": i, "true": _vals(y[i]), "predicted": _vals(p[i])}
        for i in range(min(SAMPLE_PREDICTIONS, len(y)))
    ]
    return {
        "samples": int(len(y)),
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "predictions": samples,
    }


def _vals(row: Any) -> float | list[float]:
    values = [round(float(v), 5) for v in row]
    return values[0] if len(values) == 1 else values
