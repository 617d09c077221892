"""The search-space editor of the Experiments tab: the ``search`` section as a table
(one row per searched parameter: its path, a kind, the choices or a low..high range,
log) and the study's settings (strategy, trials, metric, direction, pruner).

Every change the user makes becomes the whole new section, sent by
:attr:`SpaceEditor.changed`; the tab pushes it as ONE undoable edit
(:class:`engine.tune.space.SetSearch`). Values are written as they are typed: a
wrong one (a unit count of 0, a low above its high) is named by
:func:`engine.tune.space.search_problems` under the table, before anything runs.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QStyle,
    QStyleOptionFrame,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from engine.tune.space import PRUNERS, STRATEGIES, candidates, current_value

KINDS = ("choices", "int", "float")
COLUMNS = ("Parameter", "Kind", "Values / low", "High", "Log")
METRICS = ("val_loss", "val_accuracy", "loss", "accuracy")


def parse_value(text: str) -> Any:
    """A typed value: a number, true/false/null, else the text itself."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        return text.strip("'\"")


def parse_choices(text: str) -> list[Any]:
    return [parse_value(x) for x in text.split(",") if x.strip()]


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return repr(v) if abs(v) >= 1e-4 or v == 0 else f"{v:g}"
    return json.dumps(v)


def default_spec(project: dict[str, Any], name: str, kind: str) -> dict[str, Any]:
    """A first range or choice list for a new row: around the project's value."""
    value = current_value(project, name)
    if kind == "choices":
        if name == "training.optimizer.type":
            return {"choices": ["Adam", "SGD"]}
        return {"choices": [value]}
    if kind == "int":
        v = value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 8
        return {"low": max(1, v // 2), "high": v * 2}
    v = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.1
    if "learning_rate" in name or v > 1:
        v = v if v > 0 else 1e-3
        low, high = float(f"{v / 10:.3g}"), float(f"{v * 10:.3g}")
        return {"low": low, "high": high, "log": True}
    return {"low": 0.0, "high": max(0.5, v)}


def spec_kind(spec: Any) -> str:
    if not isinstance(spec, dict) or "choices" in spec:
        return "choices"
    low, high = spec.get("low"), spec.get("high")
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high))
    return "int" if ints else "float"


class ElidedLineEdit(QLineEdit):
    """A line edit that, while it has no focus, shows a text too long for it elided in
    the middle (``training.opt…learning_rate``: both ends of a parameter's path stay
    readable); with the focus it is a plain line edit."""

    def _text_rect(self) -> QRect:
        opt = QStyleOptionFrame()
        self.initStyleOption(opt)
        rect = self.style().subElementRect(QStyle.SubElement.SE_LineEditContents, opt, self)
        m = self.textMargins()
        return rect.adjusted(m.left() + 2, m.top(), -m.right() - 2, -m.bottom())

    def displayed_text(self) -> str:
        """The text as it is shown now."""
        if self.hasFocus():
            return self.text()
        return self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideMiddle, self._text_rect().width()
        )

    def paintEvent(self, event: Any) -> None:
        shown = self.displayed_text()
        if shown == self.text():
            super().paintEvent(event)
            return
        painter = QPainter(self)
        opt = QStyleOptionFrame()
        self.initStyleOption(opt)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelLineEdit, opt, painter, self)
        painter.setPen(self.palette().color(QPalette.ColorRole.Text))
        align = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
        painter.drawText(self._text_rect(), align, shown)
        painter.end()


def _name_tip(combo: QComboBox) -> None:
    """The full parameter path as the combo's tooltip (what it shows may be elided)."""
    combo.setToolTip(
        f"{combo.currentText()}\n(NODE_ID.PARAM: a layer's parameter, or training.<path>)"
    )


