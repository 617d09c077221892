"""Run one training: device placement, compile + fit, reported as plain event dicts.

The ``training`` section (its format, tables, checks and the Keras objects made
from it) is :mod:`engine.train.config`; the callbacks that report events and
write checkpoints are :mod:`engine.train.callbacks`; what a fresh run does to its model
before the first ``fit`` is :mod:`engine.train.start`; fine-tuning in two phases is
:mod:`engine.train.fine_tune`.

:func:`run_training` runs one training in the calling process (the worker process
calls it) and reports through ``emit``. TensorFlow and Keras are imported inside
functions only.
"""

from __future__ import annotations

import contextlib
import errno
import math
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.build.builder import build_model
from engine.data.dataset import Dataset, check_fit, labels_for_loss, load_data
from engine.data.image_stream import SkipTracker
from engine.data.sources import DataError
from engine.model.project import Project, ProjectError
from engine.train import runs
from engine.train.boundary import boundary_callback
from engine.train.callbacks import Controls, RunState, callback_types
from engine.train.config import (
    SCHEDULES,
    Emit,
    Event,
    batch_size_of,
    class_weights,
    epochs_of,
    find_key,
    fine_tune_of,
    loss_name,
    make_loss,
    make_metrics,
    make_optimizer,
    monitor_mode,
    split_typed,
    training_problems,
)
from engine.train.execution import steps_per_execution
from engine.train.fine_tune import fit_in_phases
from engine.train.health import PROBE_SAMPLES, health_callback
from engine.train.lock import RunDirBusy, acquire
from engine.train.start import adapt_data, prepare_start, start_warnings


