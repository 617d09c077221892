"""``layerlab train PROJECT [--epochs N] [--out RUN_DIR] [--device D] [--json] [--resume RUN_DIR]
[--cluster HOST:PORT,... --index 0]``.

The run happens in a worker process (:mod:`engine.train.worker`), as in the GUI. On a
terminal a one-line progress bar is redrawn in place; otherwise one line per
epoch. ``--json`` prints one JSON object per line: ``{"event": "epoch", "epoch": N,
"logs": {...}}`` per epoch, then ``{"event": "done", "run_dir": ..., "model": ...,
"history": {...}}`` or ``{"event": "error", "message": ...}``.

``--resume RUN_DIR`` continues that run from its last checkpoint (optimizer state,
learning-rate schedule and epoch count carry on), using the PROJECT's settings if one
is given, else the run's own ``project.json``; ``--epochs N`` then trains N more
epochs (default: on up to the project's ``epochs``). Without ``--out`` a new run
directory ``<project folder>/<project stem>-runs/<time>`` is made, the folder the
window lists for that file (:func:`engine.train.runs.runs_root`).

With ``--cluster`` this machine is the chief (worker 0) of a multi-machine run
(:mod:`engine.train.distributed.run`); it prints the ``layerlab worker`` command
for each other machine and then the same progress.

A run directory holds one run at a time: another ``train`` into a folder in use is
refused ("RUN_DIR is in use by process PID", exit 2). A folder whose run was
stopped before its first checkpoint is started again in place (``--out`` or
``--resume``).

Exit status: 0 when the run finished, 1 when it failed (the reason on the last
line), 2 when the project or its data cannot be read (a data error: a missing or
refused data file, a limit) or the run directory is in use, 130 when stopped with
Ctrl-C, 143 when stopped by SIGTERM (the run directory and everything trained so far
are kept; a second Ctrl-C kills the run at once and keeps its last checkpoint).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from engine.human import duration
from engine.model.project import Project, ProjectError, load_project
from engine.train import runs
from engine.train.cluster import ClusterError, resolve_cluster, worker_commands
from engine.train.config import Event
from engine.train.distributed.run import start_cluster_training
from engine.train.execution import per_call_text
from engine.train.lock import RunDirBusy
from engine.train.worker import kept_text, start_training


def project_and_run_dir(args: Any) -> tuple[Any, Path]:
    """The project to train and its run directory, from ``layerlab train`` arguments.

    The project is the PROJECT file, else the snapshot (``project.json``) of
    ``--resume RUN_DIR``. The run directory is the resumed one, else ``--out``,
    else a new one where the window puts the file's runs
    (:func:`engine.train.runs.project_run_dir`). The same for a
    local run and for the chief of a cluster run.

    Raises:
        ProjectError: The project cannot be read, or neither PROJECT nor
            ``--resume`` was given.
    """
    resume_dir = getattr(args, "resume", None)
    if getattr(args, "project", None):
        project = load_project(args.project)
    elif resume_dir:
        snapshot = Path(resume_dir) / "project.json"
        data = runs.read_json(snapshot)
        if data is None:
            raise ProjectError(
                f"{snapshot}: missing or unreadable; is {resume_dir} a run directory?"
            )
        project = Project.from_dict(data, source=str(snapshot))
    else:
        raise ProjectError("give a PROJECT file, or --resume RUN_DIR")
    if resume_dir:
        return project, Path(resume_dir)
    if getattr(args, "out", None):
        return project, Path(args.out)
    return project, runs.project_run_dir(project, create=False)


def cli_train(args: Any) -> int:
    """Run ``layerlab train`` with parsed ``args``; return the exit status."""
    if getattr(args, "cluster", None):
        return _train_chief(args)
    resume_dir = getattr(args, "resume", None)
    try:
        project, run_dir = project_and_run_dir(args)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    show = _reporter(args)
    try:
        run = start_training(
            project,
            run_dir,
            epochs=getattr(args, "epochs", None),
            device=getattr(args, "device", None),
            resume=bool(resume_dir),
        )
    except (RunDirBusy, OSError) as exc:
        print(f"error: {_cannot_use(run_dir, exc)}", file=sys.stderr)
        return 2
    return follow(run, show, "stopping after this batch (Ctrl-C again to kill it now) ...")


def _cannot_use(run_dir: Path, exc: Exception) -> str:
    if isinstance(exc, RunDirBusy):
        return str(exc)
    reason = getattr(exc, "strerror", None) or str(exc)
    return f"{run_dir}: cannot be used as the run directory ({reason})"


def _train_chief(args: Any) -> int:
    """``layerlab train PROJECT --cluster HOST:PORT,... --index 0``: the chief.

    Shows the usual progress (or ``--json`` lines); exit 0 done, 1 failed, 2 bad
    arguments, 130 stopped with Ctrl-C.
    """
    try:
        project, run_dir = project_and_run_dir(args)
        workers, index, config = resolve_cluster(
            args.cluster, getattr(args, "index", 0), project.training
        )
        if index != 0:
            raise ClusterError(
                f"`layerlab train` runs the chief (--index 0); start worker "
                f"{index} with `layerlab worker PROJECT --cluster "
                f"{','.join(workers)} --index {index}`"
            )
        run = start_cluster_training(
            project,
            run_dir,
            workers,
            index,
            epochs=getattr(args, "epochs", None),
            device=getattr(args, "device", None),
            resume=bool(getattr(args, "resume", None)),
            config=config,
        )
    except (ProjectError, ClusterError, RunDirBusy) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    show = _reporter(args)
    if len(workers) > 1:
        where = args.project if getattr(args, "project", None) else "PROJECT"
        show.note(
            f"chief of {len(workers)} workers ({workers[0]}); on the other machines "
            "run:\n  " + "\n  ".join(worker_commands(where, workers, index))
        )
    return follow(
        run, show, "stopping every worker after this epoch (Ctrl-C again to kill it now) ..."
    )


def _reporter(args: Any) -> Reporter:
    if getattr(args, "json", False):
        return JsonReporter(sys.stdout)
    return HumanReporter(sys.stdout, sys.stderr)


class Terminated(KeyboardInterrupt):
    """SIGTERM to the command: handled as a first Ctrl-C (stop, keeping what was trained)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated


