"""A parallel-coordinates plot of a search: one vertical axis per searched parameter
and a last one for the metric; each trial is a line through its values, coloured by
its metric (viridis: the brighter, the better for a maximised metric). A log
parameter's axis is logarithmic; a parameter of choices gets one evenly spaced tick
per choice. Each axis is scaled to its own range; its ends are labelled in its units
(a log axis at its decades too). Tick labels sit right of their axis, inside its slot:
numbers in 3 significant digits (``1e-4`` style below 0.01), choices cut to
:data:`LABEL_CHARS` characters.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QVBoxLayout, QWidget

from gui.theme import colors
from gui.training.experiments_importance import short_name
from gui.training.live_view import style_plot

LABEL_CHARS = 8
"""A tick label's longest text: it stays between its axis and the next one."""


def _fmt(v: Any) -> str:
    """A short tick label: ``0.00316`` is ``3.16e-3``, ``0.0001`` is ``1e-4``, ``12345.6``
    is ``1.23e4``, else 3 significant digits; a choice is cut to LABEL_CHARS."""
    if isinstance(v, float) and v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e5):
        mantissa, exponent = f"{v:.2e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    text = f"{v:.3g}" if isinstance(v, float) else str(v)
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


class Axis:
    """How one parameter's values map to 0..1 (numbers, log numbers or choices)."""

    def __init__(self, name: str, values: list[Any], spec: dict[str, Any] | None) -> None:
        self.name = name
        spec = spec or {}
        given = [v for v in values if v is not None]
        choices = spec.get("choices")
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in given)
        self.categories: list[Any] | None = None
        if choices is not None or not numeric:
            self.categories = list(dict.fromkeys([*(choices or []), *given]))
            return
        self.log = bool(spec.get("log")) and all(v > 0 for v in given)
        lows = [*given, *([spec["low"]] if "low" in spec else [])]
        highs = [*given, *([spec["high"]] if "high" in spec else [])]
        self.low = min(lows) if lows else 0.0
        self.high = max(highs) if highs else 1.0

    def _t(self, v: float) -> float:
        return math.log10(v) if self.log else float(v)

    def _value(self, position: float) -> float:
        lo, hi = self._t(self.low), self._t(self.high)
        t = lo + position * (hi - lo)
        return 10.0**t if self.log else t

    def position(self, v: Any) -> float:
        if v is None:
            return math.nan
        if self.categories is not None:
            n = len(self.categories)
            return 0.5 if n == 1 else self.categories.index(v) / (n - 1)
        lo, hi = self._t(self.low), self._t(self.high)
        return 0.5 if hi == lo else (self._t(v) - lo) / (hi - lo)

    def ticks(self) -> list[tuple[float, str]]:
        """Labels along the axis: every choice, else both ends and the middle (a log
        axis: the decades between its ends, none closer than 0.15 to another)."""
        if self.categories is not None:
            return [(self.position(c), _fmt(c)) for c in self.categories]
        if self.low == self.high:
            return [(0.5, _fmt(self.low))]
        if self.log:
            ends = [(0.0, _fmt(float(self.low))), (1.0, _fmt(float(self.high)))]
            first, last = math.ceil(self._t(self.low)), math.floor(self._t(self.high))
            decades = [self.position(10.0**k) for k in range(first, last + 1)]
            inner = [p for p in decades if 0.15 <= p <= 0.85]
            if inner:
                step = max(1, math.ceil(len(inner) / 4))  # at most 4 inside
                return [ends[0], *((p, _fmt(self._value(p))) for p in inner[::step]), ends[1]]
        mid = (
            10 ** ((self._t(self.low) + self._t(self.high)) / 2)
            if self.log
            else ((self.low + self.high) / 2)
        )
        return [(0.0, _fmt(self.low)), (0.5, _fmt(mid)), (1.0, _fmt(self.high))]


class ParallelCoordinates(QWidget):
    """:meth:`set_trials` draws the trials of a summary against the search's space."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.widget = pg.PlotWidget(background=None)
        self.plot = self.widget.getPlotItem()
        self.plot.setTitle("Parallel coordinates")
        self.plot.hideAxis("left")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        style_plot(self.plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.widget)
        self.axes: list[Axis] = []
        self.names: list[str] = []  # every axis's parameter (the metric last)
        self.lines: list[pg.PlotDataItem] = []
        self.cmap = pg.colormap.get("viridis")
        self.plot.getViewBox().sigResized.connect(lambda *_: self.names and self._name_axes())

    def set_trials(
        self,
        trials: list[dict[str, Any]],
        space: dict[str, Any] | None,
        metric: str,
        direction: str = "maximize",
    ) -> None:
        """Lines for the trials with a value (complete or pruned), axes from ``space``
        (the search section's ``parameters``) and the values seen."""
        self.plot.clear()
        self.lines = []
        shown = [t for t in trials if t.get("value") is not None]
        names = list(dict.fromkeys([*(space or {}), *(k for t in shown for k in t["params"])]))
        self.axes = [Axis(n, [t["params"].get(n) for t in shown], (space or {}).get(n))
                     for n in names]  # fmt: skip
        values = [float(t["value"]) for t in shown]
        metric_axis = Axis(metric or "value", values, None)
        axes = [*self.axes, metric_axis]
        text = colors()["text"]
        fill = self.palette().window().color()
        fill.setAlpha(190)  # the lines pass under a label, not through it
        for i, axis in enumerate(axes):
            self.plot.addItem(pg.InfiniteLine(pos=i, angle=90, pen=pg.mkPen(colors()["plot_axis"])))
            for pos, label in axis.ticks():
                item = pg.TextItem(label, color=text, anchor=(0, 0.5), fill=fill)
                item.setPos(i + 0.03, pos)
                self.plot.addItem(item)
        self.names = [a.name for a in axes]
        self.plot.getAxis("bottom").setStyle(tickTextOffset=6)
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        for t in shown:
            v = float(t["value"])
            share = 0.5 if hi == lo else (v - lo) / (hi - lo)
            if direction == "minimize":
                share = 1 - share
            color = self.cmap.map(share, mode="qcolor")
            ys = [a.position(t["params"].get(a.name)) for a in self.axes]
            ys.append(metric_axis.position(v))
            line = self.plot.plot(
                list(range(len(axes))),
                np.asarray(ys, dtype=float),
                pen=pg.mkPen(color, width=2.5 if share == 1 else 1.5),
                connect="finite",
            )
            line.setZValue(share)
            self.lines.append(line)
        self.plot.setXRange(-0.5, len(axes) - 0.25, padding=0)
        self.plot.setYRange(-0.08, 1.08, padding=0)
        self._name_axes()

    def _name_axes(self) -> None:
        """Each axis's name under it, elided in the middle to its slot's width (the full
        names are the trials table's headers)."""
        bottom = self.plot.getAxis("bottom")
        vb = self.plot.getViewBox()
        slot = vb.mapViewToScene(QPointF(1, 0)).x() - vb.mapViewToScene(QPointF(0, 0)).x()
        metrics = QFontMetrics(bottom.style.get("tickFont") or self.font())
        width = max(int(slot) - 8, metrics.horizontalAdvance("ab…yz"))
        labels = [metrics.elidedText(short_name(n), Qt.TextElideMode.ElideMiddle, width)
                  for n in self.names]  # fmt: skip
        bottom.setTicks([list(enumerate(labels))])
