"""One training run seen from the UI: the engine's worker process as Qt signals.

The engine runs each training in a child process (:mod:`engine.train.worker`). A
:class:`TrainingSession` lives in the UI thread; a background ``QThread`` of its own
starts that process, waits on its event queue and hands the events over in small
batches, which the session turns into one Qt signal per event::

    session = TrainingSession()
    session.epoch.connect(plots.add_epoch)
    session.finished.connect(on_done)
    session.start(project.to_dict(), run_dir, base_dir=project.base_dir)

The project is never touched from the thread: the run trains on an immutable
snapshot (``project.to_dict()``), so editing goes on while it learns. Stop and
pause are requests the child checks at every batch; a child that dies ends the
run with ``failed`` (kind ``died``), never with an exception in the app.

A snapshot whose training section holds a ``cluster`` trains across several
machines: this machine starts the chief through
:func:`engine.train.distributed.run.start_cluster_training` and relays the same events, plus
``waiting`` (the workers that have not joined yet). Pause is not supported there.

A warm worker (:class:`engine.train.worker.WarmWorker`: a training process that has
imported TensorFlow and waits) makes Train answer in about a second:
:meth:`TrainingSession.keep_warm` starts one (the window does once it is idle after
start-up), the next local run is handed to it, and once that run has trained for
:data:`SPARE_AFTER_S` a spare is started for the run after it (importing TensorFlow at low
priority, so the run keeps the cores, and warming up once the run has ended: a run
pressed right after another needs no import); a run that ends without a spare gets
a fresh one then. At most one waits at
a time; none after :meth:`TrainingSession.stop_warm`.
One killed while it waits is noticed within :data:`WARM_CHECK_MS` and replaced (up to
:data:`WARM_RETRIES` times in a row); a run asking for a device the worker was not set
up for gets a fresh process, and the next warm worker is set up for that device.
"""

from __future__ import annotations

import copy
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal

from engine.train.cluster import ClusterError
from engine.train.distributed.run import start_cluster_training
from engine.train.lock import RunDirBusy
from engine.train.worker import WarmWorker, start_training

Event = dict[str, Any]

POLL_S = 0.05
"""How long the supervising thread waits for events before looking again."""

CLOSE_WAIT_S = 45.0
"""How long the supervisor waits, after the final event, for the run's process to end
and its folder to be unlocked (the engine bounds it; it takes milliseconds)."""

WARM_CHECK_MS = 250
"""How often the session looks whether its warm worker is ready, or was killed."""

SPARE_AFTER_S = 10.0
"""How long a run trains (from its first batch) before the spare for the next run is
started: a short run ends before the spare's import could pay off, and would only
share its cores with it (a fresh worker starts when it ends, as before)."""

WARM_RETRIES = 3
"""Warm workers that may die in a row while waiting before no new one is started
(until the next run, or :meth:`TrainingSession.keep_warm`)."""

STATES = ("idle", "starting", "running", "paused", "stopping")

_ALIVE: set[QThread] = set()
"""Supervising threads still running: kept referenced so Qt never destroys one that runs."""


def cluster_workers(snapshot: dict[str, Any]) -> list[str]:
    """The worker addresses of a snapshot's ``training.cluster`` ([] for a local run)."""
    cluster = (snapshot.get("training") or {}).get("cluster")
    workers = cluster.get("workers") if isinstance(cluster, dict) else None
    return [str(w) for w in workers] if isinstance(workers, list) else []


