"""The training panel: every option of the training engine, edited through undo.

Each edit builds the whole new ``training`` section and pushes one
``SetSection("training", ...)`` onto the project's undo stack, so settings are
saved with the project and undone like graph edits. When the stack says the
section changed (undo, redo), the panel re-reads it with its signals muted.
Problems from :func:`engine.train.config.training_problems` show under the form.

The device combo ends with ``Cluster…``, which opens the cluster dialog
(:mod:`gui.training.cluster_dialog`); a project that trains on a cluster shows
``Cluster (N workers)`` there, and choosing a device again drops the cluster.

The learning-rate plot (:func:`engine.train.schedule_preview.lr_curve`) is computed
by the engine service (:mod:`gui.engine_service`: a child process; TensorFlow never
loads in the window's process), once it is ready; devices are listed the same way
(:func:`engine.train.devices.list_devices`).
"""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.model.commands import SetSection, UndoStack
from engine.model.project import load_project, new_project
from engine.train.config import (
    LOSSES,
    METRICS,
    OPTIMIZER_COMMON,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    find_key,
    fine_tune_of,
    training_problems,
)
from engine.train.schedule_preview import default_lengths, lr_axis_range, phase_change_epoch
from gui.engine_service import LatestRequest
from gui.theme import colors, narrow_combos
from gui.training.cluster_dialog import ClusterDialog, cluster_label
from gui.training.live_view import PHASE_COLOR, style_plot
from gui.wheel_guard import guard_wheel

BOOL_KEYS = ("nesterov", "amsgrad", "centered", "use_ema", "staircase", "cycle", "from_logits")
INT_KEYS = ("every_steps", "decay_steps", "warmup_steps", "patience", "cooldown", "k")
LIST_KEYS = ("boundaries_epochs", "boundaries_steps", "values")
TEXT_KEYS = ("monitor",)

DEFAULTS = {
    "learning_rate": "0.001",
    "momentum": "0",
    "beta_1": "0.9",
    "beta_2": "0.999",
    "epsilon": "1e-07",
    "weight_decay": "none",
    "clipnorm": "none",
    "clipvalue": "none",
    "global_clipnorm": "none",
    "ema_momentum": "0.99",
    "rho": "0.9",
    "initial_accumulator_value": "0.1",
    "factor": "0.1",
    "every_epochs": "a third of the run",
    "decay_rate": "0.96",
    "decay_epochs": "1",
    "end_learning_rate": "0.0001",
    "power": "1",
    "alpha": "0",
    "warmup_epochs": "0",
    "warmup_start": "0",
    "min_lr": "0",
    "min_delta": "0",
    "label_smoothing": "0",
    "delta": "1",
    "k": "5",
    "monitor": "val_loss",
    "boundaries_epochs": "e.g. 5, 10",
    "values": "e.g. 0.01, 0.001, 0.0001",
}
"""Placeholders: what Keras (or the engine) uses when a parameter is left empty."""

CLUSTER = "cluster"
"""The device combo's data for the project's cluster (``Cluster (3 workers)``)."""
EDIT_CLUSTER = "cluster…"
"""The device combo's data for ``Cluster…`` (opens the cluster dialog)."""


class NumberEdit(QLineEdit):
    """A line edit for an optional number: empty means "not set" (the default).

    Signals:
        edited(): the user finished editing and the value changed.
    """

    edited = Signal()

    def __init__(self, integer: bool = False, placeholder: str = "") -> None:
        super().__init__()
        self.integer = integer
        self.setPlaceholderText(placeholder)
        self._last: Any = None
        self.editingFinished.connect(self._on_finished)
        self.setMaximumWidth(160)

    def value(self) -> float | int | None:
        text = self.text().strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
        if self.integer and number.is_integer():
            return int(number)
        return number

    def set_value(self, value: Any) -> None:
        self._last = value
        self.setText(
            "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
        )

    def _on_finished(self) -> None:
        text = self.text().strip()
        valid = True
        if text:
            try:
                number = float(text)
                valid = math.isfinite(number)
            except ValueError:
                valid = False
        self.setStyleSheet("" if valid else "border: 1px solid #dc2626;")
        self.setToolTip("" if valid else f"'{text}' is not a number")
        if not valid:
            return
        value = self.value()
        if value != self._last:
            self._last = value
            self.edited.emit()


