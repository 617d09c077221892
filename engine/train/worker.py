"""One training run in a child process, its events streamed back.

``model.fit`` in a thread of the GUI process would share the GIL with the UI, and
a crash or out-of-memory in TensorFlow would take the app with it. So each run is
a child process (multiprocessing ``spawn``: a clean interpreter that imports only
this module, the engine modules it uses, and once TensorFlow)::

    run = start_training(project, "runs/mlp-1", epochs=5)
    for event in run.events():          # started, batch, epoch, checkpoint, ..., done|error
        print(event["event"])

Events come back over a pipe, read by a background thread into a queue, so the
child never waits for a slow reader. Stop, pause and resume are multiprocessing
Events the child checks at every batch. Stop is cooperative and falls back to
terminating the process when the child does not notice it within a grace period.
A child that dies without a word (killed, segfault, out of memory) ends the
stream with an ``error`` event of kind ``died``; the caller never hangs or crashes,
and ``status.json`` says ``failed`` (or ``stopped`` when the caller asked for the
end), with the lines of ``worker.log`` that explain the death (:func:`log_tail`).

The caller's process holds the run directory's lock (:mod:`engine.train.lock`) from
before the child starts until its files are final, so a second run into the same
folder is refused at once (:class:`engine.train.lock.RunDirBusy`).

The child stops at the next batch on SIGTERM (a ``kill`` of the process group, a
service manager), writing its last checkpoint and model; a second SIGTERM, or one
before training has begun, ends it at once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing import connection
from pathlib import Path
from typing import Any

import numpy as np

from engine.human import signal_name
from engine.train import runs
from engine.train.callbacks import Controls
from engine.train.config import Event
from engine.train.fit import place, run_training
from engine.train.lock import acquire

STOP_GRACE_S = 10.0
"""How long a stop request may go unnoticed before the process is terminated."""

_FINAL = ("done", "error")


def start_training(
    project: Any,
    run_dir: str | os.PathLike,
    *,
    epochs: int | None = None,
    device: str | None = None,
    resume: bool = False,
    base_dir: str | os.PathLike | None = None,
    warm: WarmWorker | None = None,
) -> TrainingRun:
    """Start one training run in a child process.

    Args:
        project: A :class:`engine.model.project.Project` or its ``to_dict()`` snapshot (the
            run trains on this immutable snapshot; editing may go on meanwhile).
        run_dir: The run directory to create (or, with ``resume``, to continue).
        epochs: Epochs to train (with ``resume``: how many more); the section's if None.
        device: ``cpu``, ``gpu:N``, ``all`` or ``auto``; the section's if None.
        resume: Continue ``run_dir`` from its last checkpoint.
        base_dir: Folder for relative data paths (default: the project file's folder).
        warm: A :class:`WarmWorker` started ahead: the run is handed to it when it is
            alive, unused and set up for the device the run asks for (TensorFlow already
            imported: the first batch comes seconds sooner); else a fresh process is
            spawned as without it, and a warm worker set up for another device is
            closed. Either way ``warm`` is used up (:attr:`WarmWorker.used`).

    Returns:
        The :class:`TrainingRun`, already started (:attr:`TrainingRun.warm`: whether
        it runs in the warm worker).

    Raises:
        engine.train.lock.RunDirBusy: Another run holds ``run_dir`` (the message
            names its process).
        OSError: ``run_dir`` cannot be created.
    """
    if hasattr(project, "to_dict"):
        if base_dir is None:
            base_dir = getattr(project, "base_dir", None)
        snapshot = project.to_dict()
    else:
        snapshot = dict(project)
    return TrainingRun(
        snapshot,
        Path(run_dir),
        epochs=epochs,
        device=device,
        resume=resume,
        base_dir=None if base_dir is None else str(base_dir),
        warm=warm,
    )


class TrainingRun:
    """A training running in a child process.

    Attributes:
        run_dir: The run directory.
        final: The ``done`` or ``error`` event once the run has ended, else None.
    """

    def __init__(
        self,
        project: dict[str, Any],
        run_dir: Path,
        *,
        epochs: int | None,
        device: str | None,
        resume: bool,
        base_dir: str | None,
        warm: WarmWorker | None = None,
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.run_dir = run_dir
        self.final: Event | None = None
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self._ended = threading.Event()
        self._closed = threading.Event()
        self._stop, self._pause, self._stop_seen = ctx.Event(), ctx.Event(), ctx.Event()
        self._terminated: float | None = None  # the grace after which a stop ended it
        self._killed = False  # ended at once by kill()
        # A folder another run holds is refused here, whatever it holds; one that cannot
        # take this run (a finished run, nothing to resume) is the child's to report.
        usable = runs.run_dir_problem(run_dir, resume) is None
        self._lock = acquire(run_dir) if usable or run_dir.is_dir() else None
        if self._lock is not None and self._lock.note:
            self._queue.put({"event": "warning", "message": self._lock.note})
        wanted = device if device is not None else (project.get("training") or {}).get("device")
        self.warm = False
        if warm is not None:
            job = (project, str(run_dir), base_dir, epochs, device, resume)
            taken = warm.take(job, wanted)
            if taken is not None:
                self.warm = True
                self._process, receiver = taken
                self._stop, self._pause, self._stop_seen = warm.controls
        if not self.warm:
            receiver, sender = ctx.Pipe(duplex=False)
            self._process = ctx.Process(
                target=_child_main,
                name=f"layerlab-training-{run_dir.name}",
                daemon=True,
                args=(
                    sender,
                    self._stop,
                    self._pause,
                    self._stop_seen,
                    project,
                    str(run_dir),
                    base_dir,
                    epochs,
                    device,
                    resume,
                ),
            )
            try:
                self._process.start()
            except BaseException:
                if self._lock is not None:
                    self._lock.release()
                raise
            sender.close()  # only the child writes; its end closing means the child is gone
        if self._lock is not None:
            self._lock.add_pid(self._process.pid)
        self._reader = threading.Thread(
            target=self._read, args=(receiver,), name="layerlab-training-events", daemon=True
        )
        self._reader.start()

    # ------------------------------------------------------------------ events
    def _read(self, receiver: Any) -> None:
        while self.final is None:
            try:
                event = receiver.recv()
            except (EOFError, OSError):
                break
            except Exception as exc:
                event = {
                    "event": "error",
                    "kind": "internal",
                    "message": f"a message from the training process was unreadable: {exc}",
                    "hint": "",
                }
            self._queue.put(event)
            if event.get("event") in _FINAL:
                self._finish(event)
        receiver.close()
        if self.final is None:  # the child died without a final event
            event = self._died_event()
            with contextlib.suppress(OSError):  # the status is final before anyone hears
                self._record_death(event)
            self._queue.put(event)
            self._finish(event)
        self._process.join(timeout=30)
        if self._process.is_alive():  # finished but will not exit: end it
            self._process.terminate()
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=5)
        if self._lock is not None:
            self._lock.release()
        self._closed.set()

    def _record_death(self, event: Event) -> None:
        """Write what the dead child could not: the final status and event."""
        if self._lock is None:  # not our folder to write (the child refused it)
            return
        status = runs.read_json(self.run_dir / "status.json")
        if (
            isinstance(status, dict)
            and status.get("state") in ("done", "stopped", "failed")
            and status.get("pid") == self._process.pid
        ):
            return  # the child wrote its end before it died
        asked = self._killed or self._terminated is not None or self._stop.is_set()
        info = {
            "message": event.get("message", ""),
            "kind": "killed" if asked else "died",
            "epochs_done": runs.checkpoint_epoch(self.run_dir),
            "exit_code": self._process.exitcode,
        }
        runs.write_status(self.run_dir, "stopped" if asked else "failed", **info)
        log = runs.EventLog(self.run_dir)
        log.write(event)
        log.close()

    def _finish(self, final: Event) -> None:
        self.final = final
        self._queue.put(None)
        self._ended.set()

    def kept(self) -> str:
        """What of the run is kept if it ends now, in one sentence."""
        return kept_text(self.run_dir)

    def _died_event(self) -> Event:
        self._process.join(timeout=5)
        code = self._process.exitcode
        resume = f"Resume it with: layerlab train --resume {self.run_dir}"
        has_checkpoint = runs.checkpoint_epoch(self.run_dir) > 0
        if self._killed or self._terminated is not None:
            if self._killed:
                message = "the run was killed at your request before it could stop"
            else:
                message = (
                    f"the run did not stop within {self._terminated:g} s of the stop "
                    "request, so its process was killed"
                )
            return {
                "event": "error",
                "kind": "died",
                "message": f"{message}; {self.kept()}",
                "hint": resume if has_checkpoint else "Start the run again (same folder).",
                "exit_code": code,
            }
        if code is not None and code < 0:
            name = signal_name(-code)
            message = f"the training process was killed by {name} (signal {-code})"
            hint = (
                "SIGKILL often means the system ran out of memory: try a smaller "
                "batch_size or model."
                if -code == signal.SIGKILL
                else "Something outside LayerLab ended the process; start the run again."
            )
        else:
            message = f"the training process ended without a word (exit code {code})"
            hint = "Start the run again."
        tail = log_tail(self.run_dir)
        if tail:
            hint += f" What it wrote last ({self.run_dir / LOG_NAME}):\n{tail}"
        else:
            message += ", with no message"
        message += f"; {self.kept()}"
        return {
            "event": "error",
            "kind": "died",
            "message": message,
            "hint": hint,
            "exit_code": code,
        }

    def events(self) -> Iterator[Event]:
        """Every event in order, ending after the ``done`` or ``error`` event."""
        while True:
            event = self._queue.get()
            if event is None:
                self._queue.put(None)  # later readers end too
                return
            yield event

    def poll(self, timeout: float = 0.0) -> list[Event]:
        """The events that have arrived, waiting up to ``timeout`` s for the first one."""
        out: list[Event] = []
        try:
            event = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return out
        while event is not None:
            out.append(event)
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                return out
        self._queue.put(None)
        return out

    def wait(self, timeout: float | None = None) -> Event | None:
        """Wait for the run to end and its files to be final (status written, lock
        released); the final event (None if ``timeout`` passed first)."""
        if not self._ended.wait(timeout):
            return None
        self._closed.wait(timeout)
        return self.final

    # ---------------------------------------------------------------- controls
    def pause(self) -> None:
        """Hold the run at the next batch (a ``paused`` event follows)."""
        self._pause.set()

    def resume(self) -> None:
        """Go on after :meth:`pause` (a ``resumed`` event follows)."""
        self._pause.clear()

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """Stop at the next batch, keeping what was trained (``done`` with ``stopped``).

        If the run does not notice within ``grace`` seconds (stuck in TensorFlow or
        still starting up), its process is terminated.
        """
        self._stop.set()
        self._pause.clear()
        threading.Thread(
            target=self._enforce_stop, args=(grace,), daemon=True, name="layerlab-training-stop"
        ).start()

    def _enforce_stop(self, grace: float) -> None:
        if self._stop_seen.wait(grace) or self._ended.is_set():
            return
        if self._process.is_alive():
            self._terminated = grace
            self._process.terminate()
            self._process.join(timeout=3)
            if self._process.is_alive():
                self._process.kill()

    def kill(self) -> None:
        """End the process now (the run ends with an ``error`` event of kind ``died``;
        :meth:`kept` says what stays)."""
        if self._process.is_alive():
            self._killed = True
            self._process.kill()
            self._process.join(timeout=5)  # so that what it kept can be told truly

    def is_alive(self) -> bool:
        """Whether the child process is still running."""
        return self._process.is_alive()

    @property
    def pid(self) -> int | None:
        """The training process's pid."""
        return self._process.pid


def _child_main(
    sender: Any,
    stop: Any,
    pause: Any,
    stop_seen: Any,
    project: dict[str, Any],
    run_dir: str,
    base_dir: str | None,
    epochs: int | None,
    device: str | None,
    resume: bool,
) -> None:
    """The child process: train, sending every event to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _run_job(sender, (stop, pause, stop_seen), project, run_dir, base_dir, epochs, device, resume)


def _run_job(
    sender: Any,
    events: tuple[Any, Any, Any],
    project: dict[str, Any],
    run_dir: str,
    base_dir: str | None,
    epochs: int | None,
    device: str | None,
    resume: bool,
) -> None:
    """Train one run in this (child) process, sending every event; never returns."""
    stop, pause, stop_seen = events
    if runs.run_dir_problem(Path(run_dir), resume) is None:
        _output_to_log(Path(run_dir))
    parent = multiprocessing.parent_process()

    def emit(event: Event) -> None:
        try:
            sender.send(event)
        except (BrokenPipeError, OSError):  # the caller has gone: wind down
            stop.set()

    controls = Controls(
        stop=stop,
        pause=pause,
        stop_seen=stop_seen,
        caller_alive=lambda: parent is None or parent.is_alive(),
    )
    _stop_on_sigterm(controls)
    try:
        run_training(
            project,
            run_dir,
            base_dir=base_dir,
            epochs=epochs,
            device=device,
            resume=resume,
            emit=emit,
            controls=controls,
            fresh_process=True,  # a warm worker placed nothing but its own device
            lock=False,  # the parent holds it
        )
    finally:
        sender.close()
    # Everything is written and closed; skip TensorFlow's slow interpreter teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# ------------------------------------------------------------------------ warm worker
WARM_TAKE_S = 120.0
"""How long handing a run to a warm worker still importing TensorFlow may wait for it
to take the run (it is the time a fresh process would need too); a worker that dies
meanwhile is noticed at once and a fresh process spawned instead."""

SPARE_NICE = 10
"""The niceness of the thread a low-priority warm worker imports TensorFlow in (a
spare started while a run trains: the run keeps most of the cores). Not ``SCHED_IDLE``:
a busy machine starves such a thread, and an unprivileged process cannot raise it
again once the run has ended."""


def device_key(device: str | None, gpus: int | None = None) -> str:
    """What a training process sets up for a device request, before its first run.

    A process shows TensorFlow only the GPUs its run uses, once: a worker set up for
    one key cannot train a run that needs another. With ``gpus`` (how many GPUs the
    machine has) ``auto`` and ``all`` are resolved; on a machine without GPUs every
    request but ``gpu:N`` (which fails) needs the same (``cpu``).
    """
    spec = (device or "auto").strip().lower()
    if spec == "gpu":
        spec = "gpu:0"
    if gpus is None:
        return spec
    if spec == "auto":
        return "gpu:0" if gpus else "cpu"
    if spec == "all" and not gpus:
        return "cpu"
    return spec


class WarmWorker:
    """A training process started ahead of time: it imports TensorFlow, sets up its
    device, warms Keras up on a tiny model, then waits for one run
    (:func:`start_training` with ``warm=``). It trains at most one run and then ends,
    like any worker; start a new one for the next run::

        warm = WarmWorker(device="cpu")     # seconds before the user presses Train
        ...
        run = start_training(project, run_dir, warm=warm)   # run.warm: it was used

    An idle warm worker that was killed is noticed (:meth:`is_alive`) and never
    handed a run: the run spawns a fresh process. :meth:`close` ends an idle one.

    ``low_priority``: a spare started while a run trains. It imports TensorFlow in a
    thread of niceness :data:`SPARE_NICE` (on Linux that thread's own), so the run
    loses less to it, and fits its tiny model (at normal priority: the threads
    its own run will train on start then) only after :meth:`release`, once that run
    has ended; a run handed to it before then skips the fit.

    Attributes:
        device: The device request it was set up for (:func:`device_key`).
        used: It was offered a run (taken, or closed because it did not fit).
        info: What the worker said once ready (``device`` key, ``gpus``, ``warm_s``,
            ``problem`` when warming up failed), else None.
    """

    def __init__(self, device: str | None = None, *, low_priority: bool = False) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.device = device_key(device)
        self.low_priority = low_priority
        self._released = False
        self.used = False
        self.info: dict[str, Any] | None = None
        self.controls = (ctx.Event(), ctx.Event(), ctx.Event())  # stop, pause, stop seen
        self._mutex = threading.Lock()
        receiver, sender = ctx.Pipe(duplex=False)
        jobs, child_jobs = ctx.Pipe(duplex=True)
        self._process = ctx.Process(
            target=_warm_main,
            name="layerlab-training-warm",
            daemon=True,
            args=(sender, child_jobs, *self.controls, self.device, low_priority),
        )
        self._process.start()
        sender.close()
        child_jobs.close()
        self._events, self._jobs = receiver, jobs

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self._process.pid

    def is_alive(self) -> bool:
        """Whether it is alive and still waiting for a run."""
        return not self.used and self._process.is_alive()

    def ready(self) -> bool:
        """Whether it has imported TensorFlow and waits (never blocks)."""
        with self._mutex:
            if self.info is None and not self.used:
                with contextlib.suppress(EOFError, OSError):
                    if self._jobs.poll():
                        self.info = self._jobs.recv()
            return self.info is not None and self.is_alive()

    def release(self) -> None:
        """A spare may finish warming up now (the run it was started beside has ended);
        nothing for a worker that is not a spare, or is used already."""
        with self._mutex:
            if self.low_priority and not self.used and not self._released:
                self._released = True
                with contextlib.suppress(OSError, ValueError):
                    self._jobs.send({"warm_up": True})

    def fits(self, device: str | None) -> bool:
        """Whether a run asking for ``device`` can train in this worker."""
        if self.info is not None and isinstance(self.info.get("gpus"), int):
            return device_key(device, self.info["gpus"]) == self.info.get("device")
        return device_key(device) == self.device

    def take(self, job: tuple[Any, ...], device: str | None) -> tuple[Any, Any] | None:
        """Hand it one run (the arguments of the child's run); ``(process, event
        receiver)`` once it has taken the run, else None (it was dead, set up for
        another device, or died before taking it: it is closed then)."""
        self.ready()
        with self._mutex:
            if self.used:
                return None
            self.used = True
            if not self._process.is_alive() or not self.fits(device):
                self._end()
                return None
            try:
                self._jobs.send(job)
                taken = self._wait_taken()
            except (OSError, EOFError, ValueError):
                taken = False
            if not taken:
                self._end()
                return None
            self._jobs.close()
            return self._process, self._events

    def _wait_taken(self) -> bool:
        deadline = time.monotonic() + WARM_TAKE_S
        while (left := deadline - time.monotonic()) > 0:
            if not connection.wait([self._jobs, self._process.sentinel], timeout=left):
                return False
            if not self._jobs.poll():  # only the process ended
                return False
            message = self._jobs.recv()
            if message.get("taken"):
                return True
            self.info = message  # the ready note came first
        return False

    def close(self) -> None:
        """End it if it is still waiting (a worker that took a run is the run's)."""
        with self._mutex:
            if not self.used:
                self.used = True
                self._end()

    def _end(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join(timeout=5)
        for conn in (self._jobs, self._events):
            with contextlib.suppress(OSError):
                conn.close()


def _warm_main(
    sender: Any,
    jobs: Any,
    stop: Any,
    pause: Any,
    stop_seen: Any,
    device: str,
    low_priority: bool = False,
) -> None:
    """The warm worker: import and warm up, say so, wait for one run and train it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    output_to_devnull()  # TensorFlow's start-up chatter; the run's output goes to its log
    started = time.monotonic()
    info: dict[str, Any] = {"ready": True, "device": device, "gpus": None}
    held: list[Any] = []  # a run handed to a spare before its release
    try:
        info.update(_warm_up(device, jobs, low_priority, held))
    except Exception as exc:  # the run itself will meet and report it
        info["problem"] = f"{type(exc).__name__}: {exc}"
    info["warm_s"] = round(time.monotonic() - started, 3)
    try:
        jobs.send(info)
        job = held[0] if held else jobs.recv()
        jobs.send({"taken": True})
    except (EOFError, OSError):  # the app closed it, or has gone
        os._exit(0)
    jobs.close()
    project, run_dir, base_dir, epochs, run_device, resume = job
    _run_job(
        sender, (stop, pause, stop_seen), project, run_dir, base_dir, epochs, run_device, resume
    )


def _import_tensorflow(low_priority: bool) -> None:
    """Import TensorFlow, Keras (and sklearn's data sets); ``low_priority``: in a
    thread of the lowest priority (:func:`_lower_priority`)."""
    failed: list[BaseException] = []

    def imports() -> None:
        if low_priority:
            _lower_priority(threading.get_native_id())
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401

            with contextlib.suppress(ImportError):  # the built-in data sets
                import sklearn.datasets  # noqa: F401
        except BaseException as exc:  # raised again in the main thread
            failed.append(exc)

    if not low_priority:
        imports()
    else:
        thread = threading.Thread(target=imports, name="layerlab-spare-import")
        thread.start()
        thread.join()
    if failed:
        raise failed[0]


def _lower_priority(thread_id: int) -> None:
    """Give one thread niceness :data:`SPARE_NICE` (on Linux that thread alone).
    Best effort: a system that refuses leaves it as it was."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, thread_id, SPARE_NICE)


def _warm_up(
    device: str, jobs: Any, low_priority: bool = False, held: list[Any] | None = None
) -> dict[str, Any]:
    """Import TensorFlow, set the device up and fit a tiny model once, so that the
    run's own start costs only its model (Keras's first-use work is done). The fit
    is skipped when a run is already waiting (it would only delay it). A spare
    (``low_priority``) fits only once released; a run that comes first goes to
    ``held``."""
    _import_tensorflow(low_priority)
    import keras
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    placement = place(device, fresh_process=True)
    key = {"device": device_key(device, gpus), "gpus": gpus}
    if low_priority:
        message = jobs.recv()  # the release, or a run
        if not (isinstance(message, dict) and message.get("warm_up")):
            if held is not None:
                held.append(message)
            return key
    if jobs.poll():
        return key
    with placement.scope():
        model = keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                keras.layers.Conv2D(2, 3, padding="same", activation="relu"),
                keras.layers.MaxPooling2D(2),
                keras.layers.Flatten(),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )
        model.compile(  # two steps per call: the path most "auto" runs take
            optimizer=keras.optimizers.Adam(),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            steps_per_execution=2,
        )
        model.fit(
            np.zeros((4, 8, 8, 1), "float32"),
            np.zeros(4, "int32"),
            batch_size=2,
            epochs=1,
            verbose=0,
        )
    keras.backend.clear_session()  # no names, no graphs left for the run
    return key


def output_to_devnull() -> None:
    """Send this process's stdout and stderr to the null device (TensorFlow's chatter)."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _stop_on_sigterm(controls: Controls) -> None:
    """SIGTERM: stop at the next batch, writing the checkpoint and the model (a
    second SIGTERM, or one before training has begun, ends the process at once)."""

    def on_term(signum: int, frame: Any) -> None:
        if controls.reason or not controls.fitting:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        controls.reason = "SIGTERM"
        controls.pause.clear()
        controls.stop.set()

    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGTERM, on_term)


def kept_text(run_dir: Path) -> str:
    """What a run that ends now keeps: its last checkpoint (and epoch), or nothing."""
    epoch = runs.checkpoint_epoch(run_dir)
    if epoch and runs.has_checkpoint(run_dir):
        last = Path(run_dir) / "checkpoints" / "last.keras"
        return f"kept: the last checkpoint, epoch {epoch} ({last})"
    return "no checkpoint was written yet, so no trained weights are kept"


LOG_NAME = "worker.log"
"""The child's stdout and stderr (TensorFlow's chatter, crash reports), in the run dir."""


def _output_to_log(run_dir: Path) -> None:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to worker.log."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


_NOISE = re.compile(
    r"^(?:[IW]\d{4} |\d{4}-\d\d-\d\d[ T][\d:.]+: [IW] )"  # absl / TensorFlow info, warnings
    r"|All log messages before absl::InitializeLog"
    r"|Unable to register cu(?:DNN|FFT|BLAS) factory"
    r"|failed call to cuInit|Could not find cuda drivers|cuda drivers on your machine"
    r"|oneDNN custom operations are on|TF_ENABLE_ONEDNN_OPTS"
    r"|This TensorFlow binary is optimized|rebuild TensorFlow with the appropriate"
    r"|TF-TRT Warning|computation placer already registered"
    r"|successful NUMA node read|StreamExecutor device"
)
_ERROR = re.compile(
    r"error|exception|fatal|abort|segmentation fault|killed|out of memory|check failed"
    r"|^[EF]\d{4} |: [EF] ",
    re.IGNORECASE,
)


def log_tail(run_dir: Path, lines: int = 3) -> str:
    """The lines of a run's worker.log that explain how its process ended: the end of
    the last traceback, else the last error lines, skipping TensorFlow's start-up
    noise (CUDA, cuDNN, oneDNN, absl notes). "" when it says nothing of the kind."""
    try:
        with open(Path(run_dir) / LOG_NAME, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    keep = [line.rstrip() for line in text.splitlines() if line.strip()]
    keep = [line for line in keep if not _NOISE.search(line)]
    starts = [i for i, line in enumerate(keep) if line.startswith("Traceback (most recent")]
    if starts:
        block = keep[starts[-1] :]
        end = next(
            (i for i, line in enumerate(block) if i and not line.startswith((" ", "\t"))),
            len(block) - 1,
        )
        block = block[: end + 1]  # to the exception line
        return "\n".join(block[-lines:])
    errors = [line for line in keep if _ERROR.search(line)]
    return "\n".join(errors[-lines:])
