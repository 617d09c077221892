"""Keeps problems and shapes up to date as the graph changes (on the UI thread).

TensorFlow is not imported at start-up: the window appears first, structural
problems (pure Python) show at once, and a background ``QThread`` runs
``import keras``. When it is done the first full shape inference runs here,
on the UI thread, and from then on only what an edit touched is recomputed,
after a short debounce so a burst of graph events costs one update.
"""

from __future__ import annotations

import gc
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal

from engine.analysis.shapes import ShapeInference, keras_loaded, load_keras
from engine.model.problems import structural_problems
from engine.model.project import Project

LOADING_MESSAGE = "Loading TensorFlow… shapes will appear when it is ready"


class KerasLoader(QThread):
    """Imports keras (and with it TensorFlow) away from the UI thread."""

    failed = Signal(str)

    def run(self) -> None:
        try:
            load_keras()
        except Exception as exc:  # a broken TF install must not take the app down
            self.failed.emit(f"TensorFlow could not be loaded: {exc}")


_loader: KerasLoader | None = None


def keras_ready() -> bool:
    """True once keras has been imported in this process and the loader is done."""
    return keras_loaded() and (_loader is None or _loader.isFinished())


def _shared_loader() -> KerasLoader:
    """One loader per process; it outlives windows so Qt never destroys it running."""
    global _loader
    if _loader is None:
        _loader = KerasLoader()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(lambda: _loader.wait(60_000))
        _loader.start()
    return _loader


class ValidationController(QObject):
    """Structural problems at once, shapes once TensorFlow is loaded.

    Signals:
        updated(): ``problems``, ``info`` and ``totals`` changed.
        tensorflow_ready(): shapes are available from now on.
        status(str): a message for the status bar.

    Attributes:
        problems: ``Problem`` objects (node, severity, message), errors first.
        info: ``{node id: LayerInfo}`` from shape inference (empty before TF is ready).
        ready: True once shape inference runs.
    """

    updated = Signal()
    tensorflow_ready = Signal()
    status = Signal(str)

    def __init__(
        self, parent: QObject | None = None, *, load_tensorflow: bool = True, delay_ms: int = 30
    ) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.problems: list[Any] = []
        self.info: dict[str, Any] = {}
        self.ready = False
        self.error = ""
        self._inference: Any = None
        self._changed: set[str] = set()
        self._full = True
        self._load_tensorflow = load_tensorflow
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.flush)

    # --------------------------------------------------------------- set-up
    def set_project(self, project: Project) -> None:
        """Follow ``project``'s graph; validates it fully (debounced)."""
        if self.project is not None:
            self._subscribe(self.project, False)
        self.project = project
        self._subscribe(project, True)
        self._inference = None
        self.info = {}
        self._full = True
        if self.ready:
            self._make_inference()
        self.schedule()

    def start(self) -> None:
        """Begin loading TensorFlow in the background (if enabled)."""
        if not self._load_tensorflow:
            return
        if keras_ready():
            self._on_keras_loaded()
            return
        self.status.emit(LOADING_MESSAGE)
        loader = _shared_loader()
        loader.finished.connect(self._on_keras_loaded)
        loader.failed.connect(self._on_keras_failed)
        if loader.isFinished():
            self._on_keras_loaded()

    def load_tensorflow_now(self) -> None:
        """Import keras on this thread and validate fully (for screenshots and tests)."""
        load_keras()
        self._on_keras_loaded()
        self.flush()

    def _on_keras_loaded(self) -> None:
        if self.ready or not keras_loaded():
            return
        # TensorFlow brings a few million long-lived objects; every later garbage
        # collection would walk them all (measured: an edit on a 500-layer graph took
        # ~65 ms, ~40 ms once they are frozen). Frozen objects are still freed by refcount.
        gc.freeze()
        self.ready = True
        self._make_inference()
        self._full = True
        self.flush()
        self.tensorflow_ready.emit()
        self.status.emit("TensorFlow is ready; shapes are up to date")

    def _on_keras_failed(self, message: str) -> None:
        self.error = message
        self.status.emit(message)

    def _make_inference(self) -> None:
        if self.project is None:
            self._inference = None
            return
        try:
            self._inference = ShapeInference(self.project.graph)
        except Exception as exc:
            self._inference = None
            self.status.emit(f"Shape inference is not available: {exc}")

    def _subscribe(self, project: Project, on: bool) -> None:
        ev = project.graph.events
        pairs = (
            (ev.node_added, self._on_node_added),
            (ev.node_removed, self._on_structure),
            (ev.edge_added, self._on_edge),
            (ev.edge_removed, self._on_edge),
            (ev.params_changed, self._on_node),
            (ev.node_renamed, self._on_renamed),
        )
        for signal, slot in pairs:
            if on:
                signal.connect(slot)
            else:
                signal.disconnect(slot)

    # --------------------------------------------------------- graph events
    def _on_node_added(self, node: Any) -> None:
        self.schedule([node.id])

    def _on_node(self, node_id: str) -> None:
        self.schedule([node_id])

    def _on_edge(self, edge: Any) -> None:
        self.schedule([edge.source, edge.target])

    def _on_structure(self, *_args: Any) -> None:
        self._full = True
        self.schedule()

    def _on_renamed(self, _old: str, _new: str) -> None:
        self._on_structure()

    def schedule(self, ids: list[str] | None = None) -> None:
        """Re-validate soon; ``ids`` None means everything."""
        if ids is None:
            self._full = True
        else:
            self._changed.update(ids)
        self._timer.start()

    # ------------------------------------------------------------ the work
    def flush(self) -> None:
        """Run the pending re-validation now."""
        self._timer.stop()
        if self.project is None:
            return
        graph = self.project.graph
        changed = [i for i in self._changed if i in graph.nodes]
        full = self._full
        self._changed.clear()
        self._full = False
        found: list[Any] = []
        try:
            found.extend(structural_problems(graph))
        except Exception as exc:
            self.status.emit(f"Validation failed: {exc}")
        if self._inference is not None:
            try:
                self._inference.update(None if full else changed)
                self.info = {k: v for k, v in self._inference.info.items() if k in graph.nodes}
                found.extend(self._inference.problems)
            except Exception as exc:
                self.info = {}
                self.status.emit(f"Shape inference failed: {exc}")
        seen: set[tuple[Any, str]] = set()
        unique = []
        for p in found:
            key = (p.node, p.message)
            if key not in seen:
                seen.add(key)
                unique.append(p)
        self.problems = sorted(unique, key=lambda p: p.severity != "error")
        self.updated.emit()

    def totals(self) -> tuple[int, int, int] | None:
        """(total, trainable, non-trainable) weights, or None before shapes are known."""
        if not self.ready or self._inference is None:
            return None
        try:
            total, trainable, frozen = self._inference.totals()
        except Exception:
            return None
        return int(total), int(trainable), int(frozen)
