"""One editor widget per parameter kind, and the text forms of list values.

Each editor shows one :class:`engine.catalog.specs.ParamSpec`'s value and emits
``edited`` when the user commits one; the form (:mod:`gui.inspector.form`) reads and
checks it.
"""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)

from engine.catalog.checks import format_index, parse_index
from engine.catalog.specs import INT_MAX, ParamSpec

FLOAT_LIMIT = 1e9
FLOAT_DECIMALS = 12


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
    """Base editor: ``value()``, ``set_value(v)`` and ``edited`` when the user commits.

    Signals:
        edited(): the user committed a value (Enter, focus out, a choice).
        cancelled(): the user pressed Esc in the editor (the form shows the layer's
            value again and drops a refusal).
    """

    edited = Signal()
    cancelled = Signal()

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

    def watch_escape(self, widget: QWidget) -> None:
        """Emit ``cancelled`` when Esc is pressed in ``widget``."""
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape:
            self.cancelled.emit()
        return False


def _soft_step(spin: QAbstractSpinBox, steps: int) -> None:
    """Arrows and the wheel stay within the param's bounds; typing may leave them
    (the form then says why the value is refused instead of silently reverting it)."""
    lo, hi = spin.soft_range
    target = spin.value() + steps * spin.singleStep()
    spin.setValue(min(max(target, lo), hi))
    spin.selectAll()


def _soft_enabled(spin: QAbstractSpinBox) -> Any:
    lo, hi = spin.soft_range
    flags = QAbstractSpinBox.StepEnabledFlag.StepNone
    if spin.isReadOnly():
        return flags
    if spin.value() > lo:
        flags |= QAbstractSpinBox.StepEnabledFlag.StepDownEnabled
    if spin.value() < hi:
        flags |= QAbstractSpinBox.StepEnabledFlag.StepUpEnabled
    return flags


class SoftSpinBox(QSpinBox):
    """An int spin box that accepts any typed int but steps only within ``soft_range``."""

    def __init__(self, lo: int, hi: int) -> None:
        super().__init__()
        self.setRange(-INT_MAX, INT_MAX)
        self.soft_range = (max(lo, -INT_MAX), min(hi, INT_MAX))

    def stepBy(self, steps: int) -> None:
        _soft_step(self, steps)

    def stepEnabled(self) -> Any:
        return _soft_enabled(self)


class CompactDoubleSpinBox(QDoubleSpinBox):
    """Shows ``0.99`` rather than ``0.990000``."""

    def textFromValue(self, value: float) -> str:
        text = f"{value:.{self.decimals()}f}".rstrip("0").rstrip(".")
        return text if text not in ("", "-0") else "0"


class SoftDoubleSpinBox(CompactDoubleSpinBox):
    """A float spin box that accepts any typed number but steps only within ``soft_range``."""

    def __init__(self, lo: float, hi: float) -> None:
        super().__init__()
        self.setRange(-FLOAT_LIMIT, FLOAT_LIMIT)
        self.soft_range = (lo, hi)

    def stepBy(self, steps: int) -> None:
        _soft_step(self, steps)

    def stepEnabled(self) -> Any:
        return _soft_enabled(self)


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
        self.watch_escape(spin)
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
        lo = int(pspec.min) if pspec.min is not None else -INT_MAX
        hi = int(pspec.max) if pspec.max is not None else INT_MAX
        self._add_spin(SoftSpinBox(lo, hi))

    def _number(self) -> Any:
        return self.spin.value()

    def _shown(self, value: Any) -> Any:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        return min(max(value, self.spin.minimum()), self.spin.maximum())  # the node says why


class FloatEditor(_SpinEditor):
    def __init__(self, pspec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(pspec, parent)
        lo = float(pspec.min) if pspec.min is not None else -FLOAT_LIMIT
        hi = float(pspec.max) if pspec.max is not None else FLOAT_LIMIT
        spin = SoftDoubleSpinBox(lo, hi)
        spin.setDecimals(FLOAT_DECIMALS)  # epsilon 1e-12 stays 1e-12
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
        self.watch_escape(self.line)
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
        if kind == "index":  # slicing indices: parsed as data, never evaluated
            try:
                return parse_index(text) if text.strip() else None
            except ValueError as exc:
                raise ParseError(f"{self.pspec.name}: {exc}") from None
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
        elif self.pspec.kind == "index":
            self._shown = format_index(value)
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


class WeightsFileEditor(ChoiceEditor):
    """A ``str`` param with suggested values and a file (a Backbone's ``weights``:
    none, imagenet, or a weights file typed or chosen with "File…")."""

    def __init__(self, pspec: ParamSpec, parent: QWidget | None = None) -> None:
        super().__init__(pspec, parent, editable=True)
        self.combo.lineEdit().setPlaceholderText("none, imagenet or a .weights.h5 file")
        # a long path must not widen the inspector past its dock (it scrolls in the box)
        policy = QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        self.combo.setSizeAdjustPolicy(policy)
        self.combo.setMinimumContentsLength(4)
        self.browse = QToolButton()
        self.browse.setText("File\u2026")
        self.browse.setToolTip("Choose a weights file (.h5 or .weights.h5)")
        self.browse.clicked.connect(self._choose)
        self._layout.addWidget(self.browse)

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Weights file", "", "Keras weights (*.h5 *.weights.h5);;All files (*)"
        )
        if path:
            self.set_value(path)
            self._emit()