class _Supervisor(QThread):
    """Starts the worker process and relays its events until the run ends.

    Events that arrive together are sent as one list (one queued signal per
    poll, not per event), so a fast run cannot flood the UI thread.
    """

    arrived = Signal(list)

    def __init__(self, snapshot: dict[str, Any], run_dir: Path, options: dict[str, Any]) -> None:
        super().__init__()
        self.snapshot, self.run_dir, self.options = snapshot, run_dir, options
        self.run_handle: Any = None
        self.stop_requested = False
        self.pause_requested = False

    def run(self) -> None:
        workers = cluster_workers(self.snapshot)
        if workers:
            self._run_cluster(workers)
            return
        warm = self.options.get("warm")
        try:
            handle = start_training(self.snapshot, self.run_dir, **self.options)
        except RunDirBusy as exc:
            self._busy(exc)
            return
        except Exception as exc:
            self._could_not_start("the training process", exc)
            return
        finally:
            if warm is not None and not warm.used:
                warm.close()  # the run never reached it (a busy folder): end it
        self.run_handle = handle
        if self.pause_requested:
            handle.pause()
        if self.stop_requested:
            handle.stop()
        while True:
            events = handle.poll(POLL_S)
            if events:
                if events[-1].get("event") in ("done", "error"):
                    # the run's files are final and its folder unlocked before anyone
                    # hears it ended (a resume right away must find the folder free)
                    handle.wait(CLOSE_WAIT_S)
                    self.arrived.emit(events)
                    return
                self.arrived.emit(events)
            elif handle.final is not None and not handle.is_alive():
                # the reader ended the stream; everything was delivered above
                return

    def _busy(self, exc: RunDirBusy) -> None:
        self.arrived.emit(
            [
                {
                    "event": "error",
                    "kind": "busy",
                    "message": str(exc),
                    "hint": "Another run is using this folder; wait for it to end, or stop it.",
                }
            ]
        )

    def _could_not_start(self, what: str, exc: Exception) -> None:
        self.arrived.emit(
            [
                {
                    "event": "error",
                    "kind": "internal",
                    "message": f"{what} could not start: {exc}",
                    "hint": f"Check that the run folder {self.run_dir} can be written.",
                }
            ]
        )

    def _run_cluster(self, workers: list[str]) -> None:
        """Start the chief of a cluster run and relay its events in batches."""
        try:
            handle = start_cluster_training(self.snapshot, self.run_dir, workers, 0, **self.options)
        except RunDirBusy as exc:
            self._busy(exc)
            return
        except ClusterError as exc:
            self.arrived.emit(
                [
                    {
                        "event": "error",
                        "kind": "cluster",
                        "message": str(exc),
                        "hint": "Change the cluster settings (device: Cluster…).",
                    }
                ]
            )
            return
        except Exception as exc:
            self._could_not_start("the cluster run", exc)
            return
        self.run_handle = handle
        if self.stop_requested:
            handle.kill()
        # ClusterRun.events() blocks; a helper thread moves them to a queue polled here
        events: queue.Queue[Event | None] = queue.Queue()

        def relay() -> None:
            for event in handle.events():
                events.put(event)
            events.put(None)

        threading.Thread(target=relay, daemon=True, name="layerlab-cluster-relay").start()
        ended = False
        while not ended:
            try:
                batch = [events.get(timeout=POLL_S)]
            except queue.Empty:
                continue
            while True:
                try:
                    batch.append(events.get_nowait())
                except queue.Empty:
                    break
            ended = None in batch
            batch = [e for e in batch if e is not None]
            if batch:
                ended = ended or batch[-1].get("event") in ("done", "error")
                if ended:
                    handle.wait(CLOSE_WAIT_S)  # files final, folder unlocked
                self.arrived.emit(batch)


