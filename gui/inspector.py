"""The property inspector: an editor per parameter, generated from the catalog.

Shows the selected layer's explanation (its catalog doc), its id (rename in
place) and one editor per :class:`engine.catalog.table.ParamSpec`, chosen by kind.
Each accepted change is ONE undo step (``SetParams`` with the full new params
dict, or a ``Macro`` of them when several layers of one type are selected). A
value :func:`engine.catalog.table.check_value` rejects is refused in place: the
reason appears in red under the field and nothing is pushed. Model-to-widget
updates run with the editors' signals blocked, so they never echo back.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.catalog.checks import check_value
from engine.catalog.specs import LayerSpec, ParamSpec
from engine.catalog.table import CATALOG
from engine.model.commands import Macro, Rename, SetParams, UndoStack
from engine.model.graph import is_valid_id
from engine.model.project import Project
from gui.problems import format_shape
from gui.theme import category_color

ADVANCED_KINDS = ("initializer", "regularizer")
INT_LIMIT = 2**31 - 1
FLOAT_LIMIT = 1e9
FLOAT_DECIMALS = 12
INITIALIZERS = (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "zeros",
    "ones",
    "random_uniform",
    "random_normal",
    "truncated_normal",
    "orthogonal",
    "identity",
)


class ParseError(ValueError):
    """Text in an editor that is not a value at all (e.g. letters in a tuple)."""


def _fmt(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_ints(value: Any) -> str:
    """``[3, 3]`` -> ``"3, 3"``; ``None`` -> ``""``."""
    if value is None:
        return ""
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(v, (list, tuple)) for v in value)
    ):
        return ", ".join("(" + format_ints(v) + ")" for v in value)
    if isinstance(value, (list, tuple)):
        return ", ".join("None" if v is None else str(v) for v in value)
    return str(value)


def format_floats(value: Any) -> str:
    """``[0.5, 0.25]`` -> ``"0.5, 0.25"``; ``0.5`` -> ``"0.5"``; ``None`` -> ``""``."""
    if value is None:
        return ""
    values = value if isinstance(value, (list, tuple)) else [value]
    return ", ".join(f"{v:.8g}" for v in values)


def parse_floats(text: str, name: str) -> Any:
    """``"0.5, 0.25"`` -> ``[0.5, 0.25]``; ``"0.5"`` -> ``0.5``; ``""`` -> ``None``.

    Raises:
        ParseError: naming the parameter and the text.
    """
    text = text.strip().strip("()[]").strip()
    if not text:
        return None
    try:
        values = [float(p) for p in text.replace(";", ",").split(",")]
    except ValueError:
        raise ParseError(
            f"{name}: enter a number, or numbers separated by commas; got '{text}'"
        ) from None
    return values[0] if len(values) == 1 else values


def parse_ints(text: str, name: str, allow_none_items: bool = False) -> Any:
    """``"3, 3"`` -> ``[3, 3]``; ``"3"`` -> ``3``; ``""`` -> ``None``.

    Raises:
        ParseError: naming the parameter and the text.
    """
    pairs = re.findall(r"[(\[]\s*(-?\d+)\s*,\s*(-?\d+)\s*[)\]]", text)
    if len(pairs) >= 2:  # uneven padding: "(0, 1), (0, 1)"
        return [[int(a), int(b)] for a, b in pairs]
    text = text.strip().strip("()[]").strip()
    if not text:
        return None
    parts = [p.strip() for p in text.replace(";", ",").replace("x", ",").split(",")]
    out: list[int | None] = []
    for part in parts:
        if allow_none_items and part.lower() in ("none", "?", ""):
            out.append(None)
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise ParseError(
                f"{name}: enter whole numbers separated by commas; got '{text}'"
            ) from None
    return out[0] if len(out) == 1 and "," not in text else out


# ----------------------------------------------------------------- editors
class ParamEditor(QWidget):
    """Base editor: ``value()``, ``set_value(v)`` and ``edited`` when the user commits."""

    edited = Signal()

    def __init__(self, pspec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pspec = pspec
        self.setToolTip(pspec.doc)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)

    def value(self) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def _emit(self, *_args: Any) -> None:
        self.edited.emit()


class CompactDoubleSpinBox(QDoubleSpinBox):
    """Shows ``0.99`` rather than ``0.990000``."""

    def textFromValue(self, value: float) -> str:
        text = f"{value:.{self.decimals()}f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else "0"


class _NoneToggle(QCheckBox):
    """A small "none" check box for optional numeric params."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("none", parent)
        self.setToolTip("Leave unset (None)")


