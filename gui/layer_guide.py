"""Help > Layer guide: what every catalog layer does, by category."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from engine.catalog.specs import CATEGORIES
from engine.catalog.table import CATALOG
from gui import theme


def layer_guide_html() -> str:
    """Every catalog layer's doc, grouped by category."""
    parts = ["<h2>Layer guide</h2>"]
    order = list(CATEGORIES) + [s.category for s in CATALOG.values()]
    for category in dict.fromkeys(order):
        specs = [s for s in CATALOG.values() if s.category == category]
        if not specs:
            continue
        color = theme.category_color(category).name()
        parts.append(f"<h3 style='color:{color}'>{html.escape(category)}</h3><dl>")
        for spec in specs:
            params = ", ".join(p.name for p in spec.params)
            parts.append(
                f"<dt><b>{html.escape(spec.type)}</b></dt>"
                f"<dd>{html.escape(spec.doc)}"
                + (f"<br><small>Parameters: {html.escape(params)}</small>" if params else "")
                + "</dd>"
            )
        parts.append("</dl>")
    return "\n".join(parts)


class LayerGuide(QDialog):
    """Help > Layer guide: what every layer does, by category."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Layer guide — LayerLab")
        self.resize(640, 720)
        self.browser = QTextBrowser()
        self.browser.setHtml(layer_guide_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