class TrainingSession(QObject):
    """Supervises one training run at a time and reports it as Qt signals.

    Signals:
        started(dict): the ``started`` event (devices, steps_per_epoch, epochs, ...).
        batch(dict): a ``batch`` event (epoch, step, steps, logs, samples_per_s, eta_s).
        epoch(dict): an ``epoch`` event (epoch, logs, time_s).
        checkpoint(str): a checkpoint file was written.
        paused(), resumed(): the run holds / goes on.
        warning(str): a warning from the run.
        waiting(list): a cluster run still waits for these workers (``host:port``).
        finished(dict): the ``done`` event (run_dir, model, history, evaluation, stopped).
        failed(dict): the ``error`` event (kind, message, hint).
        boundary(dict): a ``boundary`` event (the decision boundary of two-feature data).
        state_changed(str): ``idle``, ``starting``, ``running``, ``paused`` or ``stopping``.
        warm_changed(str): the warm worker is ``starting``, ``ready``, or ``off`` (none).

    Attributes:
        state: The current state (one of :data:`STATES`).
        run_dir: The directory of the current (or last) run.
        resumed_run: Whether the current run continues an earlier one.
        cluster: The workers of the current cluster run (``[]``: a local run).
        warm: The warm worker waiting for the next run (None: none).
        warm_state: What :attr:`warm_changed` said last.
        last_run_warm: Whether the current (or last) run was handed to a warm worker.
    """

    started = Signal(dict)
    batch = Signal(dict)
    epoch = Signal(dict)
    checkpoint = Signal(str)
    paused = Signal()
    resumed = Signal()
    warning = Signal(str)
    boundary = Signal(dict)
    waiting = Signal(list)
    finished = Signal(dict)
    failed = Signal(dict)
    state_changed = Signal(str)
    warm_changed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = "idle"
        self.run_dir: Path | None = None
        self.resumed_run = False
        self.cluster: list[str] = []
        self._stopped_before_start = False
        self._thread: _Supervisor | None = None
        self._old_threads: list[_Supervisor] = []
        self.warm: WarmWorker | None = None
        self.warm_state = "off"
        self.last_run_warm = False
        self._keep_warm = False
        self._warm_device: str | None = None
        self._warm_deaths = 0
        self._spare_due = False  # the run has not started its spare yet
        self._first_batch_at: float | None = None
        self._warm_timer = QTimer(self)
        self._warm_timer.setInterval(WARM_CHECK_MS)
        self._warm_timer.timeout.connect(self._check_warm)

    # ------------------------------------------------------------------ control
    @property
    def running(self) -> bool:
        """True from :meth:`start` until the run has ended."""
        return self.state != "idle"

    @property
    def pid(self) -> int | None:
        """The worker process id (None before it has started)."""
        handle = self._thread.run_handle if self._thread is not None else None
        return None if handle is None else getattr(handle, "pid", None)

    @property
    def can_pause(self) -> bool:
        """Whether pause works for the current run (not for a cluster run)."""
        return not self.cluster

    def start(
        self,
        project_snapshot: dict[str, Any],
        run_dir: str | os.PathLike,
        *,
        epochs: int | None = None,
        device: str | None = None,
        resume: bool = False,
        base_dir: str | os.PathLike | None = None,
    ) -> None:
        """Start a run of ``project_snapshot`` (``Project.to_dict()``) into ``run_dir``.

        Raises:
            RuntimeError: A run is still going on.
        """
        if self.running:
            raise RuntimeError("a training run is already going on; stop it first")
        self._forget_finished_threads()
        self.run_dir = Path(run_dir)
        self.resumed_run = resume
        self.cluster = cluster_workers(project_snapshot)
        self._stopped_before_start = False
        options = {
            "epochs": epochs,
            "device": device,
            "resume": resume,
            "base_dir": None if base_dir is None else str(base_dir),
        }
        self.last_run_warm = False
        self._spare_due = not self.cluster
        self._first_batch_at = None
        if not self.cluster:
            wanted = (
                device
                if device is not None
                else (project_snapshot.get("training") or {}).get("device")
            )
            self._warm_device = wanted  # the next warm worker is set up for it
            if self.warm is not None:
                options["warm"], self.warm = self.warm, None  # the run's now (or closed)
                self._set_warm("off")
        thread = _Supervisor(copy.deepcopy(project_snapshot), self.run_dir, options)
        thread.arrived.connect(self._on_events)
        self._thread = thread
        self._set_state("starting")
        _ALIVE.add(thread)
        thread.finished.connect(lambda: _ALIVE.discard(thread))
        thread.start()

    def pause(self) -> None:
        """Hold the run at its next batch (``paused`` follows)."""
        if self.state not in ("starting", "running") or self._thread is None or self.cluster:
            return
        self._thread.pause_requested = True
        if self._thread.run_handle is not None:
            self._thread.run_handle.pause()

    def resume(self) -> None:
        """Go on after :meth:`pause` (``resumed`` follows)."""
        if self._thread is None or self.state in ("idle", "stopping"):
            return
        self._thread.pause_requested = False
        if self._thread.run_handle is not None:
            self._thread.run_handle.resume()

    def stop(self) -> None:
        """Stop at the next batch, keeping what was trained (``finished`` follows).

        A cluster run stops every worker after the current epoch; one still waiting
        for its workers ends at once (``failed`` with ``stopped: True`` follows).
        """
        if self._thread is None or self.state in ("idle", "stopping"):
            return
        self._thread.stop_requested = True
        handle = self._thread.run_handle
        if self.cluster and self.state == "starting":
            self._stopped_before_start = True  # not training yet: nothing to keep
            if handle is not None:
                handle.kill()
        elif handle is not None:
            handle.stop()
        self._set_state("stopping")

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """End the run now (for closing the app): kill the process, wait for the thread;
        end the warm worker."""
        self.stop_warm()
        thread = self._thread
        if thread is None:
            return
        thread.stop_requested = True
        if thread.run_handle is not None and thread.run_handle.is_alive():
            thread.run_handle.kill()
        thread.wait(int(timeout_s * 1000))

    # -------------------------------------------------------------- warm worker
    def keep_warm(self, device: str | None = None) -> None:
        """Keep a warm worker waiting for the next run, set up for ``device`` (the
        training section's; None: ``auto``), from now on: one is started now (unless
        one that fits waits already, or a run goes on: then once it ends)."""
        self._keep_warm = True
        self._warm_device = device
        self._warm_deaths = 0
        if self.warm is not None and not self.warm.fits(device):
            self._drop_warm()
        if not self.running:
            self._start_warm()

    def stop_warm(self) -> None:
        """No warm worker from now on; the one waiting ends."""
        self._keep_warm = False
        self._drop_warm()

    def _start_warm(self, spare: bool = False) -> None:
        """Start a warm worker if one should wait and none does: between runs, or
        (``spare``) during a run, at low priority."""
        if not self._keep_warm or self.warm is not None or (self.running and not spare):
            return
        try:
            self.warm = WarmWorker(self._warm_device, low_priority=spare)
        except Exception:  # no process can start: runs will say why
            self.warm = None
            self._set_warm("off")
            return
        self._set_warm("starting")
        self._warm_timer.start()

    def _drop_warm(self) -> None:
        warm, self.warm = self.warm, None
        self._warm_timer.stop()
        if warm is not None:
            warm.close()
        self._set_warm("off")

    def _check_warm(self) -> None:
        warm = self.warm
        if warm is None:
            self._warm_timer.stop()
            return
        if warm.ready():
            self._warm_deaths = 0
            self._set_warm("ready")
        elif not warm.is_alive():  # killed while it waited: replace it
            self._drop_warm()
            self._warm_deaths += 1
            if self._warm_deaths < WARM_RETRIES:
                self._start_warm()

    def _maybe_start_spare(self) -> None:
        """Start the spare once the run has trained :data:`SPARE_AFTER_S` seconds."""
        now = time.monotonic()
        if self._first_batch_at is None:
            self._first_batch_at = now
        if now - self._first_batch_at >= SPARE_AFTER_S:
            self._spare_due = False
            self._start_warm(spare=True)

    def _set_warm(self, state: str) -> None:
        if state != self.warm_state:
            self.warm_state = state
            self.warm_changed.emit(state)

    # ------------------------------------------------------------------ events
    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    def _on_events(self, events: list[Event]) -> None:
        if self.sender() is not self._thread:
            return  # a late delivery from an earlier run
        for event in events:
            self._dispatch(event)

    def _dispatch(self, event: Event) -> None:
        kind = event.get("event")
        if kind == "started":
            if self.state == "starting":
                self._set_state("running")
            self.started.emit(event)
        elif kind == "batch":
            if self._spare_due:
                self._maybe_start_spare()
            self.batch.emit(event)
        elif kind == "epoch":
            self.epoch.emit(event)
        elif kind == "checkpoint":
            self.checkpoint.emit(str(event.get("path", "")))
        elif kind == "paused":
            if self.state != "stopping":
                self._set_state("paused")
            self.paused.emit()
        elif kind == "resumed":
            if self.state != "stopping":
                self._set_state("running")
            self.resumed.emit()
        elif kind == "warning":
            self.warning.emit(str(event.get("message", "")))
        elif kind == "boundary":  # engine/train/boundary.py: drawn by the Live tab
            self.boundary.emit(event)
        elif kind == "waiting":
            self.waiting.emit([str(w) for w in event.get("workers") or []])
        elif kind in ("done", "error"):
            if kind == "error" and self._stopped_before_start:
                event = {
                    **event,
                    "stopped": True,
                    "message": "the cluster run was stopped "
                    "before every worker had joined; nothing was trained",
                }
            handle = self._thread.run_handle if self._thread is not None else None
            self.last_run_warm = bool(getattr(handle, "warm", False))
            self._old_threads.append(self._thread)
            self._set_state("idle")
            self._spare_due = False
            if self.warm is not None:
                self.warm.release()  # the spare may warm up now
            self._warm_deaths = 0
            QTimer.singleShot(0, self._start_warm)  # a fresh one takes the used one's place
            (self.finished if kind == "done" else self.failed).emit(event)

    def _forget_finished_threads(self) -> None:
        for thread in list(self._old_threads):
            if thread.wait(2000):
                self._old_threads.remove(thread)