class TrainingError(Exception):
    """A run that cannot go on; becomes an ``error`` event.

    Attributes:
        kind: ``nan``, ``oom``, ``data``, ``died``, ``config``, ``busy`` (another run
            holds the folder), ``disk`` (a file could not be written) or ``internal``.
        message: What went wrong, in plain words.
        hint: What to try next.
    """

    def __init__(self, kind: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.kind, self.message, self.hint = kind, message, hint

    def event(self) -> Event:
        return {"event": "error", "kind": self.kind, "message": self.message, "hint": self.hint}


# ----------------------------------------------------------------------------- devices


@dataclass
class Placement:
    """Where a run computes.

    Attributes:
        devices: Device names shown to the user (``CPU:0``, ``GPU:0``, ...).
        strategy: A ``tf.distribute`` strategy when the run is mirrored, else None.
        device: The ``tf.device`` name for a single-device run.
    """

    devices: list[str]
    strategy: Any = None
    device: str | None = None

    def scope(self) -> contextlib.AbstractContextManager:
        import tensorflow as tf

        if self.strategy is not None:
            return self.strategy.scope()
        return tf.device(self.device) if self.device else contextlib.nullcontext()


def place(device: str | None, fresh_process: bool = False) -> Placement:
    """Turn a device request into a :class:`Placement`, looking at this machine's devices.

    Args:
        device: ``auto`` (a GPU if there is one), ``cpu``, ``gpu``/``gpu:N``, ``all``.
        fresh_process: TensorFlow has not touched a device yet, so other GPUs can be
            hidden and GPU memory set to grow (the worker process).

    Raises:
        TrainingError: ``config`` when the device does not exist here.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    spec = (device or "auto").strip().lower()
    if spec == "auto":
        spec = "gpu:0" if gpus else "cpu"
    if spec == "gpu":
        spec = "gpu:0"

    def configure(visible: list[Any]) -> None:
        if not fresh_process:
            return
        with contextlib.suppress(RuntimeError, ValueError):
            tf.config.set_visible_devices(visible, "GPU")
            for g in visible:
                tf.config.experimental.set_memory_growth(g, True)

    if spec == "cpu":
        configure([])
        return Placement(["CPU:0"], device="/CPU:0")
    if spec.startswith("gpu:"):
        index = int(spec[4:])
        if not gpus:
            raise TrainingError(
                "config",
                f"device '{device}' was asked for, but TensorFlow finds no GPU on "
                "this machine (only the CPU)",
                'Train on the CPU (device "cpu"), or install TensorFlow with GPU support: '
                "pip install 'layerlab[gpu]'.",
            )
        if index >= len(gpus):
            raise TrainingError(
                "config",
                f"device '{device}' does not exist; this machine has {len(gpus)} "
                f"GPU(s): " + ", ".join(f"gpu:{i}" for i in range(len(gpus))),
                'Pick one of the GPUs listed, or "all".',
            )
        configure([gpus[index]])
        name = "/GPU:0" if fresh_process else f"/GPU:{index}"
        return Placement([f"GPU:{index}"], device=name)
    # "all": every GPU, else every (logical) CPU device when there are several
    if gpus:
        configure(gpus)
        if len(gpus) == 1:
            return Placement(["GPU:0"], device="/GPU:0")
        strategy = _mirrored(None)
        return Placement([f"GPU:{i}" for i in range(len(gpus))], strategy=strategy)
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) > 1:
        strategy = _mirrored(tuple(c.name for c in cpus))
        return Placement([c.name.split("device:")[-1] for c in cpus], strategy=strategy)
    return Placement(["CPU:0"], device="/CPU:0")


_STRATEGIES: dict[Any, Any] = {}


def _mirrored(devices: tuple[str, ...] | None) -> Any:
    """One MirroredStrategy per device list and process: a second strategy over the same
    devices reuses its collective keys, and its first all-reduce then fails with
    "Shape mismatch in the collective instance" (a second run in a warm worker)."""
    import tensorflow as tf

    if devices not in _STRATEGIES:
        _STRATEGIES[devices] = tf.distribute.MirroredStrategy(list(devices) if devices else None)
    return _STRATEGIES[devices]


# ------------------------------------------------------------------------ one whole run


def epochs_to_train(
    section: dict[str, Any], epochs: int | None, resume: bool, done_before: int, run_dir: Path
) -> int:
    """The epoch count a run ends at: ``epochs`` (or the section's) for a fresh run; on
    resume ``epochs`` more (or on up to the section's), refused when nothing is left."""
    if not resume:
        return epochs if epochs is not None else epochs_of(section)
    extra = epochs if epochs is not None else epochs_of(section) - done_before
    if extra < 1:
        raise TrainingError(
            "config",
            f"the run in {run_dir} has already trained {done_before} of "
            f"{epochs_of(section)} epochs",
            "Ask for more epochs (--epochs N trains N more).",
        )
    return done_before + extra


def run_training(
    project: dict[str, Any],
    run_dir: str | Path,
    *,
    base_dir: str | Path | None = None,
    epochs: int | None = None,
    device: str | None = None,
    resume: bool = False,
    emit: Emit | None = None,
    controls: Controls | None = None,
    fresh_process: bool = False,
    lock: bool = True,
) -> Event:
    """Train a project's model in this process and write its run directory.

    Args:
        project: The project as a plain dict (``Project.to_dict()``).
        run_dir: The run directory (created; with ``resume`` an existing run).
        base_dir: Folder relative data paths are resolved against.
        epochs: Epochs to train (the section's ``epochs`` if None). With ``resume``:
            how many more; None trains on up to the section's total.
        device: Overrides the section's ``device``.
        resume: Continue ``run_dir`` from ``checkpoints/last.keras``.
        emit: Receives every event (``started``, ``batch``, ``epoch``, ...).
        controls: Stop and pause requests.
        fresh_process: Nothing else in this process used TensorFlow (see :func:`place`).
        lock: Hold ``run_dir``'s lock (:mod:`engine.train.lock`) while training; False
            when the caller holds it (the worker's parent process).

    A folder another run holds is refused (kind ``config``, naming the process); what
    a hard stop left in the folder is put right first (:func:`runs.claim_run_dir`:
    a stale ``running`` status, a run stopped before its first checkpoint, which then
    starts again), each said in a ``warning`` event.

    Returns:
        The final event: ``done`` or ``error``. Never raises for a failed run.
    """
    run_dir = Path(run_dir)
    problem = runs.run_dir_problem(run_dir, resume)
    held = None
    if problem is None and lock:
        try:
            held = acquire(run_dir)
        except RunDirBusy as exc:
            problem = str(exc)
        except OSError as exc:
            problem = f"{run_dir} cannot be used: {exc.strerror or exc}"
        else:  # under the lock now: what another run left may have changed
            problem = runs.run_dir_problem(run_dir, resume)
    if problem:  # leave someone else's run directory untouched
        if held is not None:
            held.release()
        final = TrainingError("config", problem, "Pick a new run directory.").event()
        if emit is not None:
            emit(final)
        return final
    resume, notes = runs.claim_run_dir(run_dir, resume)
    if held is not None and held.note:
        notes.insert(0, held.note)
    log = runs.EventLog(run_dir)

    def send(event: Event) -> None:
        log.write(event)
        if emit is not None:
            emit(event)

    for note in notes:
        send({"event": "warning", "message": note})
    try:
        final = _train(
            project,
            run_dir,
            base_dir,
            epochs,
            device,
            resume,
            send,
            controls or Controls(),
            fresh_process,
        )
    except TrainingError as exc:
        final = exc.event()
    except Exception as exc:
        final = classify_exception(exc)
        with contextlib.suppress(OSError):
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
    if final["event"] == "error":
        runs.write_status(
            run_dir,
            "failed",
            message=final["message"],
            kind=final["kind"],
            epochs_done=runs.checkpoint_epoch(run_dir),
        )
    send(final)
    log.close()
    if held is not None:
        held.release()
    return final


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def classify_exception(exc: BaseException) -> Event:
    """An ``error`` event for an exception raised while training."""
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    if isinstance(exc, OSError) and (exc.errno in _DISK_FULL or exc.filename):
        where = f" {exc.filename}" if exc.filename else " a file"
        full = exc.errno in _DISK_FULL
        return TrainingError(
            "disk",
            f"could not write{where}: "
            + ("the disk is full" if full else (exc.strerror or text))
            + "; the files written before it (the previous checkpoint) are kept whole",
            (
                "Free some disk space, then resume the run (its last checkpoint)."
                if full
                else "Check that the run folder can be written, then resume the run."
            ),
        ).event()
    if isinstance(exc, MemoryError) or name == "ResourceExhaustedError" or "OOM" in str(exc):
        return TrainingError(
            "oom",
            f"out of memory: {text}",
            'Use a smaller batch_size, a smaller model, or precision "mixed_float16".',
        ).event()
    if "label value" in str(exc) or "labels" in text.lower() and "range" in text.lower():
        return TrainingError(
            "data",
            f"the labels do not fit the model: {text}",
            "Check the number of units of the output layer against the number of classes.",
        ).event()
    return TrainingError(
        "internal",
        f"training failed: {name}: {text}",
        "See error.log in the run directory for the details.",
    ).event()


def _input_shape(project: dict[str, Any]) -> tuple | None:
    for node in (project.get("graph") or {}).get("nodes", []):
        if node.get("type") == "Input" and node.get("params", {}).get("shape") is not None:
            return tuple(node["params"]["shape"])
    return None


def load_dataset(project: dict[str, Any], base_dir: Any) -> Any:
    """The project's data (:func:`engine.data.dataset.load_data`), resized to its first Input.

    Raises:
        TrainingError: ``data`` when the data section or the data file is wrong.
    """
    try:
        return load_data(project.get("data") or {}, base_dir, _input_shape(project))
    except DataError as exc:
        raise TrainingError("data", str(exc), "Fix the data section or the data file.") from exc


def build_snapshot_model(project: dict[str, Any], base_dir: Any = None) -> Any:
    """The Keras model of a project given as a plain dict (a run's snapshot); a
    Backbone's weights file is found relative to ``base_dir``.

    Raises:
        TrainingError: ``config`` when the graph cannot be built.
    """
    try:
        return build_model(Project.from_dict(project, source="project snapshot"), base_dir=base_dir)
    except (ProjectError, ValueError, TypeError) as exc:
        raise TrainingError(
            "config",
            f"the model cannot be built: {exc}",
            "Run `layerlab validate` on the project to see each problem.",
        ) from exc


def skip_reporter(tracker: SkipTracker, emit: Emit, skips: dict[str, Any]) -> Any:
    """A Keras callback that, after each epoch, reports the image files that could not be
    decoded: a ``warning`` event (count, first names, why) with ``"corrupt_files":
    "skip"``, a ``data`` error ending the run with ``"error"``. ``skips`` collects
    ``{"count", "files"}`` for the run's summary."""
    import keras

    class SkipReporter(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            new = tracker.skipped()
            if not new:
                return
            if tracker.files.corrupt == "error":
                raise TrainingError(
                    "data",
                    tracker.describe(new, skipped=False),
                    'Remove or replace the file, or set "corrupt_files": "skip" to skip it.',
                )
            text = tracker.describe(new)
            skips["count"] = tracker.total()
            skips["files"] = (skips.get("files", []) + [tracker.files.paths[i] for i in new])[:20]
            emit({"event": "warning", "message": text})

    return SkipReporter()


def validation_memo(memo: dict[str, Any]) -> Any:
    """A Keras callback keeping each epoch's validation metrics (``val_*``, the prefix cut:
    what ``model.evaluate`` returns) with a fingerprint of the weights they were measured
    with: when training ends with those same weights, the evaluation reuses them
    instead of reading the validation split again (for an image folder: decoding it)."""
    import keras

    class ValidationMemo(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            memo.clear()
            metrics = {k[4:]: v for k, v in (logs or {}).items() if k.startswith("val_")}
            if metrics:
                memo.update(metrics=metrics, weights=weights_fingerprint(self.model))

    return ValidationMemo()


def weights_fingerprint(model: Any) -> list[tuple[float, float]]:
    """Each weight's sum and sum of squares (float64): equal only for the same weights,
    in practice (a restored best epoch, a fine-tuning phase, a stop mid-epoch differ)."""
    import tensorflow as tf

    out = []
    for w in model.weights:
        v = tf.cast(tf.convert_to_tensor(w), tf.float64)
        out.append((float(tf.reduce_sum(v)), float(tf.reduce_sum(v * v))))
    return out


def _train(
    project: dict[str, Any],
    run_dir: Path,
    base_dir: Any,
    epochs: int | None,
    device: str | None,
    resume: bool,
    emit: Emit,
    controls: Controls,
    fresh_process: bool,
) -> Event:
    section = dict(project.get("training") or {})
    problems = training_problems(section)
    if problems:
        raise TrainingError(
            "config",
            "; ".join(problems),
            "Fix the training settings (`layerlab validate` lists them).",
        )
    state = runs.prepare_run_dir(run_dir, project, resume)
    done_before = int(state.get("epoch", 0)) if resume else 0
    total = epochs_to_train(section, epochs, resume, done_before, run_dir)
    runs.write_status(run_dir, "running", epochs_done=done_before)

    import keras

    placement = place(device or section.get("device"), fresh_process)
    if section.get("seed") is not None:
        keras.utils.set_random_seed(int(section["seed"]))
    previous_policy = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(section.get("precision", "float32"))
    try:
        with _warnings_as_events(emit):
            return _fit(
                project,
                section,
                run_dir,
                base_dir,
                total,
                done_before,
                resume,
                state,
                placement,
                emit,
                controls,
            )
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


@contextlib.contextmanager
def _warnings_as_events(emit: Emit) -> Iterator[None]:
    """Python warnings raised while training become ``warning`` events (each one once)."""
    seen: set[str] = set()

    def show(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
        text = str(message).strip()
        if text and text not in seen and not issubclass(category, DeprecationWarning):
            seen.add(text)
            emit({"event": "warning", "message": text})

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def _fit(
    project: dict[str, Any],
    section: dict[str, Any],
    run_dir: Path,
    base_dir: Any,
    total: int,
    done_before: int,
    resume: bool,
    state: dict[str, Any],
    placement: Placement,
    emit: Emit,
    controls: Controls,
) -> Event:
    import keras

    ds = load_dataset(project, base_dir)
    loss = loss_name(section, ds.task, ds.num_classes)
    if not resume:
        start_warnings(project, ds, emit)
    batch_size = batch_size_of(section)
    n_train = ds.count("train")
    steps = max(1, math.ceil(n_train / batch_size))
    with placement.scope():
        if resume:
            model = keras.models.load_model(run_dir / "checkpoints" / "last.keras")
        else:
            model = build_snapshot_model(project, base_dir)
        notes = [] if resume else prepare_start(model, project, base_dir, adapt_data(ds), emit)
        fit_problems = check_fit(ds, model, loss)
        if fit_problems:
            raise TrainingError(
                "data",
                "; ".join(fit_problems),
                "Match the model's input and output layers to the data.",
            )
        fine = fine_tune_of(section)
        if resume:  # the checkpoint keeps the N the run was compiled with
            per_call = int(getattr(model, "steps_per_execution", 1) or 1)
        else:
            per_call = steps_per_execution(
                section.get("steps_per_execution"),
                model,
                batch_size,
                steps,
                distributed=placement.strategy is not None,
                sample_shape=tuple(ds.input_shape),
            )
            model.compile(  # with fine-tuning, a schedule spans phase 1 only
                optimizer=make_optimizer(section, steps, min(total, fine["after_epoch"]))
                if fine
                else make_optimizer(section, steps, total),
                loss=make_loss(section, loss),
                metrics=make_metrics(section, loss, ds.num_classes, emit, ds.task),
                jit_compile=section.get("jit_compile", "auto"),
                steps_per_execution=per_call,
            )
    y_train = labels_for_loss(ds.y_train, loss, ds.num_classes)
    weights = class_weights(section, ds.y_train) if ds.task == "classification" else None
    if section.get("class_weight") is not None and weights is None:
        emit(
            {
                "event": "warning",
                "message": "class_weight applies to classification only and was ignored",
            }
        )
    unknown = sorted(c for c in weights or {} if c >= ds.num_classes)
    if unknown:
        emit(
            {
                "event": "warning",
                "message": f"class_weight names class "
                f"{', '.join(map(str, unknown))}, but the data has classes 0-"
                f"{ds.num_classes - 1}; {'it is' if len(unknown) == 1 else 'they are'} "
                "ignored",
            }
        )
    has_val = ds.count("validation") > 0
    y_val = labels_for_loss(ds.y_val, loss, ds.num_classes) if has_val else None
    tracker = SkipTracker(ds.images) if ds.images is not None else None
    # batches read (and images decoded) as training goes; a memory map that fits the
    # data memory budget is read whole instead and fitted from arrays, like plain fit
    streamed = ds.streamed and not ds.fits_in_memory()
    if streamed:
        seed = int(section.get("seed") or 0)
        train_data: Any = ds.batches(
            "train",
            batch_size,
            labels=y_train,
            shuffle=bool(section.get("shuffle", True)),
            seed=seed,
            cache_dir=run_dir,
            tracker=tracker,
        )
        validation: Any = (
            ds.batches("validation", batch_size, labels=y_val, cache_dir=run_dir, tracker=tracker)
            if has_val
            else None
        )
    else:
        train_data = ds.x_train
        validation = (ds.x_val, y_val) if has_val else None

    es = section.get("early_stopping")
    es = {} if es is True else es if isinstance(es, dict) else None
    monitor = (es or {}).get("monitor") or ("val_loss" if has_val else "loss")
    if not has_val and monitor.startswith("val_"):
        emit(
            {
                "event": "warning",
                "message": f"there is no validation split, so "
                f"{monitor} cannot be watched; watching {monitor[4:]} instead",
            }
        )
        monitor = monitor[4:]
    run = RunState(
        run_dir=run_dir,
        emit=emit,
        controls=controls,
        steps=steps,
        epochs=total,
        batch_size=batch_size,
        monitor=monitor,
        mode=monitor_mode(monitor),
        best=state.get("best") if state.get("monitor") == monitor else None,
        history=runs.resumed_history(run_dir, done_before) if resume else {},
        epochs_done=done_before,
        planned_epochs=int(state.get("planned_epochs") or 0) if resume else total,
    )
    if fine is not None:
        run.phase = int(state.get("phase") or 1) if resume else 1
        run.fine_tune_from = int(state.get("fine_tune_from") or 0) if run.phase == 2 else 0
    kind = find_key(split_typed(section.get("schedule") or "constant", "schedule")[0], SCHEDULES)
    if resume and kind in ("cosine", "polynomial") and 0 < run.planned_epochs < total:
        emit(
            {
                "event": "warning",
                "message": f"the {kind} learning-rate "
                f"schedule was planned for {run.planned_epochs} epochs; epochs "
                f"{run.planned_epochs + 1}-{total} train at its final rate (start a new run "
                "to plan it over all of them)",
            }
        )
    if section.get("tensorboard", True):
        run.tensorboard = runs.TensorBoardWriter(run_dir / "logs")
    reporter, checkpointer = callback_types()
    skips: dict[str, Any] = {}
    memo: dict[str, Any] = {}
    callbacks = [validation_memo(memo), reporter(run), checkpointer(run)]
    if tracker is not None:
        callbacks.insert(0, skip_reporter(tracker, emit, skips))
    callbacks += probe_callbacks(section, ds, loss, model.loss, run_dir, emit, done_before)
    if es is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                patience=int(es.get("patience", 5)),
                min_delta=float(es.get("min_delta", 0.0)),
                mode=run.mode,
                restore_best_weights=bool(es.get("restore_best_weights", True)),
                start_from_epoch=int(es.get("start_from_epoch", 0)),
            )
        )
    name, schedule, _ = split_typed(section.get("schedule") or "constant", "schedule")
    if find_key(name, SCHEDULES) == "reduce_on_plateau":  # {"type": ...} or its bare name
        watch = schedule.get("monitor", monitor)
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=watch,
                factor=float(schedule.get("factor", 0.1)),
                patience=int(schedule.get("patience", 5)),
                mode=monitor_mode(watch),
                min_delta=float(schedule.get("min_delta", 1e-4)),
                cooldown=int(schedule.get("cooldown", 0)),
                min_lr=float(schedule.get("min_lr", 0.0)),
            )
        )

    emit(
        {
            "event": "started",
            "devices": placement.devices,
            "total_params": int(model.count_params()),
            "steps_per_epoch": steps,
            "epochs": total,
            "initial_epoch": done_before,
            "samples": n_train,
            "batch_size": batch_size,
            "steps_per_execution": per_call,
            "steps_per_execution_auto": not resume
            and section.get("steps_per_execution", "auto") == "auto",
            "notes": notes,
            **(
                {"fine_tune": {**fine, "phase": run.phase, "from_epoch": run.fine_tune_from}}
                if fine
                else {}
            ),
        }
    )
    with placement.scope():
        build_before_fit(model, *ds.head("train", 2), loss, ds.num_classes)
    controls.fitting = True
    fit_args = dict(
        x=train_data,
        y=None if streamed else y_train,
        batch_size=None if streamed else batch_size,
        validation_data=validation,
        class_weight=weights,
        shuffle=bool(section.get("shuffle", True)) and not streamed,
        callbacks=callbacks,
        verbose=0,
    )
    with placement.scope(), warnings.catch_warnings(), run.writes:
        # a stream that skipped a corrupt file has no known length: Keras says so once
        warnings.filterwarnings("ignore", message=".*ran out of data")
        if fine is None:
            model.fit(**fit_args, epochs=total, initial_epoch=done_before)
        else:

            def recompile(optimizer: Any) -> None:
                model.compile(
                    optimizer=optimizer,
                    loss=make_loss(section, loss),
                    metrics=make_metrics(section, loss, ds.num_classes, None, ds.task),
                    jit_compile=section.get("jit_compile", "auto"),
                    steps_per_execution=per_call,
                )

            fit_in_phases(model, fit_args, section, fine, run, total, steps, recompile)
    controls.stop_seen.set()  # training is over: a stop from now on has nothing to end
    if hasattr(run.tensorboard, "close"):
        run.tensorboard.close()

    if run.nan_at:
        epoch, step, value = run.nan_at
        bad = (
            int(np.isnan(ds.x_train).sum() + np.isinf(ds.x_train).sum())
            if not streamed and np.issubdtype(np.asarray(ds.x_train).dtype, np.floating)
            else 0
        )
        lr = _opt_lr(section)
        hint = (
            f"The training data holds {bad} NaN or infinite values; clean them first."
            if bad
            else f"Lower the learning rate (now {lr:g}), add gradient clipping (clipnorm), "
            "or check the data for extreme values."
        )
        runs.write_status(run_dir, "failed", epochs_done=run.epochs_done, kind="nan")
        raise TrainingError(
            "nan", f"the loss became {value} at epoch {epoch}, step {step}; training stopped", hint
        )

    model_path = run_dir / "model.keras"
    runs.save_model_atomic(model, model_path)
    runs.write_history(run_dir, run.history)
    loss_params = section.get("loss") if isinstance(section.get("loss"), dict) else {}
    stopped = run.stopped
    if placement.strategy is not None and ds.streamed:
        # predict_on_batch under a MirroredStrategy returns each batch once per replica:
        # the evaluation reads the saved model outside the strategy
        model = keras.models.load_model(model_path)
    evaluation: dict[str, Any] = {}
    if not controls.reason:  # ended by a signal: keep it short, skip the evaluation
        # the last validation's metrics, if the weights are still those it measured
        same = bool(memo) and memo["weights"] == weights_fingerprint(model)
        evaluation = runs.evaluate(
            model,
            ds,
            loss,
            batch_size,
            labels_for_loss=labels_for_loss,
            run_dir=run_dir,
            from_logits=bool(loss_params.get("from_logits")),
            measured={"validation": memo["metrics"]} if same else None,
        )
    info: dict[str, Any] = {"epochs_done": run.epochs_done}
    if skips:
        info["skipped_files"] = skips
    if controls.reason:
        info["message"] = f"stopped by {controls.reason}; the model and checkpoint are saved"
        info["kind"] = "signal"
    if run.fine_tune_from:
        info["fine_tune_from"] = run.fine_tune_from
    runs.write_status(run_dir, "stopped" if stopped else "done", **info)
    return {
        "event": "done",
        "run_dir": str(run_dir),
        "model": str(model_path),
        "history": run.history,
        "evaluation": evaluation,
        "stopped": stopped,
        "epochs_done": run.epochs_done,
        **({"skipped_files": skips} if skips else {}),
        **({"fine_tune_from": run.fine_tune_from} if run.fine_tune_from else {}),
    }


BOUNDARY_POINTS = 2000
"""Training points the decision boundary's plane is fitted to."""


def probe_callbacks(
    section: dict[str, Any],
    ds: Dataset,
    loss: str,
    loss_fn: Any,
    run_dir: Path,
    emit: Emit,
    done_before: int,
) -> list[Any]:
    """The run's probes: training health (engine/train/health.py, bounded to ~5 % of
    the time; ``"health": false`` turns it off) and, for two-feature classification
    data, the live decision boundary (engine/train/boundary.py). One decision for a
    ``fit`` run and a cluster chief (engine/train/distributed/probes.py)."""
    callbacks: list[Any] = []
    if section.get("health", True):
        hx, hy = ds.head("train", PROBE_SAMPLES)  # streamed data: only these are read
        labels = labels_for_loss(hy, loss, ds.num_classes)
        callbacks.append(health_callback(run_dir, emit, hx, labels, loss_fn, done_before))
    if tuple(ds.input_shape) == (2,) and ds.task == "classification":
        probe = boundary_callback(emit, *ds.head("train", BOUNDARY_POINTS), done_before)
        callbacks += [probe] if probe is not None else []
    return callbacks


def build_before_fit(model: Any, x: Any, y: Any, loss: str, num_classes: int | None) -> None:
    """Create the optimizer's, the loss's and the metrics' variables now, from the
    samples ``x``, ``y``, so that ``fit`` traces its train step once: a variable
    created inside the first trace makes TensorFlow trace it a second time (half of
    the time to the first batch on LeNet-5, docs/benchmarks.md). Keras does this
    itself only under a distribution strategy; when it cannot be done here, ``fit``
    builds them as before."""
    build = getattr(model, "_symbolic_build", None)  # Keras 3's own pre-build
    if build is None or len(x) == 0:
        return
    with contextlib.suppress(Exception):
        build(data_batch=(x, labels_for_loss(y, loss, num_classes), None))


def _opt_lr(section: dict[str, Any]) -> float:
    _, params, _ = split_typed(section.get("optimizer", "Adam"), "optimizer")
    return float(params.get("learning_rate", 0.001))
