"""The parameter form: one labelled editor per param of a layer spec, an error line
under each, and the nested-layer editor (Bidirectional, TimeDistributed) that holds a
form of its own. A value :func:`engine.catalog.checks.check_value` rejects is refused
in place: the reason appears in red under the field and nothing is emitted.
"""

from __future__ import annotations

import copy
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.catalog.checks import check_value
from engine.catalog.specs import INITIALIZERS, LayerSpec, ParamSpec
from engine.catalog.table import CATALOG
from gui.inspector.editors import (
    BoolEditor,
    ChoiceEditor,
    FloatEditor,
    IntEditor,
    ParamEditor,
    ParseError,
    RegularizerEditor,
    TextEditor,
    WeightsFileEditor,
)
from gui.wheel_guard import guard_wheel

ADVANCED_KINDS = ("initializer", "regularizer")
"""Parameter kinds shown under the form's collapsed Advanced section."""


class LayerEditor(ParamEditor):
    """Nested layer editor (Bidirectional, TimeDistributed): wrapped type + its params."""

    def __init__(self, pspec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(pspec, parent)
        self._layout.setDirection(QHBoxLayout.Direction.TopToBottom)
        self.type_combo = QComboBox()
        choices = [c for c in pspec.choices if c in CATALOG] or list(pspec.choices)
        for choice in choices:
            self.type_combo.addItem(str(choice), choice)
        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        self.form = ParamForm(nested=True)
        QVBoxLayout(frame).addWidget(self.form)
        frame.layout().setContentsMargins(6, 4, 4, 4)
        self._layout.addWidget(self.type_combo)
        self._layout.addWidget(frame)
        self._params: dict[str, Any] = {}
        self.type_combo.activated.connect(self._on_type)
        self.form.param_edited.connect(self._on_inner)

    def _on_type(self, *_args: Any) -> None:
        spec = CATALOG.get(self.type_combo.currentData())
        self._params = spec.defaults() if spec else {}
        self._show_form()
        self._emit()

    def _on_inner(self, name: str, value: Any) -> None:
        spec = CATALOG.get(self.type_combo.currentData())
        self._params = with_param(spec, self._params, name, value) if spec else self._params
        self._emit()

    def _show_form(self) -> None:
        spec = CATALOG.get(self.type_combo.currentData())
        self.form.show_spec(spec, self._params)

    def value(self) -> Any:
        return {"type": self.type_combo.currentData(), "params": copy.deepcopy(self._params)}

    def set_value(self, value: Any) -> None:
        value = value if isinstance(value, dict) else {}
        with QSignalBlocker(self.type_combo):
            index = self.type_combo.findData(value.get("type"))
            if index < 0 and value.get("type"):
                self.type_combo.addItem(str(value["type"]), value["type"])
                index = self.type_combo.count() - 1
            self.type_combo.setCurrentIndex(max(index, 0))
        self._params = copy.deepcopy(value.get("params") or {})
        self._show_form()

    def show_error(self, name: str, reason: str | None) -> None:
        self.form.show_error(name, reason)


def make_editor(pspec: ParamSpec) -> ParamEditor:
    """The editor widget for one parameter kind."""
    kind = pspec.kind
    if kind == "int":
        return IntEditor(pspec)
    if kind == "float" and not pspec.per_channel:
        return FloatEditor(pspec)
    if kind == "bool":
        return BoolEditor(pspec)
    if kind == "choice":
        return ChoiceEditor(pspec)
    if kind == "initializer":
        return ChoiceEditor(pspec, choices=tuple(pspec.choices) or INITIALIZERS, editable=True)
    if kind == "regularizer":
        return RegularizerEditor(pspec)
    if kind == "layer":
        return LayerEditor(pspec)
    if kind == "str" and pspec.choices:  # suggested values, or a file (Backbone weights)
        return WeightsFileEditor(pspec)
    return TextEditor(pspec)  # str, ints, shape, axes, per-channel floats


def with_param(spec: LayerSpec, params: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    """``params`` with ``name`` set, keeping only required params and non-default values.

    Unknown keys are kept (validation reports them; dropping them would lose data).
    """
    out = copy.deepcopy(params)
    out[name] = copy.deepcopy(value)
    for key in list(out):
        pspec = spec.param(key)
        if pspec is not None and not pspec.required and _same(out[key], pspec.default):
            del out[key]
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal as project-file values (tuples and lists alike, 1 == 1.0 but not True)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


class ParamForm(QWidget):
    """One labelled editor per param of a spec, with an error line under each.

    A refused value stays in its field (red border, the reason under it and in its
    tooltip) until it is corrected or Esc shows the layer's value again.

    Signals:
        param_edited(str, object): a committed value that passed ``check_value``.
        refused(str, str): a committed value was refused: the param and the reason.
    """

    param_edited = Signal(str, object)
    refused = Signal(str, str)

    def __init__(self, nested: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.nested = nested
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(4)
        self.main_form, self.layout_ = self._form()
        self.advanced_form, self.advanced_layout = self._form()
        self.advanced_toggle = QToolButton()
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced_toggle.toggled.connect(self._on_advanced_toggled)
        outer.addWidget(self.main_form)
        outer.addWidget(self.advanced_toggle)
        outer.addWidget(self.advanced_form)
        self.editors: dict[str, ParamEditor] = {}
        self.errors: dict[str, QLabel] = {}
        self.spec: LayerSpec | None = None
        self._params: dict[str, Any] = {}
        self._on_advanced_toggled(False)

    def _form(self) -> tuple[QWidget, QFormLayout]:
        widget = QWidget()
        form = QFormLayout(widget)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        form.setVerticalSpacing(2 if self.nested else 3)
        return widget, form

    def _on_advanced_toggled(self, shown: bool) -> None:
        self.advanced_form.setVisible(shown)
        self.advanced_toggle.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        )

    def show_spec(self, spec: LayerSpec | None, params: dict[str, Any]) -> None:
        """Rebuild the editors for ``spec`` (if it changed) and show ``params``."""
        if spec is not self.spec:
            self._rebuild(spec)
        self.set_values(params)

    def _rebuild(self, spec: LayerSpec | None) -> None:
        for form in (self.layout_, self.advanced_layout):
            while form.rowCount():
                form.removeRow(0)
        self.editors.clear()
        self.errors.clear()
        self.spec = spec
        advanced = [p for p in spec.params if p.kind in ADVANCED_KINDS] if spec else []
        self.advanced_toggle.setText(f"Initializers and regularizers ({len(advanced)})")
        self.advanced_toggle.setVisible(bool(advanced))
        self.advanced_form.setVisible(bool(advanced) and self.advanced_toggle.isChecked())
        if spec is None:
            return
        for pspec in spec.params:
            editor = make_editor(pspec)
            editor.setObjectName(f"param_{pspec.name}")
            editor.edited.connect(lambda name=pspec.name: self._on_edited(name))
            editor.cancelled.connect(lambda name=pspec.name: self._on_cancelled(name))
            label = QLabel(pspec.name + (" *" if pspec.required else ""))
            label.setToolTip(pspec.doc)
            error = QLabel()
            error.setObjectName("ErrorText")
            error.setWordWrap(True)
            error.hide()
            box = QWidget()
            col = QVBoxLayout(box)
            col.setContentsMargins(0, 0, 0, 0)
            col.setSpacing(1)
            col.addWidget(editor)
            col.addWidget(error)
            form = self.advanced_layout if pspec.kind in ADVANCED_KINDS else self.layout_
            if pspec.kind == "layer":  # a whole nested form: full width, label above
                form.addRow(label)
                form.addRow(box)
            else:
                form.addRow(label, box)
            self.editors[pspec.name] = editor
            self.errors[pspec.name] = error
        guard_wheel(self)

    def set_values(self, params: dict[str, Any]) -> None:
        self._params = copy.deepcopy(params)
        if self.spec is None:
            return
        for pspec in self.spec.params:
            self.editors[pspec.name].set_value(copy.deepcopy(params.get(pspec.name, pspec.default)))
            self.show_error(pspec.name, None)

    def show_error(self, name: str, reason: str | None) -> None:
        """Show ``reason`` under ``name``'s field and mark the field (None: clear both)."""
        label = self.errors.get(name)
        if label is None:
            return
        label.setText(reason or "")
        label.setVisible(bool(reason))
        editor = self.editors.get(name)
        if editor is None:
            return
        for field in editor.findChildren(QWidget):
            if isinstance(field, (QLineEdit, QAbstractSpinBox, QComboBox)):
                if not reason and not field.property("invalid"):
                    continue
                field.setProperty("invalid", bool(reason))
                field.setToolTip(reason or "")
                field.style().unpolish(field)
                field.style().polish(field)

    def _on_cancelled(self, name: str) -> None:
        """Esc: show the layer's value again and drop the refusal."""
        pspec = self.spec.param(name) if self.spec else None
        if pspec is None or not self.error_text(name):
            return
        self.editors[name].set_value(copy.deepcopy(self._params.get(name, pspec.default)))
        self.show_error(name, None)

    def error_text(self, name: str) -> str:
        """The refusal shown under ``name`` ("" when none)."""
        label = self.errors.get(name)
        return label.text() if label is not None and not label.isHidden() else ""

    def _on_edited(self, name: str) -> None:
        pspec = self.spec.param(name) if self.spec else None
        if pspec is None:
            return
        try:
            value = self.editors[name].value()
        except ParseError as exc:
            self.show_error(name, str(exc))
            self.refused.emit(name, str(exc))
            return
        reason = check_value(pspec, value)
        if reason:
            self.show_error(name, reason)
            self.refused.emit(name, reason)
            return
        self.show_error(name, None)
        self.param_edited.emit(name, value)


# ------------------------------------------------------------ the inspector
