"""The window's long Keras jobs, each in a child process of its own: import, export,
expand.

File > Import, Export and the inspector's "Expand" of a Backbone load TensorFlow and
may take from seconds to minutes (a big ``.keras`` file, a verified ONNX export). In
a thread of the window they held the interpreter lock and put ~700 MB of TensorFlow
into the window for good. Here each one is a spawned process that does the one job,
sends progress and its result over a pipe and ends; Cancel kills it (nothing it
wrote is kept: a cancelled export's temporary files beside its target are removed
by the job's reader thread once the process is gone, :func:`remove_partial_export`;
exports write through temporary names, so the target itself is never partial)::

    job = Job("import", {"path": "m.keras", "weights": "/tmp/m.weights.h5"}, on_event)
    job.start()
    # on_event({"event": "progress", "text": "Loading TensorFlow and converting…"})
    # on_event({"event": "done", "result": (project, notes, grouped)})
    # or on_event({"event": "failed", "error": <the exception the job raised>})

Why not requests to the engine service: the service answers shapes while the user
edits, one request at a time; a two-minute export there would leave the canvas
without shapes for two minutes, and a job killed by Cancel or by running out of
memory would take the shape service (and its cached graph) with it. A process per
job costs a TensorFlow import (~4.5 s, what the window's own first import cost
before) but never blocks shapes, frees its memory when done, and makes Cancel real.

Tests and screenshots that have Keras loaded already run the job on a thread of
their own process instead (``local=True``, chosen like
:class:`engine.service.client.LocalClient`).

Kinds and their ``args`` (all plain data; results are pickled back):

- ``import``: ``{"path", "weights"}`` -> ``(project, notes, grouped_notes)``
  (:func:`engine.io.importing.rebuild.import_model_with_notes`; the project travels
  as its dict and is rebuilt on the reader thread: a graph does not pickle).
- ``export``: ``{"source": run dir | project dict, "path": the project's file or None,
  "fmt", "out", "verify", "quantize"}`` -> :class:`engine.io.export.ExportResult`.
- ``expand``: ``{"project": a project dict holding the graph, "node", "input_shape"}`` ->
  :class:`engine.io.expand.Expansion` (or :class:`engine.io.expand.ExpandError`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing import connection
from pathlib import Path
from typing import Any

from engine.files import TEMP_MARK
from engine.human import signal_name
from engine.io import export as export_module
from engine.io.expand import expand_backbone
from engine.io.importing import rebuild
from engine.io.importing.read import read_config
from engine.model.project import Project
from engine.train.worker import output_to_devnull

KINDS = ("import", "export", "expand")

Listener = Callable[[dict[str, Any]], None]


class JobError(RuntimeError):
    """A job's failure that could not travel as itself (its type's name kept), or its
    process ending without a word (killed, out of memory, a crash in TensorFlow)."""

    def __init__(self, message: str, type_name: str = "RuntimeError") -> None:
        super().__init__(message)
        self.type_name = type_name

    def __reduce__(self) -> tuple[Any, ...]:
        return (JobError, (str(self), self.type_name))


def work(kind: str, args: dict[str, Any], progress: Callable[[str], None]) -> Any:
    """Do one job in this process; its result (raises what the job raises)."""
    if kind == "import":
        path = Path(args["path"])
        progress("Loading TensorFlow and converting the layers\u2026")
        project, notes = rebuild.import_model_with_notes(path, weights_out=args["weights"])
        return project.to_dict(), notes, rebuild.grouped_notes(notes)
    if kind == "export":
        source = args["source"]
        if isinstance(source, dict):
            path = args.get("path")
            source = Project.from_dict(source, path=Path(path) if path else None)
        progress(f"Exporting to {args['fmt']}\u2026")
        return export_module.export(
            source,
            args["fmt"],
            args["out"],
            verify=bool(args.get("verify", True)),
            quantize=str(args.get("quantize", "none")),
        )
    if kind == "expand":
        graph = Project.from_dict(args["project"], source="the graph to expand").graph
        shape = args.get("input_shape")
        progress("Building the network\u2026")
        return expand_backbone(graph, args["node"], None if shape is None else tuple(shape))
    raise ValueError(f"there is no job {kind!r}")


def portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a :class:`JobError` with its words."""
    try:
        back = pickle.loads(pickle.dumps(exc))
        if type(back) is type(exc) and str(back) == str(exc):
            return exc
    except Exception:
        pass
    return JobError(str(exc), type(exc).__name__)


