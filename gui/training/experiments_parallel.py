"""A parallel-coordinates plot of a search: one vertical axis per searched parameter
and a last one for the metric; each trial is a line through its values, coloured by
its metric (viridis: the brighter, the better for a maximised metric). A log
parameter's axis is logarithmic; a parameter of choices gets one evenly spaced tick
per choice. Each axis is scaled to its own range; its ends are labelled in its units.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from gui.theme import colors
from gui.training.experiments_importance import short_name
from gui.training.live_view import style_plot


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


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

    def position(self, v: Any) -> float:
        if v is None:
            return math.nan
        if self.categories is not None:
            n = len(self.categories)
            return 0.5 if n == 1 else self.categories.index(v) / (n - 1)
        lo, hi = self._t(self.low), self._t(self.high)
        return 0.5 if hi == lo else (self._t(v) - lo) / (hi - lo)

    def ticks(self) -> list[tuple[float, str]]:
        """Labels along the axis: every choice, else both ends (and the middle)."""
        if self.categories is not None:
            return [(self.position(c), _fmt(c)) for c in self.categories]
        if self.low == self.high:
            return [(0.5, _fmt(self.low))]
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
        self.lines: list[pg.PlotDataItem] = []
        self.cmap = pg.colormap.get("viridis")

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
        for i, axis in enumerate(axes):
            self.plot.addItem(pg.InfiniteLine(pos=i, angle=90, pen=pg.mkPen(colors()["plot_axis"])))
            for pos, label in axis.ticks():
                item = pg.TextItem(label, color=text, anchor=(0, 0.5))
                item.setPos(i + 0.03, pos)
                self.plot.addItem(item)
        bottom = self.plot.getAxis("bottom")
        bottom.setTicks([[(i, short_name(a.name, 16)) for i, a in enumerate(axes)]])
        bottom.setStyle(tickTextOffset=6)
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