def kill_note(run: Any) -> str:
    """What the second Ctrl-C does and what stays, in one line."""
    run_dir = getattr(run, "run_dir", None)
    if getattr(run, "is_chief", True) is False:
        return "killing this worker now; the chief keeps the run's checkpoints"
    if run_dir is None:
        return "killing the run now"
    return f"killing the run now; {kept_text(Path(run_dir))}"


def follow(run: Any, show: Reporter, stopping: str) -> int:
    """Show every event of ``run`` (a local or a cluster run) until it ends; the exit status.

    The first Ctrl-C (or SIGTERM) asks the run to stop (``show.note(stopping)``),
    keeping what was trained; a second one kills it at once, saying what is kept
    (its last checkpoint).
    """
    interrupted = terminated = False
    previous = None
    with contextlib.suppress(ValueError):  # only the main thread may handle signals
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        while True:
            try:
                for event in run.events():  # a fresh iterator after each Ctrl-C
                    show(event)
                break
            except KeyboardInterrupt as exc:
                terminated = terminated or isinstance(exc, Terminated)
                if interrupted:  # a second Ctrl-C: do not wait any longer
                    run.kill()
                    show.note(kill_note(run))  # once it is dead: what it kept is known
                else:
                    interrupted = True
                    show.note(stopping)
                    run.stop()
        final = run.wait() or {"event": "error", "message": "the run ended without a result"}
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    stopped_code = 143 if terminated else 130
    if final["event"] == "error":
        return stopped_code if interrupted else 2 if final.get("kind") == "data" else 1
    return stopped_code if interrupted or final.get("stopped") else 0


class Reporter:
    """Shows events; ``note`` shows a line of its own."""

    def __call__(self, event: Event) -> None:
        raise NotImplementedError

    def note(self, text: str) -> None:
        raise NotImplementedError