def _child(conn: Any, kind: str, args: dict[str, Any]) -> None:
    """The job's process: load, work, answer, end (skipping TensorFlow's teardown)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the window's to handle
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    output_to_devnull()

    def progress(text: str) -> None:
        conn.send({"event": "progress", "text": text})

    try:
        if kind == "import":  # a file that holds no model is said before TensorFlow loads
            read_config(args["path"])
        message = {"event": "done", "result": work(kind, args, progress)}
    except BaseException as exc:  # MemoryError included: every failure is said
        message = {"event": "failed", "error": portable(exc)}
    try:
        conn.send(message)
    except Exception as exc:  # a result that cannot be pickled
        with contextlib.suppress(Exception):
            conn.send({"event": "failed", "error": JobError(str(exc), type(exc).__name__)})
    with contextlib.suppress(OSError):
        conn.close()
    os._exit(0)


class Job:
    """One job in a child process (or, ``local``, on a thread here).

    ``on_event`` is called from a background thread with ``progress``, then exactly
    one ``done`` or ``failed`` event, unless the job was cancelled first (then
    nothing more).

    Attributes:
        kind: One of :data:`KINDS`.
        local: It runs in this process (Keras is loaded here already).
        cancelled: :meth:`cancel` was called before it ended.
    """

    def __init__(
        self,
        kind: str,
        args: dict[str, Any],
        on_event: Listener,
        *,
        local: bool | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"there is no job {kind!r}")
        self.kind, self.args = kind, args
        self.local = "keras" in sys.modules if local is None else local
        self.cancelled = False
        self._on_event = on_event
        self._process: Any = None
        self._conn: Any = None
        self._ended = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run_here if self.local else self._run_child,
            name=f"layerlab-job-{kind}",
            daemon=True,
        )

    @property
    def pid(self) -> int | None:
        """The job's process id (None: local, or not started)."""
        process = self._process
        return None if process is None else process.pid

    def start(self) -> Job:
        if not self.local:
            ctx = multiprocessing.get_context("spawn")
            self._conn, child = ctx.Pipe(duplex=False)
            self._process = ctx.Process(
                target=_child,
                args=(child, self.kind, self.args),
                name=f"layerlab-{self.kind}",
                daemon=True,
            )
            try:
                self._process.start()  # here, so a failure to start is the caller's to see
            except BaseException:
                self._ended.set()
                raise
            finally:
                child.close()
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Nothing more is said; the process is killed (a local job's thread cannot be
        stopped: its result is dropped when it arrives)."""
        with self._lock:
            self.cancelled = True
        process = self._process
        if process is not None and process.is_alive():
            with contextlib.suppress(OSError, ValueError):
                process.kill()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the job has ended (its last event said); False on timeout."""
        return self._ended.wait(timeout)

    def done(self) -> bool:
        return self._ended.is_set()

    def _say(self, event: dict[str, Any]) -> None:
        if self.kind == "import" and event.get("event") == "done":
            data, notes, grouped = event["result"]
            try:
                project = Project.from_dict(data, source=str(self.args["path"]))
                event = {"event": "done", "result": (project, notes, grouped)}
            except Exception as exc:
                event = {"event": "failed", "error": exc}
        with self._lock:
            if self.cancelled:
                return
        with contextlib.suppress(Exception):  # a listener's bug must not stop the reader
            self._on_event(event)

    def _run_here(self) -> None:
        try:
            result = work(
                self.kind, self.args, lambda t: self._say({"event": "progress", "text": t})
            )
            final: dict[str, Any] = {"event": "done", "result": result}
        except BaseException as exc:
            final = {"event": "failed", "error": exc}
        self._say(final)
        self._ended.set()

    def _run_child(self) -> None:
        conn, process = self._conn, self._process
        final: dict[str, Any] | None = None
        try:
            while final is None:
                try:
                    connection.wait([conn, process.sentinel])
                    if not conn.poll():
                        break  # the process ended without its answer
                    message = conn.recv()
                except (EOFError, OSError):
                    break
                except Exception as exc:  # an answer that cannot be read here
                    message = {"event": "failed", "error": JobError(str(exc), type(exc).__name__)}
                if message.get("event") == "progress":
                    self._say(message)
                else:
                    final = message
            process.join(timeout=5)
            if self.cancelled and self.kind == "export":
                remove_partial_export(self.args.get("out"))
            if final is None:
                final = {"event": "failed", "error": JobError(self._death(process))}
            self._say(final)
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            self._ended.set()

    def _death(self, process: Any) -> str:
        code = process.exitcode
        if code is not None and code < 0:
            name = signal_name(-code)
            how = f"was ended by {name}"
            if code == -signal.SIGKILL:
                how += " (out of memory?)"
        else:
            how = f"ended unexpectedly (exit code {code})"
        return f"the {self.kind} process {how}"


def remove_partial_export(out: str | os.PathLike | None) -> list[Path]:
    """Remove what a killed export to ``out`` left beside it: its temporary file or
    SavedModel folder (``.NAME.layerlab-tmp-*``) and a python export's temporary
    weights file. A SavedModel folder moved aside to be replaced (``...old-PID``)
    goes back to ``out`` when the new one never took its place. Errors are ignored
    (a file that cannot be removed stays).

    Returns:
        The paths removed (or restored).
    """
    if not out:
        return []
    target = Path(out)
    names = (target.name, target.stem + ".weights.h5")
    removed: list[Path] = []
    try:
        entries = [e for e in target.parent.iterdir() if e.name.startswith(".")]
    except OSError:
        return []
    for entry in entries:
        if not any(entry.name.startswith(f".{name}{TEMP_MARK}") for name in names):
            continue
        try:
            if entry.name.startswith(f".{target.name}{TEMP_MARK}old-") and not target.exists():
                os.replace(entry, target)  # the old SavedModel was moved aside: put it back
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue
        removed.append(entry)
    return removed
