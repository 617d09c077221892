"""Live curves of a search's trials: each trial's value of the search's metric per
epoch, one colour per trial, the best trial drawn thick (the others faint), so a
running trial can be compared with the finished ones while it trains.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from gui.theme import colors
from gui.training.live_view import style_plot

TRIAL_HUES = 9


def trial_color(trial: int) -> Any:
    """The colour of a trial, the same in every plot of the tab."""
    return pg.intColor(trial, hues=TRIAL_HUES, values=1, maxValue=200, minValue=150)


class TrialCurves(QWidget):
    """The metric per epoch of every trial (:meth:`set_trials`, :meth:`add_point`)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.widget = pg.PlotWidget(background=None)
        self.plot = self.widget.getPlotItem()
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("bottom", "epoch", color=colors()["text"])
        self.plot.setTitle("Trials: metric per epoch")
        style_plot(self.plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.widget)
        self.points: dict[int, dict[int, float]] = {}
        self.items: dict[int, pg.PlotDataItem] = {}
        self.best: int | None = None
        self.metric_name = ""  # not `metric`: that is QWidget.metric()

    def set_metric(self, metric: str) -> None:
        self.metric_name = metric
        self.plot.setTitle(f"Trials: {metric} per epoch" if metric else "Trials")
        style_plot(self.plot)

    def set_trials(self, trials: list[dict[str, Any]], best: int | None) -> None:
        """Every trial's curve (``curve``: ``[[epoch, value], ...]``) and the best one."""
        for t in trials:
            curve = t.get("curve") or []
            self.points[t["trial"]] = {int(e): v for e, v in curve if v is not None}
        self.best = best
        self._draw_all()

    def add_point(self, trial: int, epoch: int, value: float | None) -> None:
        """One epoch of a running trial."""
        if value is None:
            return
        self.points.setdefault(trial, {})[int(epoch)] = float(value)
        self._draw(trial)

    def set_best(self, best: int | None) -> None:
        if best != self.best:
            self.best = best
            self._draw_all()

    def clear(self) -> None:
        self.points.clear()
        for item in self.items.values():
            self.plot.removeItem(item)
        self.items.clear()

    def _draw_all(self) -> None:
        for trial in self.points:
            self._draw(trial)
        if self.best in self.items:  # the best on top
            self.items[self.best].setZValue(10)

    def _draw(self, trial: int) -> None:
        pts = sorted(self.points.get(trial, {}).items())
        item = self.items.get(trial)
        if item is None:
            item = self.items[trial] = self.plot.plot(symbol="o", symbolSize=4)
        color = trial_color(trial)
        if trial == self.best:
            pen = pg.mkPen(color, width=3.5)
            item.setZValue(10)
        else:
            color.setAlpha(150)
            pen = pg.mkPen(color, width=1.3)
            item.setZValue(0)
        item.setPen(pen)
        item.setSymbolBrush(color)
        item.setSymbolPen(None)
        item.setData([e for e, _ in pts], [v for _, v in pts])
