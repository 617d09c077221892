"""Keeps problems and shapes up to date as the graph changes.

TensorFlow is never imported in the window's process. Structural problems (pure
Python) are computed here at once; shapes and parameter counts come from the engine
service (:mod:`engine.service`, a child process that has Keras loaded; see
:mod:`gui.engine_service`). After an edit (debounced, so a burst of graph events costs
one request) the graph goes to the service as compact JSON text; the service keeps
the last graph and recomputes only what the edit touched. Each request has a
sequence number and only the answer to the newest one is applied, and only when no
edit is waiting to be sent: during an edit storm the last edit wins and no shapes
of an older graph are drawn.

The status bar says "Computing shapes…" while a request takes longer than a blink
(:data:`BUSY_AFTER_MS`), and "Shape service restarted" when the service died and a
new one took over (the project lives here, so nothing is lost; the request in flight
is sent again).

:meth:`ValidationController.load_tensorflow_now` is the synchronous path (screenshots,
tests): Keras is imported here and shapes are computed on the calling thread.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from engine.model.problems import structural_problems
from engine.model.project import Project
from engine.service.client import LocalClient
from engine.service.protocol import graph_text
from gui.engine_service import EngineService, shared_service

LOADING_MESSAGE = "Loading TensorFlow… shapes will appear when it is ready"
BUSY_MESSAGE = "Computing shapes…"
RESTARTED_MESSAGE = "Shape service restarted"
BUSY_AFTER_MS = 150
"""A request still unanswered after this long shows "Computing shapes…"."""


class ValidationController(QObject):
    """Structural problems at once, shapes from the engine service.

    Signals:
        updated(): ``problems``, ``info`` and ``totals`` changed.
        tensorflow_ready(): the first shapes have arrived; shapes are available from now on.
        status(str): a message for the status bar.
        busy(bool): a shapes request is taking a while (True) or was answered (False).

    Attributes:
        problems: ``Problem`` objects (node, severity, message), errors first.
        info: ``{node id: LayerInfo}`` from shape inference (empty before it is ready).
        ready: True once shapes have arrived.
        service: The :class:`~gui.engine_service.EngineService` (None until started).
    """

    updated = Signal()
    tensorflow_ready = Signal()
    status = Signal(str)
    busy = Signal(bool)

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        load_tensorflow: bool = True,
        delay_ms: int = 30,
        service: EngineService | None = None,
    ) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.problems: list[Any] = []
        self.info: dict[str, Any] = {}
        self.ready = False
        self.error = ""
        self.service: EngineService | None = service
        self._local: LocalClient | None = None
        self._shape_problems: list[Any] = []
        self._totals: tuple[int, int, int] | None = None
        self._structural: list[Any] = []
        self._latest = 0  # seq of the newest shapes request
        self._answered = 0  # seq of the newest answer that came back
        self._sent_text: tuple[str, str | None] | None = None
        self._load_tensorflow = load_tensorflow
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.flush)
        self._busy_timer = QTimer(self)
        self._busy_timer.setSingleShot(True)
        self._busy_timer.setInterval(BUSY_AFTER_MS)
        self._busy_timer.timeout.connect(self._on_slow)
        if load_tensorflow and self.service is None:
            # spawned now, in the background: its TensorFlow import overlaps the
            # window's construction and first paint
            self.service = shared_service()
        self._unpublished = False  # structural problems wait for the shapes answer
        self._started = False  # start() has run: requests go to the service

    # --------------------------------------------------------------- set-up
    def set_project(self, project: Project) -> None:
        """Follow ``project``'s graph; validates it fully (debounced)."""
        if self.project is not None:
            self._subscribe(self.project, False)
        self.project = project
        self._subscribe(project, True)
        self.info = {}
        self._shape_problems = []
        self._totals = None
        self._sent_text = None
        self.schedule()

    def start(self) -> None:
        """Ask the engine service for shapes from now on (if enabled); never blocks."""
        if not self._load_tensorflow or self._local is not None:
            return
        if self.service is None:
            self.service = shared_service()
        self._started = True
        service = self.service
        service.answered.connect(self._on_answer)
        service.restarted.connect(self._on_restarted)
        service.failed.connect(self._on_failed)
        if not service.is_ready:
            self.status.emit(LOADING_MESSAGE)
        self._sent_text = None
        self.flush()

    def load_tensorflow_now(self) -> None:
        """Import Keras in this process and validate fully, on this thread (for
        screenshots and tests; the window itself uses the engine service)."""
        self._local = LocalClient()
        self._sent_text = None
        self.flush()

    # ------------------------------------------------------------ graph events
    def _subscribe(self, project: Project, on: bool) -> None:
        ev = project.graph.events
        pairs = (
            (ev.node_added, self._on_change),
            (ev.node_removed, self._on_change),
            (ev.edge_added, self._on_change),
            (ev.edge_removed, self._on_change),
            (ev.params_changed, self._on_change),
            (ev.node_renamed, self._on_change),
        )
        for signal, slot in pairs:
            if on:
                signal.connect(slot)
            else:
                signal.disconnect(slot)

    def _on_change(self, *_args: Any) -> None:
        self.schedule()

    def schedule(self, ids: list[str] | None = None) -> None:
        """Re-validate soon (the service finds what changed itself)."""
        self._timer.start()

    # ------------------------------------------------------------ the work
    def flush(self) -> None:
        """Structural problems now; shapes requested (or computed, in-process mode)."""
        self._timer.stop()
        if self.project is None:
            return
        graph = self.project.graph
        sent = False
        if self._started and self.service is not None and self._local is None:
            # the request goes first: the service works while structure is checked here
            text = graph_text(graph)
            if (text, self._base_dir()) != self._sent_text:
                self._sent_text = (text, self._base_dir())
                self._latest = self.service.request("shapes", self._args(text))
                sent = True
                if not self._busy_timer.isActive():
                    self._busy_timer.start()
        try:
            self._structural = list(structural_problems(graph))
        except Exception as exc:
            self._structural = []
            self.status.emit(f"Validation failed: {exc}")
        self.info = {k: v for k, v in self.info.items() if k in graph.nodes}
        self._shape_problems = [p for p in self._shape_problems if p.node in graph.nodes]
        if self._local is not None:
            text = graph_text(graph)
            if (text, self._base_dir()) != self._sent_text:
                self._sent_text = (text, self._base_dir())
                self._apply(self._local.answer_now("shapes", self._args(text)))
                return
        if sent and self.ready and self.service.is_ready:
            # the answer comes within milliseconds: draw once, then (or when it is slow)
            self._unpublished = True
            return
        self._publish()

    def _base_dir(self) -> str | None:
        folder = self.project.base_dir if self.project is not None else None
        return None if folder is None else str(folder)

    def _args(self, text: str) -> dict[str, Any]:
        """A shapes request: the graph, and the project's folder (the service checks
        Backbone weights files there: no user file is read on the UI thread)."""
        return {"graph": text, "base_dir": self._base_dir()}

    def _on_answer(self, event: dict[str, Any]) -> None:
        if event.get("kind") != "shapes" or event.get("seq") != self._latest:
            return  # an older graph's shapes: never drawn
        self._answered = self._latest
        if self._timer.isActive():
            return  # an edit is waiting: its own request comes next
        self._apply(event)

    def _apply(self, event: dict[str, Any]) -> None:
        self._busy_timer.stop()
        self.busy.emit(False)
        if event.get("ok"):
            result = event["result"]
            graph = self.project.graph if self.project is not None else None
            nodes = graph.nodes if graph is not None else {}
            self.info = {k: v for k, v in result["info"].items() if k in nodes}
            self._shape_problems = list(result["problems"])
            self._totals = tuple(result["totals"])
            self.error = ""
        else:
            self.info = {}
            self._shape_problems = []
            self._totals = None
            self.error = str(event.get("error", ""))
            self.status.emit(f"Shape inference failed: {self.error}")
        first = not self.ready and bool(event.get("ok"))
        self.ready = self.ready or first
        self._publish()
        if first:
            self.tensorflow_ready.emit()
            self.status.emit("TensorFlow is ready; shapes are up to date")

    def _on_slow(self) -> None:
        """The answer is taking a while: say so, and show the structure meanwhile."""
        self.busy.emit(True)
        if self._unpublished:
            self._publish()

    def _on_restarted(self, _count: int) -> None:
        # the client sends the unanswered request again; the next edit gets shapes too
        self.status.emit(RESTARTED_MESSAGE)

    def _on_failed(self, message: str) -> None:
        self.error = message
        self.status.emit(message)

    def _publish(self) -> None:
        self._unpublished = False
        seen: set[tuple[Any, str]] = set()
        unique = []
        for p in self._structural + self._shape_problems:
            key = (p.node, p.message)
            if key not in seen:
                seen.add(key)
                unique.append(p)
        self.problems = sorted(unique, key=lambda p: p.severity != "error")
        self.updated.emit()

    def in_flight(self) -> bool:
        """Whether the newest shapes request has not been answered yet."""
        return self._latest > self._answered

    def totals(self) -> tuple[int, int, int] | None:
        """(total, trainable, non-trainable) weights, or None before shapes are known."""
        if not self.ready or self._totals is None:
            return None
        total, trainable, frozen = self._totals
        return int(total), int(trainable), int(frozen)
