"""Training across several machines with TensorFlow's MultiWorkerMirroredStrategy.

Each machine runs one worker; worker 0 is the chief and writes the run directory::

    layerlab train  project.json --cluster a:2222,b:2222,c:2222 --index 0   # on a
    layerlab worker project.json --cluster a:2222,b:2222,c:2222 --index 1   # on b
    layerlab worker project.json --cluster a:2222,b:2222,c:2222 --index 2   # on c

``--cluster project`` takes the addresses from the project's ``training.cluster``;
``--cluster env`` takes the whole cluster from ``TF_CONFIG`` (Kubernetes, batch
schedulers). The ``training`` section may hold::

    "cluster": {"workers": ["a:2222", "b:2222"], "global_batch_size": 64,
                "timeout_s": 60, "join_timeout_s": 300, "checkpoint_interval_s": 30}

Every worker trains in a child process (``TF_CONFIG`` must be set before TensorFlow
starts the strategy, and a stuck collective must never hang the command). The parent
process, which never imports TensorFlow, is a watchdog: each second it greets every
other worker's gRPC server (an HTTP/2 preface; a stopped or hung process leaves it
unanswered even though its port stays open), and ends the run with a message naming
the worker's address when one never joins (``join_timeout_s``), when its port closes,
or when it stays silent while the cluster makes no progress for ``timeout_s``; and in
any case when the cluster makes no progress for 2 x ``timeout_s`` + 30 s. The training
loop itself is in :mod:`engine.train.distributed.loop`; checking and turning the cluster
settings into addresses is :mod:`engine.train.cluster`. The commands
``layerlab train --cluster`` and ``layerlab worker`` are in :mod:`engine.cli`.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.train import runs
from engine.train.cluster import (
    DEFAULT_JOIN_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    ClusterError,
    answers,
    cluster_problems,
    knock,
    named_workers,
    port_taken,
    resume_command,
    split_address,
    tf_config,
    worker_commands,
)
from engine.train.config import Event, training_problems
from engine.train.distributed.collectives import unresponsive_peers
from engine.train.distributed.loop import train_worker
from engine.train.fit import TrainingError, classify_exception
from engine.train.lock import acquire

PROBE_INTERVAL_S = 1.0
PROBE_FAILURES = 3
"""Consecutive failed probes after which a worker counts as gone."""
STALL_MARGIN_S = 30.0

_TASK = re.compile(r"task:(\d+)")


# -------------------------------------------------------------------------- the run


def start_cluster_training(
    project: Any,
    run_dir: str | os.PathLike | None,
    workers: list[str],
    index: int = 0,
    *,
    epochs: int | None = None,
    device: str | None = None,
    resume: bool = False,
    base_dir: str | os.PathLike | None = None,
    config: dict[str, Any] | None = None,
) -> ClusterRun:
    """Start this machine's worker of a cluster run in a child process.

    Args:
        project: A :class:`engine.model.project.Project` or its ``to_dict()``.
        run_dir: The run directory (the chief's); None on the other workers.
        workers: Every worker's ``host:port``, in index order.
        index: This machine's index (0: the chief).
        epochs, device, resume: As for ``layerlab train`` (the chief's epochs win).
        base_dir: Folder for relative data paths (default: the project file's).
        config: The TF_CONFIG to use (default: built from ``workers`` and ``index``).

    Raises:
        ClusterError: The training section or the cluster settings are wrong.
        engine.train.lock.RunDirBusy: Another run holds the chief's ``run_dir``.
    """
    project_path = "PROJECT"
    if hasattr(project, "to_dict"):
        if base_dir is None:
            base_dir = getattr(project, "base_dir", None)
        if getattr(project, "path", None):
            project_path = str(project.path)
        project = project.to_dict()
    section = dict(project.get("training") or {})
    problems = training_problems({k: v for k, v in section.items() if k != "cluster"})
    problems += cluster_problems(section.get("cluster"))
    if problems:
        raise ClusterError("training settings: " + "; ".join(problems))
    if index == 0 and run_dir is None:
        raise ClusterError("the chief (index 0) needs a run directory")
    if port_taken(workers[index]):
        raise ClusterError(
            f"this machine's address {workers[index]} (worker {index}): "
            f"port {split_address(workers[index])[1]} is already in use here; pick "
            "another port for it in the cluster list"
        )
    return ClusterRun(
        project,
        None if run_dir is None else Path(run_dir),
        workers,
        index,
        epochs=epochs,
        device=device,
        resume=resume,
        base_dir=None if base_dir is None else str(base_dir),
        config=config or tf_config(workers, index),
        project_path=project_path,
    )


_WORKER_DIR = "layerlab-worker-"


def _sweep_worker_dirs() -> None:
    """Remove the temporary folders of workers whose process is gone (killed ones)."""
    for path in Path(tempfile.gettempdir()).glob(f"{_WORKER_DIR}*-*"):
        pid = path.name[len(_WORKER_DIR) :].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


class ClusterRun:
    """One worker of a cluster run: a child process and the watchdog around it.

    Attributes:
        run_dir: The chief's run directory (a temporary folder on other workers).
        workers, index: The cluster and this worker's place in it.
        final: The ``done`` or ``error`` event once the run has ended.
    """

    def __init__(
        self,
        project: dict[str, Any],
        run_dir: Path | None,
        workers: list[str],
        index: int,
        *,
        epochs: int | None,
        device: str | None,
        resume: bool,
        base_dir: str | None,
        config: dict[str, Any],
        project_path: str = "PROJECT",
    ) -> None:
        cluster = (project.get("training") or {}).get("cluster") or {}
        self.timeout_s = float(cluster.get("timeout_s", DEFAULT_TIMEOUT_S))
        self.join_timeout_s = float(cluster.get("join_timeout_s", DEFAULT_JOIN_TIMEOUT_S))
        self.workers, self.index = workers, index
        self.project_path = project_path
        self.is_chief = index == 0
        if not self.is_chief:
            _sweep_worker_dirs()
        self._temp = (
            None if self.is_chief else tempfile.mkdtemp(prefix=f"{_WORKER_DIR}{os.getpid()}-")
        )
        self.run_dir = run_dir if self.is_chief and run_dir else Path(self._temp or ".")
        self._lock = None  # the chief holds its run directory, as a local run does
        if self.is_chief and (
            runs.run_dir_problem(self.run_dir, resume) is None or self.run_dir.is_dir()
        ):
            self._lock = acquire(self.run_dir)
        self.final: Event | None = None
        self.phase = "join"  # join -> setup (data, model) -> run -> finishing
        self.epoch = 0
        self._failure: Event | None = None
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self._ended = threading.Event()
        self._last_event = time.monotonic()
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        receiver, sender = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=_child_main,
            daemon=True,
            name=f"layerlab-cluster-worker-{index}",
            args=(
                sender,
                self._stop,
                project,
                str(self.run_dir),
                self.is_chief,
                workers,
                json.dumps(config),
                epochs,
                device,
                resume,
                base_dir,
            ),
        )
        self._started = time.monotonic()
        try:
            self._process.start()
        except BaseException:
            if self._lock is not None:
                self._lock.release()
            raise
        if self._lock is not None:
            if self._lock.note:
                self._queue.put({"event": "warning", "message": self._lock.note})
            self._lock.add_pid(self._process.pid)
        sender.close()
        threading.Thread(
            target=self._read, args=(receiver,), daemon=True, name="layerlab-cluster-events"
        ).start()
        threading.Thread(target=self._watch, daemon=True, name="layerlab-cluster-watchdog").start()

    # --------------------------------------------------------------- events
    def _read(self, receiver: Any) -> None:
        while True:
            try:
                event = receiver.recv()
            except (EOFError, OSError):
                break
            self._last_event = time.monotonic()
            kind = event.get("event")
            if kind == "_beat":
                continue
            if kind == "_joined":  # loading data and building the model next
                self.phase = "setup"
                continue
            if kind == "_finished":
                self.phase = "finishing"
                continue
            if kind == "_epoch":  # a worker's progress, for its messages
                self.epoch = int(event["epoch"])
                continue
            if kind == "epoch":
                self.epoch = int(event.get("epoch", self.epoch))
            if kind == "started":
                self.epoch = int(event.get("initial_epoch") or 0)
                self.phase = "run"
            if kind == "error":
                event = self._explain(event)
            if kind in ("done", "error"):
                self.final = event
                self._queue.put(event)
                break
            self._queue.put(event)
        receiver.close()
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)
        if self.final is None:
            self.final = self._failure or self._died()
            self._record(self.final)
            self._queue.put(self.final)
        if self._temp:
            shutil.rmtree(self._temp, ignore_errors=True)
        if self._lock is not None:
            self._lock.release()
        self._ended.set()
        self._queue.put(None)

    def _record(self, event: Event, log_event: bool = True) -> None:
        """Write a failure the child could not write into the chief's run directory."""
        if not self.is_chief or not self.run_dir.is_dir():
            return
        runs.write_status(self.run_dir, "failed", message=event["message"], kind=event.get("kind"))
        if not log_event:
            return
        log = runs.EventLog(self.run_dir)
        log.write(event)
        log.close()

    def events(self) -> Iterator[Event]:
        """Every public event in order, ending after ``done`` or ``error``."""
        while True:
            event = self._queue.get()
            if event is None:
                self._queue.put(None)
                return
            yield event

    def wait(self, timeout: float | None = None) -> Event | None:
        """Wait for the end; the final event (None if ``timeout`` passed first)."""
        self._ended.wait(timeout)
        return self.final

    def stop(self) -> None:
        """Stop every worker after the current epoch (the model so far is kept)."""
        self._stop.set()

    def kill(self) -> None:
        """End this worker now (the others stop when they notice)."""
        if self._process.is_alive():
            kept = (
                f"; the checkpoints written so far are kept in {self.run_dir}/checkpoints"
                if self.is_chief
                else ""
            )
            self._fail("died", f"the run was killed at your request{kept}", "")

    def is_alive(self) -> bool:
        return self._process.is_alive()

    # ------------------------------------------------------------- watchdog
    def _peers(self) -> list[int]:
        return [i for i in range(len(self.workers)) if i != self.index]

    def _down(self, tries: int = PROBE_FAILURES) -> list[int]:
        """Peers whose port refuses ``tries`` greetings in a row, or that leave one
        unanswered for the probe's whole timeout (stopped or hung)."""
        down = self._peers()
        for attempt in range(tries):
            states = {i: answers(self.workers[i]) for i in down}
            down = [i for i, state in states.items() if not state]
            if all(states[i] is False for i in down):
                break
            if attempt < tries - 1:
                time.sleep(0.3)
        return down

    def _watch(self) -> None:
        misses = {i: 0 for i in self._peers()}
        waiting_shown: list[int] | None = None
        while not self._ended.wait(PROBE_INTERVAL_S):
            if self._failure or not self._process.is_alive():
                continue
            now = time.monotonic()
            if self.phase == "join":
                missing = [i for i in self._peers() if not knock(self.workers[i])]
                if now - self._started > 3 and missing != waiting_shown:
                    waiting_shown = missing
                    if missing:
                        self._queue.put(
                            {"event": "waiting", "workers": [self.workers[i] for i in missing]}
                        )
                if now - self._started > self.join_timeout_s:
                    self._never_joined(missing)
            elif self.phase in ("setup", "run"):
                closed = set()
                for i in self._peers():
                    state = answers(self.workers[i])
                    misses[i] = 0 if state else misses[i] + 1
                    if state is None:
                        closed.add(i)
                # A closed port means the process is gone; an open one that stays silent
                # (stopped, hung) counts once the cluster itself has stalled.
                stalled = time.monotonic() - self._last_event > self.timeout_s
                gone = [
                    i for i, n in misses.items() if n >= PROBE_FAILURES and (i in closed or stalled)
                ]
                if gone:
                    self._fail(
                        "cluster",
                        f"{named_workers(self.workers, gone)} stopped answering "
                        f"{self._when()}; the run stopped",
                        self._resume_hint(),
                    )
                elif (
                    self.phase == "run"
                    and now - self._last_event > 2 * self.timeout_s + STALL_MARGIN_S
                ):
                    self._fail(
                        "cluster",
                        f"the cluster made no progress for "
                        f"{now - self._last_event:.0f} s {self._when()}; a worker "
                        f"is stuck",
                        self._resume_hint(),
                    )

    def _never_joined(self, missing: list[int]) -> None:
        if missing:
            who = f"{named_workers(self.workers, missing)} never joined"
        else:
            who = (
                f"the cluster did not form (every port answers, but not every worker: "
                f"is another program on {', '.join(self.workers[i] for i in self._peers())}"
                "?)"
            )
        commands = (
            worker_commands(self.project_path, self.workers, self.index) if self.is_chief else []
        )
        hint = (
            "Start "
            + ("them" if len(missing) != 1 else "it")
            + " with: "
            + " ; ".join(
                c for c in commands if int(c.rsplit(" ", 1)[1]) in (missing or self._peers())
            )
            if commands
            else "Check that the chief was started and can be reached."
        )
        self._fail("cluster", f"{who} within {self.join_timeout_s:g} s", hint)

    def _when(self) -> str:
        return (
            f"during epoch {self.epoch + 1}"
            if self.phase in ("run", "finishing")
            else "at the start"
        )

    def _resume_hint(self) -> str:
        if not self.is_chief:
            return "Start this worker again when the chief resumes the run."
        if self.epoch:
            return (
                f"Epochs 1-{self.epoch} are saved in {self.run_dir}/checkpoints; once "
                f"every worker runs again, resume with: "
                f"{resume_command(self.run_dir, self.workers)}"
            )
        return "No epoch finished; start the run again once every worker runs."

    def _fail(self, kind: str, message: str, hint: str) -> None:
        if self._failure is None:
            self._failure = {"event": "error", "kind": kind, "message": message, "hint": hint}
        if self._process.is_alive():
            self._process.kill()

    def _explain(self, event: Event) -> Event:
        """Name the worker behind a collective failure the child reported."""
        text = event.get("message", "")
        if event.get("kind") != "cluster":
            return event
        down = self._down() or [
            i for i in event.get("unresponsive") or [] if 0 <= i < len(self.workers)
        ]
        if down:
            named = named_workers(self.workers, down)
        else:
            m = _TASK.search(text)
            named = (
                named_workers(self.workers, [int(m.group(1))])
                if m and int(m.group(1)) < len(self.workers)
                else ""
            )
        if named:
            event = {
                **event,
                "message": f"{named} stopped answering {self._when()}; the run stopped",
                "hint": self._resume_hint(),
                "detail": text,
            }
            self._record(event, log_event=False)
        return event

    def _died(self) -> Event:
        code = self._process.exitcode
        down = self._down()
        if down:
            return {
                "event": "error",
                "kind": "cluster",
                "message": f"{named_workers(self.workers, down)} stopped answering "
                f"{self._when()}; the run stopped",
                "hint": self._resume_hint(),
            }
        return {
            "event": "error",
            "kind": "died",
            "message": f"the training process of worker {self.index} "
            f"({self.workers[self.index]}) ended without a word (exit code "
            f"{code})",
            "hint": "Its output above may say why.",
        }


# ---------------------------------------------------------------------------- the child

_CLUSTER_ERRORS = (
    "UnavailableError",
    "DeadlineExceededError",
    "CancelledError",
    "AbortedError",
    "InternalError",
    "FailedPreconditionError",
)


def _child_main(
    sender: Any,
    stop: Any,
    project: dict[str, Any],
    run_dir: str,
    is_chief: bool,
    workers: list[str],
    config: str,
    epochs: int | None,
    device: str | None,
    resume: bool,
    base_dir: str | None,
) -> None:
    """The child: set TF_CONFIG (before TensorFlow starts), train, send every event."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ["TF_CONFIG"] = config
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parent = os.getppid()

    def orphan_guard() -> None:  # a parent killed with SIGKILL must not leave us running
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=orphan_guard, daemon=True).start()
    path = Path(run_dir)
    log = runs.EventLog(path) if is_chief else None

    def emit(event: Event) -> None:
        if log is not None and not event["event"].startswith("_"):
            log.write(event)
        with contextlib.suppress(BrokenPipeError, OSError):
            sender.send(event)

    final = _train_child(
        project, path, is_chief, workers, epochs, device, resume, base_dir, emit, stop
    )
    emit(final)
    if log is not None:
        log.close()
    sender.close()
    # A clean interpreter exit may wait on TensorFlow's cluster shutdown; the run is over.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _train_child(
    project: dict[str, Any],
    path: Path,
    is_chief: bool,
    workers: list[str],
    epochs: int | None,
    device: str | None,
    resume: bool,
    base_dir: str | None,
    emit: Any,
    stop: Any,
) -> Event:
    if is_chief:
        problem = runs.run_dir_problem(path, resume)
        if problem:
            return TrainingError("config", problem, "Pick a new run directory.").event()
        resume, notes = runs.claim_run_dir(path, resume)  # the parent holds the lock
        for note in notes:
            emit({"event": "warning", "message": note})
    try:
        return train_worker(
            project,
            path,
            is_chief=is_chief,
            addresses=workers,
            epochs=epochs,
            resume=resume,
            base_dir=base_dir,
            device=device,
            emit=emit,
            stop_requested=stop.is_set,
        )
    except TrainingError as exc:
        final = exc.event()
    except Exception as exc:
        name = type(exc).__name__
        if name in _CLUSTER_ERRORS:
            first = (str(exc).strip().splitlines() or [name])[0]
            final = {
                "event": "error",
                "kind": "cluster",
                "message": f"a collective step failed: {name}: {first[:300]}",
                "hint": "A worker stopped or cannot be reached.",
            }
            with contextlib.suppress(Exception):
                final["unresponsive"] = unresponsive_peers()
        else:
            final = classify_exception(exc)
        if is_chief:
            with contextlib.suppress(OSError):
                path.mkdir(parents=True, exist_ok=True)
                (path / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
    if is_chief:
        runs.write_status(path, "failed", message=final["message"], kind=final["kind"])
    return final