class JsonReporter(Reporter):
    """One JSON object per line, in the form DESIGN.md documents."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, event: Event) -> None:
        kind = event.get("event")
        if kind == "epoch":
            line = {"event": "epoch", "epoch": event["epoch"], "logs": event["logs"]}
        elif kind == "done":
            line = {
                "event": "done",
                "run_dir": event["run_dir"],
                "model": event["model"],
                "history": event["history"],
            }
        elif kind == "error":
            message = event["message"]
            if event.get("hint"):
                message = f"{message}. {event['hint']}"
            line = {"event": "error", "message": message}
        elif kind == "waiting":  # a cluster run's chief, waiting for workers to join
            self.note(_waiting(event))
            return
        else:
            return
        self.out.write(json.dumps(line) + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)


class HumanReporter(Reporter):
    """A progress line redrawn in place on a terminal; one line per epoch otherwise."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out, self.err = out, err
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.epochs = 0
        self._drawn = False
        self._last_draw = 0.0

    def _line(self, text: str) -> None:
        self._clear()
        print(text, file=self.out, flush=True)

    def _clear(self) -> None:
        if self._drawn:
            self.out.write("\r" + " " * (shutil.get_terminal_size().columns - 1) + "\r")
            self._drawn = False

    def __call__(self, event: Event) -> None:
        kind = event.get("event")
        if kind == "started":
            self.epochs = event["epochs"]
            start = (
                f" from epoch {event['initial_epoch'] + 1}" if event.get("initial_epoch") else ""
            )
            per_call = per_call_text(event)
            self._line(
                f"training on {', '.join(event['devices'])}: "
                f"{event['total_params']:,} parameters, {event['samples']:,} samples, "
                f"{event['steps_per_epoch']} steps x {event['epochs']} epochs{start}"
                f"{', ' + per_call if per_call else ''}"
            )
            for note in event.get("notes") or []:
                self._line(note)
        elif kind == "batch" and self.tty:
            now = time.monotonic()
            if now - self._last_draw < 0.1:
                return
            self._last_draw = now
            eta = event.get("eta_s")
            text = (
                f"epoch {event['epoch']}/{self.epochs}  step {event['step']}/"
                f"{event['steps']}  {_metrics(event['logs'])}  "
                f"{event['samples_per_s']:,.0f} samples/s"
                + (f"  ETA {duration(eta)}" if eta is not None else "")
            )
            width = shutil.get_terminal_size().columns - 1
            self.out.write("\r" + text[:width].ljust(width))
            self.out.flush()
            self._drawn = True
        elif kind == "epoch":
            self._line(
                f"epoch {event['epoch']}/{self.epochs}  {_metrics(event['logs'])}"
                f"  ({event.get('time_s', 0):.1f} s)"
            )
        elif kind in ("paused", "resumed"):
            self._line(f"{kind} at epoch {event['epoch']}, step {event['step']}")
        elif kind == "warning":
            self._line(f"warning: {event['message']}")
        elif kind == "phase":  # fine-tuning (the training section's fine_tune) begins
            unfrozen = event.get("unfrozen") or []
            self._line(
                f"fine-tuning from epoch {event['epoch']}: {len(unfrozen)} layer(s) "
                f"unfrozen, learning rate {event['learning_rate']:g}"
            )
        elif kind == "waiting":  # a cluster run's chief, waiting for workers to join
            self.note(_waiting(event))
        elif kind == "done":
            what = "stopped; kept" if event.get("stopped") else "done:"
            self._line(
                f"{what} {event.get('epochs_done', '?')} epochs, model saved to "
                f"{event['model']} (run directory {event['run_dir']})"
            )
        elif kind == "error":
            self._clear()
            if event.get("hint"):
                print(f"hint: {event['hint']}", file=self.err)
            print(f"error: {event['message']}", file=self.err, flush=True)

    def note(self, text: str) -> None:
        self._clear()
        print(text, file=self.err, flush=True)


def _metrics(logs: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in logs.items() if k != "learning_rate")


def _waiting(event: Event) -> str:
    return f"waiting for {', '.join(event['workers'])} to join ..."