class _SpinEditor(ParamEditor):
    """A spin box, plus a "none" toggle when the param is optional."""

    def _add_spin(self, spin: QSpinBox | QDoubleSpinBox) -> None:
        self.spin = spin
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(self._emit)
        self._layout.addWidget(spin, 1)
        self.none: _NoneToggle | None = None
        if self.pspec.optional:
            self.none = _NoneToggle()
            self.none.toggled.connect(self._on_none)
            self._layout.addWidget(self.none)

    def _on_none(self, checked: bool) -> None:
        self.spin.setEnabled(not checked)
        self._emit()

    def _number(self) -> Any:
        """The spin box's value as the param's kind."""
        raise NotImplementedError

    def _shown(self, value: Any) -> Any:
        """``value`` as the spin box shows it, or None when it cannot show it."""
        raise NotImplementedError

    def value(self) -> Any:
        if self.none is not None and self.none.isChecked():
            return None
        return self._number()

    def set_value(self, value: Any) -> None:
        shown = self._shown(value)
        with QSignalBlocker(self.spin):
            if shown is not None:
                self.spin.setValue(shown)
        if self.none is not None:
            with QSignalBlocker(self.none):
                self.none.setChecked(value is None)
            self.spin.setEnabled(value is not None)


class IntEditor(_SpinEditor):
    def __init__(self, pspec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(pspec, parent)
        spin = QSpinBox()
        lo = int(pspec.min) if pspec.min is not None else -INT_LIMIT
        hi = int(pspec.max) if pspec.max is not None else INT_LIMIT
        spin.setRange(max(lo, -INT_LIMIT), min(hi, INT_LIMIT))
        self._add_spin(spin)

    def _number(self) -> Any:
        return self.spin.value()

    def _shown(self, value: Any) -> Any:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        return min(max(value, self.spin.minimum()), self.spin.maximum())  # the node says why


class FloatEditor(_SpinEditor):
    def __init__(self, pspec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(pspec, parent)
        spin = CompactDoubleSpinBox()
        spin.setDecimals(FLOAT_DECIMALS)  # epsilon 1e-12 stays 1e-12
        lo = float(pspec.min) if pspec.min is not None else -FLOAT_LIMIT
        hi = float(pspec.max) if pspec.max is not None else FLOAT_LIMIT
        spin.setRange(lo, hi)
        spin.setSingleStep(0.05 if hi - lo <= 1.0 else 0.1)
        self._add_spin(spin)

    def _number(self) -> Any:
        return round(self.spin.value(), FLOAT_DECIMALS)

    def _shown(self, value: Any) -> Any:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return float(value) if number else None


class BoolEditor(ParamEditor):
    def __init__(self, pspec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(pspec, parent)
        self.check = QCheckBox()
        self.check.toggled.connect(self._emit)
        self._layout.addWidget(self.check)
        self._layout.addStretch(1)

    def value(self) -> Any:
        return self.check.isChecked()

    def set_value(self, value: Any) -> None:
        with QSignalBlocker(self.check):
            self.check.setChecked(bool(value))


class ChoiceEditor(ParamEditor):
    """A combo box over ``choices``; ``None`` is shown as "none"."""

    def __init__(
        self,
        pspec: ParamSpec,
        parent: QWidget | None = None,
        choices: tuple[Any, ...] | None = None,
        editable: bool = False,
    ) -> None:
        super().__init__(pspec, parent)
        self.combo = QComboBox()
        self.combo.setEditable(editable)
        items = list(choices if choices is not None else pspec.choices)
        if pspec.optional and None not in items:
            items.insert(0, None)
        for choice in items:
            self.combo.addItem(_fmt(choice), choice)
        self.combo.activated.connect(self._emit)
        if editable:
            self.combo.lineEdit().editingFinished.connect(self._emit)
        self._layout.addWidget(self.combo, 1)

    def value(self) -> Any:
        text = self.combo.currentText()
        index = self.combo.findText(text)
        if index >= 0:
            return self.combo.itemData(index)
        return None if text.strip().lower() in ("", "none") else text.strip()

    def set_value(self, value: Any) -> None:
        with QSignalBlocker(self.combo):
            if isinstance(value, int) and abs(value) >= 2**63:  # too big for Qt: shown as
                index, value = -1, str(value)  # text, it is never one of the choices
            else:
                index = self.combo.findData(value)
            if index < 0:
                self.combo.addItem(_fmt(value), value)
                index = self.combo.count() - 1
            self.combo.setCurrentIndex(index)


class TextEditor(ParamEditor):
    """Free text; for ``ints``/``shape``/``axes`` kinds, comma separated numbers."""

    def __init__(self, pspec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(pspec, parent)
        self.line = QLineEdit()
        if pspec.kind in ("ints", "axes"):
            n = pspec.length or 2
            self.line.setPlaceholderText(", ".join(["3"] * n) if pspec.kind == "ints" else "-1")
        elif pspec.kind == "shape":
            self.line.setPlaceholderText("28, 28, 1  (None for any length)")
        elif pspec.kind == "float":
            self.line.setPlaceholderText("a number, or one per channel: 0.5, 0.5, 0.5")
        if pspec.optional:
            self.line.setPlaceholderText("none")
        self.line.editingFinished.connect(self._on_finished)
        self._layout.addWidget(self.line, 1)
        self._shown = ""

    def _on_finished(self) -> None:
        if self.line.text() != self._shown:
            self._emit()

    def value(self) -> Any:
        text = self.line.text()
        kind = self.pspec.kind
        if kind in ("ints", "axes"):
            return parse_ints(text, self.pspec.name)
        if kind == "float":
            return parse_floats(text, self.pspec.name)
        if kind == "shape":
            value = parse_ints(text, self.pspec.name, allow_none_items=True)
            if isinstance(value, int):
                return [value]
            return value if value is not None else ([] if not self.pspec.optional else None)
        if self.pspec.optional and not text.strip():
            return None
        return text

    def set_value(self, value: Any) -> None:
        if self.pspec.kind == "float":
            self._shown = format_floats(value)
        else:
            self._shown = format_ints(value) if self.pspec.kind != "str" else (value or "")
        with QSignalBlocker(self.line):
            self.line.setText(self._shown)


class RegularizerEditor(ParamEditor):
    """Type combo (none, L1, L2, L1L2) and the factors it needs."""

    def __init__(self, pspec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(pspec, parent)
        self.kind = QComboBox()
        for label, data in (("none", None), ("L1", "L1"), ("L2", "L2"), ("L1L2", "L1L2")):
            self.kind.addItem(label, data)
        self.l1, self.l2 = CompactDoubleSpinBox(), CompactDoubleSpinBox()
        for spin, label in ((self.l1, "l1 "), (self.l2, "l2 ")):
            spin.setDecimals(6)
            spin.setRange(0.0, 10.0)
            spin.setSingleStep(0.0001)
            spin.setValue(0.01)
            spin.setPrefix(label)
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self._emit)
        self.kind.activated.connect(self._on_kind)
        self._layout.addWidget(self.kind)
        self._layout.addWidget(self.l1, 1)
        self._layout.addWidget(self.l2, 1)
        self._sync_visible()

    def _sync_visible(self) -> None:
        kind = self.kind.currentData()
        self.l1.setVisible(kind in ("L1", "L1L2"))
        self.l2.setVisible(kind in ("L2", "L1L2"))

    def _on_kind(self, *_args: Any) -> None:
        self._sync_visible()
        self._emit()

    def value(self) -> Any:
        kind = self.kind.currentData()
        if kind is None:
            return None
        out: dict[str, Any] = {"type": kind}
        if kind in ("L1", "L1L2"):
            out["l1"] = round(self.l1.value(), 6)
        if kind in ("L2", "L1L2"):
            out["l2"] = round(self.l2.value(), 6)
        return out

    def set_value(self, value: Any) -> None:
        blockers = [QSignalBlocker(w) for w in (self.kind, self.l1, self.l2)]
        kind = value.get("type") if isinstance(value, dict) else None
        self.kind.setCurrentIndex(max(0, self.kind.findData(kind)))
        if isinstance(value, dict):
            for key, spin in (("l1", self.l1), ("l2", self.l2)):
                if isinstance(value.get(key), (int, float)):
                    spin.setValue(float(value[key]))
        del blockers
        self._sync_visible()


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
        self._params = _with_param(spec, self._params, name, value) if spec else self._params
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
    return TextEditor(pspec)  # str, ints, shape, axes, per-channel floats


def _with_param(spec: LayerSpec, params: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
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


# ------------------------------------------------------------------ the form
class ParamForm(QWidget):
    """One labelled editor per param of a spec, with an error line under each.

    Signals:
        param_edited(str, object): a committed value that passed ``check_value``.
    """

    param_edited = Signal(str, object)

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

    def set_values(self, params: dict[str, Any]) -> None:
        if self.spec is None:
            return
        for pspec in self.spec.params:
            self.editors[pspec.name].set_value(copy.deepcopy(params.get(pspec.name, pspec.default)))
            self.show_error(pspec.name, None)

    def show_error(self, name: str, reason: str | None) -> None:
        label = self.errors.get(name)
        if label is None:
            return
        label.setText(reason or "")
        label.setVisible(bool(reason))

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
            return
        reason = check_value(pspec, value)
        if reason:
            self.show_error(name, reason)
            return
        self.show_error(name, None)
        self.param_edited.emit(name, value)


# ------------------------------------------------------------ the inspector
class Inspector(QWidget):
    """Edits the selected layer(s) of a project through its undo stack."""

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

        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(10, 10, 10, 10)
        body.setSpacing(8)
        body.addLayout(head)
        body.addWidget(self.shape)
        body.addWidget(self.problem_text)
        body.addWidget(self.doc)
        body.addLayout(id_row)
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
        outer.addWidget(scroll, 1)
        self._scroll = scroll
        self.empty.setContentsMargins(12, 12, 12, 12)

        self.id_edit.editingFinished.connect(self._on_rename)
        self.form.param_edited.connect(self._on_param_edited)
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
            new = _with_param(spec, node.params, name, value)
            if new != node.params:
                commands.append(SetParams(node_id, new, f"Set {name} of '{node_id}'"))
        if not commands:
            return
        if len(commands) == 1:
            self.undo_stack.push(commands[0])
        else:
            self.undo_stack.push(Macro(f"Set {name} of {len(commands)} layers", commands))
