"""Parameter-importance bars of a search: Optuna's ``get_param_importances`` (its default
evaluator; shares that sum to 1), computed by ``layerlab tune`` in its own process and read from
its JSON; the largest on top, each bar labelled with its share.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from gui.theme import colors
from gui.training.live_view import style_plot

BAR_COLOR = "#2563eb"


def short_name(name: str, limit: int = 28) -> str:
    """A parameter's label: ``training.optimizer.learning_rate`` is ``learning_rate``;
    a layer's keeps its node (``hidden.units``); cut in front past ``limit``."""
    if name.startswith("training."):
        name = name.rsplit(".", 1)[-1]
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]


class ImportanceBars(QWidget):
    """Horizontal bars, one per searched parameter (:meth:`set_importances`)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.widget = pg.PlotWidget(background=None)
        self.plot = self.widget.getPlotItem()
        self.plot.setTitle("Parameter importance")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.hideAxis("left")
        style_plot(self.plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.widget)
        self.importances: dict[str, float] = {}
        self._items: list[object] = []
        self.note = pg.TextItem("", color=colors()["text"], anchor=(0.5, 0.5))
        self.plot.addItem(self.note)
        self.set_importances({})

    def set_importances(self, importances: dict[str, float]) -> None:
        self.importances = dict(importances)
        for item in self._items:
            self.plot.removeItem(item)
        self._items.clear()
        names = list(self.importances)[::-1]  # the largest at the top
        if not names:
            self.note.setText("Shown when the study is read\n(3 complete trials or more)")
            self.note.setPos(0.5, 0.5)
            self.plot.setXRange(0, 1)
            self.plot.setYRange(0, 1)
            return
        self.note.setText("")
        values = [self.importances[n] for n in names]
        bars = pg.BarGraphItem(
            x0=0, y=list(range(len(names))), height=0.45, width=values, brush=BAR_COLOR, pen=None
        )
        self.plot.addItem(bars)
        self._items.append(bars)
        for i, (name, v) in enumerate(zip(names, values, strict=True)):
            label = pg.TextItem(f"{short_name(name)}  {v:.2f}", color=colors()["text"],
                                anchor=(0, 1))  # fmt: skip
            label.setPos(0, i + 0.22)  # above its bar, left-aligned
            self.plot.addItem(label)
            self._items.append(label)
        self.plot.setXRange(0, 1, padding=0.02)
        self.plot.setYRange(-0.4, len(names) - 0.1, padding=0)
        self.plot.setLabel("bottom", "share of the metric's variance", color=colors()["text"])