class ParamForm(QWidget):
    """Editors for a set of parameters (optimizer, schedule or loss keys).

    Signals:
        changed(): one parameter was edited.
    """

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.editors: dict[str, QWidget] = {}

    def set_keys(self, keys: tuple[str, ...] | list[str], values: dict[str, Any]) -> None:
        """Show editors for ``keys`` filled from ``values``."""
        if tuple(keys) == tuple(self.editors):
            self.set_values(values)
            return
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors = {}
        for key in keys:
            editor = self._editor(key)
            self.editors[key] = editor
            self.form.addRow(key.replace("_", " "), editor)
        guard_wheel(self)
        self.set_values(values)

    def _editor(self, key: str) -> QWidget:
        if key in BOOL_KEYS:
            box = QCheckBox()
            box.toggled.connect(self.changed)
            return box
        if key in LIST_KEYS or key in TEXT_KEYS:
            edit = QLineEdit()
            edit.setPlaceholderText(DEFAULTS.get(key, ""))
            edit.editingFinished.connect(self.changed)
            return edit
        edit = NumberEdit(integer=key in INT_KEYS, placeholder=DEFAULTS.get(key, "default"))
        edit.edited.connect(self.changed)
        return edit

    def set_values(self, values: dict[str, Any]) -> None:
        for key, editor in self.editors.items():
            value = values.get(key)
            editor.blockSignals(True)
            if isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, NumberEdit):
                editor.set_value(value)
            elif key in LIST_KEYS:
                editor.setText(
                    ", ".join(f"{v:g}" for v in value) if isinstance(value, list) else ""
                )
            else:
                editor.setText("" if value is None else str(value))
            editor.blockSignals(False)

    def values(self) -> dict[str, Any]:
        """The set parameters (empty fields and unchecked boxes are left out)."""
        out: dict[str, Any] = {}
        for key, editor in self.editors.items():
            if isinstance(editor, QCheckBox):
                if editor.isChecked():
                    out[key] = True
            elif isinstance(editor, NumberEdit):
                if editor.value() is not None:
                    out[key] = editor.value()
            elif key in LIST_KEYS:
                items = [p.strip() for p in editor.text().replace(";", ",").split(",") if p.strip()]
                try:
                    numbers = [float(p) for p in items]
                except ValueError:
                    numbers = items  # training_problems names the bad list
                if numbers:
                    out[key] = [
                        int(n) if isinstance(n, float) and n.is_integer() and key != "values" else n
                        for n in numbers
                    ]
            elif editor.text().strip():
                out[key] = editor.text().strip()
        return out


def _typed(value: Any, default: str) -> tuple[str, dict[str, Any]]:
    if isinstance(value, dict):
        return str(value.get("type") or default), {k: v for k, v in value.items() if k != "type"}
    if isinstance(value, str) and value:
        return value, {}
    return default, {}