class SpaceEditor(QWidget):
    """Edits a ``search`` section; :attr:`changed` carries each new section."""

    changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.section: dict[str, Any] = {}
        self.project: dict[str, Any] = {}
        self._loading = False
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col, width in ((1, 86), (2, 96), (3, 70), (4, 34)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Fixed)
            self.table.setColumnWidth(col, width)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.add_button = QPushButton("Add parameter")
        self.remove_button = QPushButton("Remove")
        self.add_button.setToolTip("Search one more layer parameter or training setting")
        self.strategy = QComboBox()
        self.strategy.addItems(STRATEGIES)
        self.strategy.setToolTip("tpe: Bayesian (Optuna's TPE); random; grid: every combination")
        self.trials = QSpinBox()
        self.trials.setRange(1, 10_000)
        self.metric_box = QComboBox()
        self.metric_box.setEditable(True)
        self.metric_box.addItems(METRICS)
        self.direction = QComboBox()
        self.direction.addItems(("auto", "maximize", "minimize"))
        self.direction.setToolTip("auto: maximize accuracy-like metrics, minimize losses")
        self.pruner = QComboBox()
        self.pruner.addItems(PRUNERS)
        self.pruner.setToolTip("Stop hopeless trials early from their per-epoch metric")
        form = QGridLayout()  # two settings a row: the table keeps the height
        for i, (label, widget) in enumerate(
            (("Strategy", self.strategy), ("Trials", self.trials), ("Metric", self.metric_box),
             ("Direction", self.direction), ("Pruner", self.pruner))
        ):  # fmt: skip
            form.addWidget(QLabel(label), i // 2, (i % 2) * 2)
            form.addWidget(widget, i // 2, (i % 2) * 2 + 1)
        form.setColumnStretch(1, 1)
        form.setColumnStretch(3, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addLayout(form)
        self.add_button.clicked.connect(self.add_row)
        self.remove_button.clicked.connect(self.remove_row)
        self.strategy.currentTextChanged.connect(self._emit)
        self.trials.editingFinished.connect(self._emit)
        self.metric_box.activated.connect(self._emit)
        self.metric_box.lineEdit().editingFinished.connect(self._emit)
        self.direction.currentTextChanged.connect(self._emit)
        self.pruner.currentTextChanged.connect(self._emit)

    # ------------------------------------------------------------------ loading
    def set_section(self, section: dict[str, Any] | None, project: dict[str, Any]) -> None:
        """Show ``section`` (None: a new, empty one) of ``project`` (a dict)."""
        self._loading = True
        try:
            self.project = project
            self.section = copy.deepcopy(section) if isinstance(section, dict) else {}
            s = self.section
            params = s.get("parameters") if isinstance(s.get("parameters"), dict) else {}
            self.table.setRowCount(0)
            for name, spec in params.items():
                self._add(name, spec)
            self.strategy.setCurrentText(str(s.get("strategy", "tpe")))
            trials = s.get("trials", 20)
            self.trials.setValue(trials if isinstance(trials, int) else 20)
            self.metric_box.setCurrentText(str(s.get("metric", "val_loss")))
            self.direction.setCurrentText(str(s.get("direction") or "auto"))
            pruner = s.get("pruner", "median")
            self.pruner.setCurrentText(str(pruner.get("type", "median") if isinstance(
                pruner, dict) else pruner))  # fmt: skip
        finally:
            self._loading = False

    def _add(self, name: str, spec: Any) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        names = QComboBox()
        names.setEditable(True)
        names.setLineEdit(ElidedLineEdit(names))
        known = [n for n, _ in candidates(self.project)]
        names.addItems(known)
        names.setCurrentText(name)
        _name_tip(names)
        names.currentTextChanged.connect(lambda _t, w=names: _name_tip(w))
        # the list shows whole names, however narrow the column
        widest = max((names.fontMetrics().horizontalAdvance(n) for n in known), default=0)
        names.view().setMinimumWidth(widest + 40)
        kind = QComboBox()
        kind.addItems(KINDS)
        kind.setCurrentText(spec_kind(spec))
        first, high = QLineEdit(), QLineEdit()
        log = QCheckBox()
        spec = spec if isinstance(spec, dict) else {}
        if "choices" in spec:
            first.setText(", ".join(_text(c) for c in spec.get("choices") or []))
            first.setToolTip("Values separated by commas")
            high.setEnabled(False)
            log.setEnabled(False)
        else:
            first.setText(_text(spec.get("low", "")))
            high.setText(_text(spec.get("high", "")))
            log.setChecked(bool(spec.get("log")))
        for col, w in enumerate((names, kind, first, high, log)):
            self.table.setCellWidget(row, col, w)
        names.activated.connect(lambda _i, w=names: self._renamed(w))
        names.lineEdit().editingFinished.connect(lambda w=names: self._renamed(w))
        kind.currentTextChanged.connect(lambda _t, w=kind: self._rekind(w))
        first.editingFinished.connect(self._emit)
        high.editingFinished.connect(self._emit)
        log.toggled.connect(self._emit)

    # ------------------------------------------------------------------ editing
    def add_row(self) -> None:
        """A new row: the first candidate not searched yet, around its present value."""
        taken = set(self.parameters())
        free = [(n, k) for n, k in candidates(self.project) if n not in taken]
        if not free:
            return
        name, kind = free[0]
        kind = "choices" if kind == "choice" else kind
        self._loading = True
        try:
            self._add(name, default_spec(self.project, name, kind))
        finally:
            self._loading = False
        self._emit()

    def remove_row(self) -> None:
        row = self.table.currentRow()
        if row < 0:
            row = self.table.rowCount() - 1
        if row < 0:
            return
        self.table.removeRow(row)
        self._emit()

    def _row_of(self, widget: QWidget) -> int:
        for row in range(self.table.rowCount()):
            for col in range(len(COLUMNS)):
                if self.table.cellWidget(row, col) is widget:
                    return row
        return -1

    def _renamed(self, widget: QComboBox) -> None:
        if self._loading:
            return
        row = self._row_of(widget)
        name = widget.currentText().strip()
        kinds = dict(candidates(self.project))
        if row >= 0 and name in kinds:  # a known parameter: a range or choices that fit it
            kind = {"choice": "choices"}.get(kinds[name], kinds[name])
            self._replace(row, name, default_spec(self.project, name, kind))
        self._emit()

    def _rekind(self, widget: QComboBox) -> None:
        if self._loading:
            return
        row = self._row_of(widget)
        if row >= 0:
            name = self.table.cellWidget(row, 0).currentText().strip()
            self._replace(row, name, default_spec(self.project, name, widget.currentText()))
        self._emit()

    def _replace(self, row: int, name: str, spec: dict[str, Any]) -> None:
        self._loading = True
        try:
            rows = [self._row(r) for r in range(self.table.rowCount())]
            rows[row] = (name, spec)
            self.table.setRowCount(0)
            for n, s in rows:
                self._add(n, s)
        finally:
            self._loading = False

    def _row(self, row: int) -> tuple[str, dict[str, Any]]:
        name = self.table.cellWidget(row, 0).currentText().strip()
        kind = self.table.cellWidget(row, 1).currentText()
        first = self.table.cellWidget(row, 2).text()
        if kind == "choices":
            return name, {"choices": parse_choices(first)}
        low, high = parse_value(first), parse_value(self.table.cellWidget(row, 3).text())
        if kind == "float":
            low, high = (
                float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                for v in (low, high)
            )
        spec: dict[str, Any] = {"low": low, "high": high}
        if self.table.cellWidget(row, 4).isChecked():
            spec["log"] = True
        return name, spec

    def parameters(self) -> dict[str, dict[str, Any]]:
        return dict(self._row(r) for r in range(self.table.rowCount()))

    def build(self) -> dict[str, Any]:
        """The section the editor shows (keys it does not edit are kept)."""
        s = copy.deepcopy(self.section)
        s["parameters"] = self.parameters()
        s["strategy"] = self.strategy.currentText()
        s["trials"] = self.trials.value()
        s["metric"] = self.metric_box.currentText().strip() or "val_loss"
        direction = self.direction.currentText()
        if direction == "auto":
            s.pop("direction", None)
        else:
            s["direction"] = direction
        pruner = self.pruner.currentText()
        old = s.get("pruner")
        s["pruner"] = {**old, "type": pruner} if isinstance(old, dict) else pruner
        return s

    def _emit(self, *_: Any) -> None:
        if self._loading:
            return
        section = self.build()
        if section != self.section:
            self.section = copy.deepcopy(section)
            self.changed.emit(section)
