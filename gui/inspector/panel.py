"""The property inspector: an editor per parameter, generated from the catalog.

Shows the selected layer's explanation (its catalog doc), its id (rename in
place) and one editor per :class:`engine.catalog.specs.ParamSpec`, chosen by kind.
Each accepted change is ONE undo step (``SetParams`` with the full new params
dict, or a ``Macro`` of them when several layers of one type are selected). A
value :func:`engine.catalog.checks.check_value` rejects is refused in place: the
reason appears in red under the field and nothing is pushed. Model-to-widget
updates run with the editors' signals blocked, so they never echo back.

The "Trainable" check box freezes or unfreezes every selected layer at once (one
``SetTrainable``), also when they are of different types; a selection that mixes
frozen and trainable layers shows it partly checked. A frozen BatchNormalization gets
a note: Keras 3 runs it in inference mode (its moving statistics stay as they are).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine.catalog.table import CATALOG
from engine.model.commands import (
    Macro,
    PasteSubgraph,
    RemoveNodes,
    Rename,
    SetParams,
    SetTrainable,
    UndoStack,
)
from engine.model.graph import is_valid_id
from engine.model.project import Project
from gui.engine_service import EngineJob
from gui.inspector.form import ParamForm, with_param
from gui.problems import format_shape
from gui.theme import category_color


class Inspector(QWidget):
    """Edits the selected layer(s) of a project through its undo stack.

    Signals:
        message(str): a sentence for the status bar (a refused value and why).
    """

    message = Signal(str)
    _expanded = Signal(str, object)  # Backbone id, an Expansion or an error text

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Project | None = None
        self.undo_stack: UndoStack | None = None
        self.ids: list[str] = []
        self.info: dict[str, Any] = {}
        self.node_problems: list[Any] = []

        self.title = QLabel()
        self.title.setObjectName("InspectorTitle")
        self.badge = QLabel()
        self.shape = QLabel()
        self.shape.setObjectName("InspectorShape")
        self.shape.setWordWrap(True)  # "output (None, 256) · 32,896 params" wraps, never cut
        self.shape.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem_text = QLabel()
        self.problem_text.setObjectName("ErrorText")
        self.problem_text.setWordWrap(True)
        self.problem_text.hide()
        self.doc = QLabel()
        self.doc.setObjectName("InspectorDoc")
        self.doc.setWordWrap(True)
        self.doc.setTextFormat(Qt.TextFormat.PlainText)
        self.id_edit = QLineEdit()
        self.id_edit.setObjectName("id_edit")
        self.id_error = QLabel()
        self.id_error.setObjectName("ErrorText")
        self.id_error.setWordWrap(True)
        self.id_error.hide()
        self.form = ParamForm()
        self.trainable = QCheckBox("Trainable")
        self.trainable.setObjectName("trainable_check")
        self.trainable.setToolTip(
            "Unchecked: the layer is frozen; training leaves its weights as they are "
            "(transfer learning keeps a pretrained part fixed)"
        )
        self.frozen_note = QLabel()
        self.frozen_note.setObjectName("Muted")
        self.frozen_note.setWordWrap(True)
        self.frozen_note.hide()
        self.expand_button = QPushButton("Expand into its layers")
        self.expand_button.setObjectName("expand_button")
        self.expand_button.setToolTip(
            "Replace this Backbone by the layers of its network (one undo step), where "
            "LayerLab can represent them"
        )
        self.expand_button.hide()
        self.empty = QLabel("Select a layer on the canvas to see and edit its settings.")
        self.empty.setObjectName("Muted")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        head = QHBoxLayout()
        head.addWidget(self.badge)
        head.addWidget(self.title, 1)
        id_row = QFormLayout()
        id_row.setContentsMargins(0, 0, 0, 0)
        id_box = QWidget()
        id_col = QVBoxLayout(id_box)
        id_col.setContentsMargins(0, 0, 0, 0)
        id_col.setSpacing(1)
        id_col.addWidget(self.id_edit)
        id_col.addWidget(self.id_error)
        id_row.addRow("id", id_box)
        self.trainable_box = QWidget()
        trainable_col = QVBoxLayout(self.trainable_box)
        trainable_col.setContentsMargins(0, 0, 0, 0)
        trainable_col.setSpacing(2)
        trainable_col.addWidget(self.trainable)
        trainable_col.addWidget(self.frozen_note)

        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(10, 10, 10, 10)
        body.setSpacing(8)
        body.addLayout(head)
        body.addWidget(self.shape)
        body.addWidget(self.problem_text)
        body.addWidget(self.doc)
        body.addLayout(id_row)
        body.addWidget(self.trainable_box)
        body.addWidget(self.expand_button)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Plain)
        line.setStyleSheet("color: palette(mid);")
        body.addWidget(line)
        body.addWidget(self.form)
        body.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.empty)
        self.mixed_trainable = QCheckBox("Trainable")  # for layers of different types
        self.mixed_trainable.setObjectName("mixed_trainable_check")
        self.mixed_trainable.setToolTip(self.trainable.toolTip())
        self.mixed_box = QWidget()
        mixed_row = QHBoxLayout(self.mixed_box)
        mixed_row.setContentsMargins(12, 0, 12, 0)
        mixed_row.addWidget(self.mixed_trainable)
        outer.addWidget(self.mixed_box)
        outer.addWidget(scroll, 1)
        outer.addStretch(0)
        self._scroll = scroll
        self.empty.setContentsMargins(12, 12, 12, 12)

        self.id_edit.editingFinished.connect(self._on_rename)
        self.form.param_edited.connect(self._on_param_edited)
        self.form.refused.connect(self._on_refused)
        self.trainable.clicked.connect(self._on_trainable_clicked)
        self.mixed_trainable.clicked.connect(self._on_trainable_clicked)
        self.expand_button.clicked.connect(self.expand_backbone)
        self._expanded.connect(self._on_expanded)
        self.expand_job: EngineJob | None = None  # the Expand running, if any
        self._refresh()

    # ---------------------------------------------------------------- wiring
    def set_project(self, project: Project, undo_stack: UndoStack) -> None:
        """Follow a (new) project; clears the selection."""
        if self.project is not None:
            ev = self.project.graph.events
            for sig, slot in (
                (ev.params_changed, self._on_params_changed),
                (ev.node_renamed, self._on_renamed),
                (ev.node_removed, self._on_removed),
            ):
                sig.disconnect(slot)
        self.project, self.undo_stack = project, undo_stack
        ev = project.graph.events
        ev.params_changed.connect(self._on_params_changed)
        ev.node_renamed.connect(self._on_renamed)
        ev.node_removed.connect(self._on_removed)
        self.ids = []
        self._refresh()

    def set_analysis(self, info: dict[str, Any], problems: list[Any] | None = None) -> None:
        """Shape inference results (``{id: LayerInfo}``) and problems of the shown layer."""
        self.info = info
        self.node_problems = list(problems or [])
        self._update_shape_line()

    def _update_shape_line(self) -> None:
        mine = [p for p in self.node_problems if p.node in self.ids]
        self.problem_text.setText("\n".join(p.message for p in mine))
        self.problem_text.setVisible(bool(mine))
        layer = self.info.get(self.ids[0]) if len(self.ids) == 1 else None
        shape = getattr(layer, "output_shape", None)
        if layer is None or shape is None:
            self.shape.setVisible(False)
            return
        params = getattr(layer, "params", 0) or 0
        self.shape.setText(f"output {format_shape(shape)}  ·  {params:,} params")
        self.shape.setVisible(True)

    def show_nodes(self, ids: list[str]) -> None:
        """Show the given selection (ids of the project's nodes)."""
        nodes = self.project.graph.nodes if self.project else {}
        self.ids = [i for i in ids if i in nodes]
        self._refresh()

    # ------------------------------------------------------------ model -> ui
    def _on_params_changed(self, node_id: str) -> None:
        if node_id in self.ids:
            self._refresh()

    def _on_renamed(self, old: str, new: str) -> None:
        if old in self.ids:
            self.ids = [new if i == old else i for i in self.ids]
            self._refresh()

    def _on_removed(self, node_id: str) -> None:
        if node_id in self.ids:
            self.ids.remove(node_id)
            self._refresh()

    def _refresh(self) -> None:
        graph = self.project.graph if self.project else None
        nodes = [graph.nodes[i] for i in self.ids] if graph else []
        types = {n.type for n in nodes}
        if not nodes:
            self.empty.setText("Select a layer on the canvas to see and edit its settings.")
        elif len(types) > 1:
            self.empty.setText(
                f"{len(nodes)} layers of different types are selected.\n\n"
                "Select layers of one type to edit them together."
            )
        shown = len(types) == 1
        self.empty.setVisible(not shown)
        self._scroll.setVisible(shown)
        self._show_trainable(nodes, mixed=not shown)
        if not shown:
            self.form.show_spec(None, {})
            return
        node = nodes[0]
        spec = CATALOG.get(node.type)
        self.title.setText(node.type if len(nodes) == 1 else f"{len(nodes)} × {node.type}")
        color = category_color(spec.category) if spec else category_color("")
        self.badge.setFixedSize(12, 12)
        self.badge.setStyleSheet(f"background: {color.name()}; border-radius: 6px;")
        self.badge.setToolTip(spec.category if spec else "unknown type")
        self.doc.setText(
            spec.doc
            if spec
            else f"'{node.type}' is not a layer type LayerLab "
            "knows; its parameters cannot be edited here."
        )
        with QSignalBlocker(self.id_edit):
            self.id_edit.setText(node.id if len(nodes) == 1 else ", ".join(self.ids))
        self.id_edit.setEnabled(len(nodes) == 1)
        self._set_id_error(None)
        self._update_shape_line()
        self.form.show_spec(spec, node.params)
        self.expand_button.setVisible(len(nodes) == 1 and node.type == "Backbone")

    def _show_trainable(self, nodes: list[Any], mixed: bool) -> None:
        """The Trainable check box: checked, unchecked or partly (a mixed selection)."""
        layers = [n for n in nodes if n.type != "Input"]  # an Input has no weights
        box = self.mixed_trainable if mixed else self.trainable
        self.mixed_box.setVisible(mixed and bool(layers))
        self.trainable_box.setVisible(not mixed and bool(layers))
        frozen = [n for n in layers if not n.trainable]
        if not frozen:
            state = Qt.CheckState.Checked
        elif len(frozen) == len(layers):
            state = Qt.CheckState.Unchecked
        else:
            state = Qt.CheckState.PartiallyChecked
        with QSignalBlocker(box):
            box.setTristate(state == Qt.CheckState.PartiallyChecked)
            box.setCheckState(state)
        norms = [n for n in frozen if n.type == "BatchNormalization"]
        note = ""
        if norms and not mixed:
            note = (
                "Frozen BatchNormalization runs in inference mode (Keras 3): it normalises "
                "with its stored moving mean and variance, also while training, and leaves "
                "them as they are."
            )
        elif frozen and not mixed:
            n = len(frozen)
            note = (
                "Frozen: training leaves its weights as they are."
                if n == 1 and len(layers) == 1
                else f"{n} of {len(layers)} selected layers are frozen."
            )
        self.frozen_note.setText(note)
        self.frozen_note.setVisible(bool(note))

    def _on_trainable_clicked(self, *_args: Any) -> None:
        """A click freezes a trainable selection and makes any other one all trainable
        (a partly checked box becomes checked)."""
        if self.project is None:
            return
        graph = self.project.graph
        layers = [i for i in self.ids if i in graph.nodes and graph.nodes[i].type != "Input"]
        self.set_trainable(any(not graph.nodes[i].trainable for i in layers))

    def set_trainable(self, trainable: bool) -> None:
        """Freeze (False) or unfreeze the selected layers: one undo step."""
        if self.project is None or self.undo_stack is None:
            return
        graph = self.project.graph
        todo = [
            i
            for i in self.ids
            if i in graph.nodes
            and graph.nodes[i].type != "Input"
            and graph.nodes[i].trainable != trainable
        ]
        if todo:
            self.undo_stack.push(SetTrainable(todo, trainable))
        else:
            self._refresh()

    # ------------------------------------------------------------- Expand
    def expand_backbone(self) -> None:
        """Replace the selected Backbone by its network's layers (engine.io.expand).

        Keras builds the network in a child process (:class:`gui.engine_service.EngineJob`;
        a big one takes seconds); the result is applied as one undo step if the graph
        did not change meanwhile.
        """
        if self.project is None or len(self.ids) != 1:
            return
        graph = self.project.graph
        node_id = self.ids[0]
        feeding = graph.inputs_of(node_id)
        source = self.info.get(feeding[0].source) if feeding else None
        shape = getattr(source, "output_shape", None)
        snapshot = Project(name=self.project.name)
        snapshot.graph = graph.copy()
        before = snapshot.graph.to_dict()
        input_shape = list(shape[1:]) if isinstance(shape, tuple) else None
        self.expand_button.setEnabled(False)
        self.expand_button.setText("Expanding\u2026")
        args = {"project": snapshot.to_dict(), "node": node_id, "input_shape": input_shape}
        job = EngineJob("expand", args, self)

        def failed(exc: Any) -> None:  # ExpandError names the node; Keras's others too
            text = str(exc) if isinstance(exc, ValueError) else ""
            self._expanded.emit(node_id, (before, text or f"'{node_id}' cannot be expanded: {exc}"))

        job.done.connect(lambda result: self._expanded.emit(node_id, (before, result)))
        job.failed.connect(failed)
        self.expand_job = job.start()

    def _on_expanded(self, node_id: str, payload: Any) -> None:
        self.expand_button.setEnabled(True)
        self.expand_button.setText("Expand into its layers")
        before, result = payload
        if isinstance(result, str):
            self.message.emit(result)
            return
        if self.project is None or self.project.graph.to_dict() != before:
            self.message.emit(f"'{node_id}' was not expanded: the model changed meanwhile")
            return
        self.undo_stack.push(
            Macro(
                f"Expand '{node_id}'",
                [RemoveNodes([node_id]), PasteSubgraph(result.nodes, result.edges, "Expand")],
            )
        )
        notes = f"; {'; '.join(result.notes)}" if result.notes else ""
        self.message.emit(f"'{node_id}' expanded into {len(result.nodes)} layers{notes}")

    def _set_id_error(self, reason: str | None) -> None:
        self.id_error.setText(reason or "")
        self.id_error.setVisible(bool(reason))
        self.id_edit.setProperty("invalid", bool(reason))
        self.id_edit.style().unpolish(self.id_edit)
        self.id_edit.style().polish(self.id_edit)

    # ------------------------------------------------------------ ui -> model
    def _on_rename(self) -> None:
        if len(self.ids) != 1 or self.project is None or self.undo_stack is None:
            return
        old, new = self.ids[0], self.id_edit.text().strip()
        if new == old:
            self._set_id_error(None)
            return
        if not is_valid_id(new):
            self._set_id_error(
                f"'{new}' is not a valid id: use letters, digits and "
                "underscores, not starting with a digit (and not a Python "
                "keyword)"
            )
            return
        if new in self.project.graph.nodes:
            self._set_id_error(f"another layer is already called '{new}'")
            return
        self._set_id_error(None)
        self.undo_stack.push(Rename(old, new))

    def _on_refused(self, _name: str, reason: str) -> None:
        where = f"'{self.ids[0]}'" if len(self.ids) == 1 else f"{len(self.ids)} layers"
        self.message.emit(f"Not applied to {where}: {reason} (Esc restores the value)")

    def _on_param_edited(self, name: str, value: Any) -> None:
        if self.project is None or self.undo_stack is None or not self.ids:
            return
        graph = self.project.graph
        commands = []
        for node_id in self.ids:
            node = graph.nodes[node_id]
            spec = CATALOG.get(node.type)
            if spec is None:
                continue
            new = with_param(spec, node.params, name, value)
            if new != node.params:
                commands.append(SetParams(node_id, new, f"Set {name} of '{node_id}'"))
        if not commands:
            return
        if len(commands) == 1:
            self.undo_stack.push(commands[0])
        else:
            self.undo_stack.push(Macro(f"Set {name} of {len(commands)} layers", commands))