class TrainingPanel(QWidget):
    """Edits a project's ``training`` section (one undo step per change).

    Attributes:
        problems_label: Shows what :func:`training_problems` finds (hidden if none).
        lr_plot: The learning-rate plot over the planned steps.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Any = None
        self.undo_stack: Any = None
        self.cluster_dialog: ClusterDialog | None = None
        self._loading = False
        self.steps_per_epoch: int | None = None
        self.train_samples: int | None = None

        self.optimizer = QComboBox()
        self.optimizer.addItems(list(OPTIMIZERS))
        self.optimizer_params = ParamForm()
        self.schedule = QComboBox()
        self.schedule.addItems(list(SCHEDULES))
        self.schedule_params = ParamForm()
        self.lr_widget = pg.PlotWidget()
        self.lr_widget.setBackground(None)
        self.lr_widget.setFixedHeight(140)
        self.lr_plot = self.lr_widget.getPlotItem()
        self.lr_plot.setTitle("learning rate", size="8pt")  # a title is never cut
        self.lr_plot.setLabel("bottom", "epoch")
        self.lr_plot.getAxis("left").enableAutoSIPrefix(False)
        self.lr_plot.setMouseEnabled(x=False, y=False)
        self.lr_plot.hideButtons()
        style_plot(self.lr_plot)
        self.lr_curve = self.lr_plot.plot(pen=pg.mkPen(colors()["highlight"], width=2))
        # fine-tuning: where phase 2 starts (its schedule restarted at the lower rate)
        self.lr_phase_line = pg.InfiniteLine(
            angle=90,
            movable=False,
            pen=pg.mkPen(PHASE_COLOR, width=1.5, style=Qt.PenStyle.DashLine),
            label="phase 2",
            labelOpts={"position": 0.85, "color": PHASE_COLOR, "anchors": [(0, 0), (0, 0)]},
        )
        self.lr_phase_line.setVisible(False)
        self.lr_plot.addItem(self.lr_phase_line, ignoreBounds=True)
        self._lr_phase: int | None = None
        self.lr_note = QLabel("")
        self.lr_note.setWordWrap(True)
        self.lr_note.setStyleSheet("color: gray;")
        self._lr_job = LatestRequest(self)
        self._lr_job.done.connect(self._on_lr_ready)
        self._lr_job.failed.connect(
            lambda exc: self.lr_note.setText(f"The schedule cannot be plotted: {exc}")
        )
        self._lr_timer = QTimer(self)
        self._lr_timer.setSingleShot(True)
        self._lr_timer.setInterval(150)
        self._lr_timer.timeout.connect(self.update_lr_plot)

        self.loss = QComboBox()
        self.loss.addItem("automatic (from the data)", None)
        for name in LOSSES:
            self.loss.addItem(name, name)
        self.loss_params = ParamForm()
        self.metrics = QListWidget()
        self.metrics.setMaximumHeight(8 + 18 * 4)
        for name in METRICS:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.metrics.addItem(item)

        self.batch_size = self._spin(1, 1 << 20)
        self.epochs = self._spin(1, 100_000)
        self.seed = self._spin(-1, 2**31 - 1)
        self.seed.setSpecialValueText("random")
        self.shuffle = QCheckBox("Shuffle every epoch")
        self.imported_weights = QCheckBox("Start from the imported weights")
        self.imported_weights.setToolTip(
            "The project keeps the trained weights of the model "
            "it was imported from; untick to train from fresh "
            "weights."
        )
        self.class_weight = QComboBox()
        self.class_weight.addItem("none", None)
        self.class_weight.addItem("balanced", "balanced")

        self.early = QGroupBox("Early stopping")
        self.early.setCheckable(True)
        self.es_monitor = QComboBox()
        self.es_monitor.setEditable(True)
        self.es_monitor.addItems(["val_loss", "loss", "val_accuracy", "accuracy"])
        self.es_patience = self._spin(0, 100_000)
        self.es_min_delta = NumberEdit(placeholder="0")
        self.es_restore = QCheckBox("Restore the best weights")
        self.es_start = self._spin(0, 100_000)

        self.fine = QGroupBox("Fine-tune after")
        self.fine.setCheckable(True)
        self.fine.setToolTip(
            "Train in two phases in one run: first with the frozen layers frozen, then "
            "with the top ones unfrozen at a lower learning rate"
        )
        self.ft_after = self._spin(1, 100_000)
        self.ft_after.setSuffix(" epochs")
        self.ft_after.setToolTip("Phase 1 lasts this many epochs (of the run's epochs)")
        self.ft_unfreeze = self._spin(0, 100_000)
        self.ft_unfreeze.setSpecialValueText("all frozen layers")
        self.ft_unfreeze.setSuffix(" top layers")
        self.ft_unfreeze.setMaximumWidth(160)
        self.ft_unfreeze.setToolTip(
            "Phase 2 unfreezes every frozen layer, or this many, nearest the output "
            "(layers of a backbone count one by one; BatchNormalization stays frozen)"
        )
        self.ft_factor = NumberEdit(placeholder="0.1")
        self.ft_factor.setToolTip("Phase 2 trains at the optimizer's learning rate x this")
        self.ft_note = QLabel("")
        self.ft_note.setWordWrap(True)
        self.ft_note.setStyleSheet("color: gray;")

        self.tensorboard = QCheckBox("TensorBoard logs (logs/ in the run folder)")
        self.precision = QComboBox()
        self.precision.addItems(list(PRECISIONS))
        self.jit = QComboBox()
        for text, value in (("auto", "auto"), ("on", True), ("off", False)):
            self.jit.addItem(text, value)
        self.steps_per_execution = self._spin(0, 100_000)
        self.steps_per_execution.setSpecialValueText("auto")
        self.steps_per_execution.setToolTip(
            "Training steps run in one call of the compiled training function: more "
            "steps per call spend less time between them (small models train faster). "
            "auto picks a number from the model's size so that one call takes about "
            "25 ms; the run's log says which."
        )
        self.device = QComboBox()
        self._devices: list[str] = []
        self._fill_devices()
        self._device_job = LatestRequest(self)
        self._device_job.done.connect(self._on_devices)

        self.problems_label = QLabel("")
        self.problems_label.setWordWrap(True)
        self.problems_label.setStyleSheet("color: #dc2626;")
        self.problems_label.setVisible(False)
        self._build_layout()
        self._connect()
        narrow_combos(self)
        guard_wheel(self)

    def _spin(self, low: int, high: int) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setKeyboardTracking(False)
        spin.setMaximumWidth(120)
        return spin

    def _build_layout(self) -> None:
        opt = QGroupBox("Optimizer")
        f = QFormLayout(opt)
        f.addRow("type", self.optimizer)
        f.addRow(self.optimizer_params)
        sched = QGroupBox("Learning-rate schedule")
        f = QFormLayout(sched)
        f.addRow("type", self.schedule)
        f.addRow(self.schedule_params)
        f.addRow(self.lr_widget)
        f.addRow(self.lr_note)
        loss = QGroupBox("Loss and metrics")
        f = QFormLayout(loss)
        f.addRow("loss", self.loss)
        f.addRow(self.loss_params)
        f.addRow("metrics", self.metrics)
        run = QGroupBox("Run")
        f = QFormLayout(run)
        f.addRow("batch size", self.batch_size)
        f.addRow("epochs", self.epochs)
        f.addRow("seed", self.seed)
        f.addRow(self.shuffle)
        f.addRow(self.imported_weights)
        f.addRow("class weights", self.class_weight)
        f = QFormLayout(self.early)
        f.addRow("monitor", self.es_monitor)
        f.addRow("patience (epochs)", self.es_patience)
        f.addRow("min delta", self.es_min_delta)
        f.addRow("start from epoch", self.es_start)
        f.addRow(self.es_restore)
        f = QFormLayout(self.fine)
        f.addRow("phase 1 lasts", self.ft_after)
        f.addRow("then unfreeze", self.ft_unfreeze)
        f.addRow("learning rate ×", self.ft_factor)
        f.addRow(self.ft_note)
        ckpt = QGroupBox("Checkpoints and logs")
        f = QFormLayout(ckpt)
        note = QLabel(
            "Each run keeps checkpoints/last.keras (every epoch, at most every "
            "30 s) and checkpoints/best.keras (when the monitored value "
            "improves) in its run folder; a stopped run can be resumed from them."
        )
        note.setWordWrap(True)
        note.setStyleSheet("color: gray;")
        f.addRow(note)
        f.addRow(self.tensorboard)
        perf = QGroupBox("Performance")
        f = QFormLayout(perf)
        f.addRow("device", self.device)
        f.addRow("precision", self.precision)
        f.addRow("XLA (jit_compile)", self.jit)
        f.addRow("steps per execution", self.steps_per_execution)
        layout = QVBoxLayout(self)
        layout.addWidget(self.problems_label)
        for box in (opt, sched, loss, run, self.early, self.fine, ckpt, perf):
            layout.addWidget(box)
        layout.addStretch(1)

    def _connect(self) -> None:
        for combo in (
            self.optimizer,
            self.schedule,
            self.loss,
            self.class_weight,
            self.precision,
            self.jit,
            self.device,
        ):
            combo.currentIndexChanged.connect(self._on_edit)
        self.es_monitor.activated.connect(self._on_edit)  # a choice, or Enter / leaving
        self.es_monitor.lineEdit().editingFinished.connect(self._on_edit)  # the field
        for form in (self.optimizer_params, self.schedule_params, self.loss_params):
            form.changed.connect(self._on_edit)
        for spin in (
            self.batch_size,
            self.epochs,
            self.seed,
            self.es_patience,
            self.es_start,
            self.steps_per_execution,
            self.ft_after,
            self.ft_unfreeze,
        ):
            spin.valueChanged.connect(self._on_edit)
        for box in (
            self.shuffle,
            self.imported_weights,
            self.es_restore,
            self.tensorboard,
            self.early,
            self.fine,
        ):
            box.toggled.connect(self._on_edit)
        self.es_min_delta.edited.connect(self._on_edit)
        self.ft_factor.edited.connect(self._on_edit)
        self.metrics.itemChanged.connect(self._on_edit)

    # ----------------------------------------------------------- project
    def set_project(self, project: Any, undo_stack: Any) -> None:
        """Edit ``project``'s training section through ``undo_stack``."""
        if self.undo_stack is not None:
            try:
                self.undo_stack.events.section_changed.disconnect(self._on_section_changed)
            except (TypeError, ValueError, RuntimeError):
                pass
        self.project, self.undo_stack = project, undo_stack
        undo_stack.events.section_changed.connect(self._on_section_changed)
        self.refresh()

    def _on_section_changed(self, key: str) -> None:
        if key == "training":
            self.refresh()

    def section(self) -> dict[str, Any]:
        """The project's current training section (a copy)."""
        return copy.deepcopy(self.project.training) if self.project is not None else {}

    def refresh(self) -> None:
        """Show the project's training section (signals muted: nothing is pushed)."""
        if self.project is None:
            return
        s = self.section()
        self._loading = True
        try:
            name, params = _typed(s.get("optimizer", "Adam"), "Adam")
            opt = find_key(name, OPTIMIZERS) or "Adam"
            self.optimizer.setCurrentText(opt)
            self.optimizer_params.set_keys(OPTIMIZER_COMMON + OPTIMIZERS[opt], params)
            name, params = _typed(s.get("schedule") or "constant", "constant")
            kind = find_key(name, SCHEDULES) or "constant"
            self.schedule.setCurrentText(kind)
            self.schedule_params.set_keys(SCHEDULES[kind], params)
            self._show_lengths(s)
            loss = s.get("loss")
            name, params = _typed(loss, "") if loss is not None else ("", {})
            index = self.loss.findData(find_key(name, LOSSES) or name) if name else 0
            self.loss.setCurrentIndex(max(0, index))
            self.loss_params.set_keys(LOSSES.get(self.loss.currentData() or "", ()), params)
            chosen = {_typed(m, "")[0].lower() for m in s.get("metrics", []) or []}
            for i in range(self.metrics.count()):
                item = self.metrics.item(i)
                item.setCheckState(
                    Qt.CheckState.Checked if item.text() in chosen else Qt.CheckState.Unchecked
                )
            self.batch_size.setValue(int(s.get("batch_size", 32)))
            self.epochs.setValue(int(s.get("epochs", 10)))
            seed = s.get("seed")
            self.seed.setValue(-1 if seed is None else int(seed))
            self.shuffle.setChecked(bool(s.get("shuffle", True)))
            weights = self.project.extra.get("weights")
            self.imported_weights.setVisible(bool(weights))
            self.imported_weights.setChecked(bool(s.get("imported_weights", True)))
            if weights:
                self.imported_weights.setText(
                    f"Start from the imported weights ({Path(str(weights)).name})"
                )
            cw = s.get("class_weight")
            if isinstance(cw, dict):
                if self.class_weight.findData("custom") < 0:
                    self.class_weight.addItem("custom (as in the project file)", "custom")
                self.class_weight.setCurrentIndex(self.class_weight.findData("custom"))
            else:
                self.class_weight.setCurrentIndex(max(0, self.class_weight.findData(cw)))
            es = s.get("early_stopping")
            self.early.setChecked(isinstance(es, dict))
            es = es if isinstance(es, dict) else {}
            self.es_monitor.setCurrentText(str(es.get("monitor", "val_loss")))
            self.es_patience.setValue(int(es.get("patience", 5)))
            self.es_min_delta.set_value(es.get("min_delta"))
            self.es_start.setValue(int(es.get("start_from_epoch", 0)))
            self.es_restore.setChecked(bool(es.get("restore_best_weights", True)))
            self._show_fine_tune(s)
            self.tensorboard.setChecked(bool(s.get("tensorboard", True)))
            self.precision.setCurrentText(str(s.get("precision", "float32")))
            self.jit.setCurrentIndex(max(0, self.jit.findData(s.get("jit_compile", "auto"))))
            per_call = s.get("steps_per_execution", "auto")  # a bad value is a problem shown
            number = isinstance(per_call, (int, float)) and not isinstance(per_call, bool)
            self.steps_per_execution.setValue(int(per_call) if number else 0)
            self._fill_devices(str(s.get("device") or "auto"))
        finally:
            self._loading = False
        self._show_problems(s)
        self._lr_timer.start()

    def _show_lengths(self, section: dict[str, Any]) -> None:
        """The schedule's empty length fields show what the plot uses (from the epochs)."""
        epochs = int(section.get("epochs", 10) or 10)
        lengths = default_lengths(section, epochs)
        phase = phase_change_epoch(section, epochs)  # fine-tuning: lengths are per phase
        run = "the run" if phase is None else "phase 1"
        for key, value in lengths.items():
            editor = self.schedule_params.editors.get(key)
            if not isinstance(editor, NumberEdit):
                continue
            if key == "every_epochs":
                why = f"a third of {run}"
            elif value == (epochs if phase is None else phase):
                why = "the whole run" if phase is None else f"phase 1; phase 2: {epochs - phase}"
            elif value == 1:
                why = "every epoch"
            else:
                why = "after the warm-up"
            editor.setPlaceholderText(f"{value:g} ({why})")
            editor.setToolTip(
                f"Empty: {value:g} epochs ({why}), as the plot shows; it follows the epochs."
            )

    def _show_fine_tune(self, s: dict[str, Any]) -> None:
        """The "Fine-tune after" group: the section's ``fine_tune``, else its defaults
        (half the epochs, every frozen layer, 0.1) ready for when it is ticked."""
        fine = s.get("fine_tune")
        self.fine.setChecked(isinstance(fine, dict))
        fine = fine if isinstance(fine, dict) else {}
        epochs = int(s.get("epochs", 10) or 10)
        after = fine.get("after_epoch")
        after = after if isinstance(after, int) else max(1, epochs // 2)
        self.ft_after.setValue(after)
        unfreeze = fine.get("unfreeze", "all")
        self.ft_unfreeze.setValue(unfreeze if isinstance(unfreeze, int) else 0)
        factor = fine.get("learning_rate_factor")
        self.ft_factor.set_value(factor if isinstance(factor, (int, float)) else None)
        rest = epochs - after
        self.ft_note.setText(
            f"Phase 1 trains epochs 1-{after} with the frozen layers frozen; phase 2 "
            f"fine-tunes the last {rest} epoch{'' if rest == 1 else 's'} at the lower "
            "learning rate (early stopping in phase 1 starts phase 2 sooner). The curves "
            "mark where it begins."
            if rest > 0
            else f"Phase 1 takes every epoch: set it below the run's {epochs} epochs."
        )

    # ------------------------------------------------------------- editing
    def _on_edit(self, *_args: Any) -> None:
        if self._loading or self.project is None:
            return
        if self.device.currentData() == EDIT_CLUSTER:
            self.open_cluster_dialog()
            return
        new = self.build_section()
        if new != self.project.training:
            self.undo_stack.push(SetSection("training", new, "Change training settings"))

    def build_section(self) -> dict[str, Any]:
        """The training section the widgets describe (unknown keys kept)."""
        s = self.section()
        old_opt, old_params = _typed(s.get("optimizer", "Adam"), "Adam")
        opt = self.optimizer.currentText()
        if opt != (find_key(old_opt, OPTIMIZERS) or "Adam"):
            keys = OPTIMIZER_COMMON + OPTIMIZERS[opt]  # keep what the new type takes
            params = {k: v for k, v in self.optimizer_params.values().items() if k in keys}
        else:
            params = self.optimizer_params.values()
        s["optimizer"] = {"type": opt, **params}
        kind = self.schedule.currentText()
        old_kind = find_key(_typed(s.get("schedule") or "constant", "constant")[0], SCHEDULES)
        params = self.schedule_params.values() if kind == old_kind else {}
        if kind == "constant" and not params:
            s.pop("schedule", None)
        else:
            s["schedule"] = {"type": kind, **params}
        loss = self.loss.currentData()
        old_loss = s.get("loss")
        old_name = _typed(old_loss, "")[0] if old_loss is not None else ""
        if loss is None:
            s.pop("loss", None)
        else:
            params = (
                self.loss_params.values()
                if loss == (find_key(old_name, LOSSES) or old_name)
                else {}
            )
            params = {k: v for k, v in params.items() if k in LOSSES[loss]}
            s["loss"] = {"type": loss, **params} if params else loss
        s["metrics"] = self._metrics(s.get("metrics") or [])
        s["batch_size"] = self.batch_size.value()
        s["epochs"] = self.epochs.value()
        s["seed"] = None if self.seed.value() < 0 else self.seed.value()
        self._set_flag(s, "shuffle", self.shuffle.isChecked(), True)
        self._set_flag(s, "imported_weights", self.imported_weights.isChecked(), True)
        cw = self.class_weight.currentData()
        if cw != "custom":
            if cw is None:
                s.pop("class_weight", None)
            else:
                s["class_weight"] = cw
        if self.early.isChecked():
            es = {
                "monitor": self.es_monitor.currentText().strip() or "val_loss",
                "patience": self.es_patience.value(),
                "restore_best_weights": self.es_restore.isChecked(),
            }
            if self.es_min_delta.value() is not None:
                es["min_delta"] = self.es_min_delta.value()
            if self.es_start.value():
                es["start_from_epoch"] = self.es_start.value()
            s["early_stopping"] = es
        else:
            s.pop("early_stopping", None)
        if self.fine.isChecked():
            factor = self.ft_factor.value()
            s["fine_tune"] = {
                "after_epoch": self.ft_after.value(),
                "unfreeze": self.ft_unfreeze.value() or "all",
                "learning_rate_factor": 0.1 if factor is None else factor,
            }
        else:
            s.pop("fine_tune", None)
        self._set_flag(s, "tensorboard", self.tensorboard.isChecked(), True)
        self._set_flag(s, "precision", self.precision.currentText(), "float32")
        self._set_flag(s, "jit_compile", self.jit.currentData(), "auto")
        per_call = self.steps_per_execution.value() or "auto"  # 0 shows "auto"
        self._set_flag(s, "steps_per_execution", per_call, "auto")
        device = self.device.currentData()
        if device in (CLUSTER, EDIT_CLUSTER):
            return s  # the cluster (and the device its workers use) stay as they are
        s.pop("cluster", None)
        self._set_flag(s, "device", device, "auto")
        return s

    # -------------------------------------------------------------- cluster
    def open_cluster_dialog(self) -> ClusterDialog | None:
        """Show the cluster dialog (window-modal); OK stores its settings (one undo step)."""
        if self.project is None:
            return None
        self.refresh()  # the combo shows the current choice until OK
        dialog = ClusterDialog(self.section(), self.project.path, self)
        dialog.accepted.connect(lambda: self.apply_cluster(dialog.cluster()))
        dialog.finished.connect(dialog.deleteLater)
        self.cluster_dialog = dialog
        dialog.open()
        return dialog

    def apply_cluster(self, cluster: dict[str, Any]) -> None:
        """Train on ``cluster`` (the section's ``cluster`` object): one undo step."""
        if self.project is None:
            return
        s = self.section()
        s["cluster"] = copy.deepcopy(cluster)
        if s != self.project.training:
            n = len(cluster.get("workers") or [])
            self.undo_stack.push(
                SetSection(
                    "training", s, f"Train on a cluster of {n} worker{'' if n == 1 else 's'}"
                )
            )

    @property
    def cluster(self) -> dict[str, Any] | None:
        """The project's cluster settings (None: this machine trains alone)."""
        cluster = self.section().get("cluster")
        return cluster if isinstance(cluster, dict) and cluster.get("workers") else None

    @staticmethod
    def _set_flag(s: dict[str, Any], key: str, value: Any, default: Any) -> None:
        if value == default and key not in s:
            return
        s[key] = value

    def _metrics(self, old: list[Any]) -> list[Any]:
        by_name = {_typed(m, "")[0].lower(): m for m in old}
        out = []
        for i in range(self.metrics.count()):
            item = self.metrics.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(by_name.get(item.text(), item.text()))
        return out

    def _show_problems(self, section: dict[str, Any]) -> None:
        problems = training_problems(section)
        self.problems_label.setText("\n".join(f"• {p}" for p in problems))
        self.problems_label.setVisible(bool(problems))

    @property
    def problems(self) -> list[str]:
        return training_problems(self.section())

    # --------------------------------------------------------- schedule plot
    def set_train_samples(self, samples: int | None) -> None:
        """How many training samples the data has (for steps per epoch in the plot)."""
        self.train_samples = samples
        self._lr_timer.start()

    def update_lr_plot(self) -> None:
        """Ask the engine service for the learning-rate plot (once it is ready)."""
        if self.project is None:
            return
        s = self.section()
        if training_problems(s):
            self.lr_note.setText("Fix the settings above to see the schedule.")
            return
        batch = max(1, int(s.get("batch_size", 32)))
        samples = self.train_samples or 1000
        steps_per_epoch = max(1, math.ceil(samples / batch))
        epochs = max(1, int(s.get("epochs", 10)))
        args = {"section": s, "steps_per_epoch": steps_per_epoch, "epochs": epochs}
        if not self._lr_job.submit("lr_curve", args):
            self.lr_note.setText("The schedule plot appears when TensorFlow is ready.")
            return
        self.steps_per_epoch = steps_per_epoch
        self._lr_phase = phase_change_epoch(s, epochs)

    def _on_lr_ready(self, result: tuple[np.ndarray, np.ndarray]) -> None:
        x, y = result
        self.lr_curve.setData(x, y)
        self.lr_plot.setYRange(*lr_axis_range(y), padding=0)
        if len(x):
            self.lr_plot.setXRange(0, max(1.0, float(x[-1])), padding=0.02)
        kind = self.schedule.currentText()
        note = (
            f"{self.steps_per_epoch} steps per epoch"
            + ("" if self.train_samples else " (assuming 1000 training samples)")
            + f"; from {y[0]:.3g} to {y[-1]:.3g}, at most {max(y):.3g}"
        )
        if kind == "reduce_on_plateau":
            note += "; reduced further whenever the monitored value stops improving"
        phase = self._lr_phase
        self.lr_phase_line.setVisible(phase is not None)
        if phase is not None:
            self.lr_phase_line.setValue(phase)
            factor = (fine_tune_of(self.section()) or {}).get("learning_rate_factor", 0.1)
            self.lr_phase_line.label.setFormat(f"phase 2 (×{float(factor):g})")
            self.lr_phase_line.setToolTip(
                f"Fine-tuning from epoch {phase + 1}: the schedule starts again at the "
                "learning rate × the factor"
            )
            note += (
                f"; phase 2 from epoch {phase + 1} starts the schedule again "
                f"× {float(factor):g} (sooner if early stopping ends phase 1)"
            )
        self.lr_note.setText(note)

    def tensorflow_ready(self) -> None:
        """TensorFlow has loaded: plot the schedule and list the devices."""
        self._lr_timer.start()
        self.discover_devices()

    # -------------------------------------------------------------- devices
    def discover_devices(self) -> None:
        """Ask the engine service for the GPUs (once it is ready)."""
        if not self._device_job.busy:
            self._device_job.submit("devices")

    def _on_devices(self, devices: list[str]) -> None:
        self._devices = list(devices)
        self._loading = True
        try:
            self._fill_devices(self.device.currentData() or "auto")
        finally:
            self._loading = False

    def _fill_devices(self, current: str = "auto") -> None:
        if current in (CLUSTER, EDIT_CLUSTER):
            current = str(self.section().get("device") or "auto")
        self.device.blockSignals(True)
        self.device.clear()
        self.device.addItem("auto (a GPU if there is one)", "auto")
        self.device.addItem("CPU", "cpu")
        for name in self._devices:
            self.device.addItem(name.upper(), name)
        self.device.addItem("all GPUs", "all")
        index = self.device.findData(current)
        if index < 0:
            self.device.addItem(f"{current} (not found on this machine)", current)
            index = self.device.count() - 1
        cluster = self.cluster if self.project is not None else None
        if cluster is not None:
            self.device.addItem(cluster_label(cluster), CLUSTER)
            index = self.device.count() - 1
            self.device.setItemData(
                index,
                "This machine is the chief of " + ", ".join(cluster["workers"]),
                Qt.ItemDataRole.ToolTipRole,
            )
        self.device.addItem("Cluster…", EDIT_CLUSTER)
        self.device.setItemData(
            self.device.count() - 1,
            "Train across several machines (TensorFlow's multi-worker engine)",
            Qt.ItemDataRole.ToolTipRole,
        )
        self.device.setCurrentIndex(index)
        self.device.blockSignals(False)


def main() -> None:
    """``python -m gui.training.training_panel [project.json]``: the panel on its own."""
    app = QApplication(sys.argv[:1])
    project = load_project(sys.argv[1]) if len(sys.argv) > 1 else new_project()
    panel = TrainingPanel()
    panel.set_project(project, UndoStack(project))
    area = QScrollArea()
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.resize(420, 800)
    area.show()
    app.exec()


if __name__ == "__main__":
    main()
