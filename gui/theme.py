"""Light and dark themes, category colours and the small category icons.

The whole app uses the Fusion style with a QPalette per theme and a short
stylesheet for the few things a palette cannot say (dock titles, tabs, the
palette tree's group rows). Category colours are shared by the palette and
anything else that wants to tint a layer by its catalog category.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QIcon,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QApplication, QComboBox, QProxyStyle, QStyle, QWidget

from gui.canvas.theme import category_colour

LIGHT = {
    "window": "#f5f6f8",
    "base": "#ffffff",
    "alt": "#f0f2f5",
    "text": "#1f2937",
    "muted": "#6b7280",
    "button": "#ffffff",
    "highlight": "#2563eb",
    "border": "#d7dbe2",
    "error": "#dc2626",
    "warning": "#d97706",
    "code_bg": "#fbfbfc",
    "disabled": "#a3a9b3",
    "plot_axis": "#6b7280",
    "indicator": "#9aa1ad",
}
DARK = {
    "window": "#1e2126",
    "base": "#25292f",
    "alt": "#2b3037",
    "text": "#e5e7eb",
    "muted": "#9ca3af",
    "button": "#2f343b",
    "highlight": "#3b82f6",
    "border": "#3a4048",
    "error": "#f87171",
    "warning": "#fbbf24",
    "code_bg": "#1b1e22",
    "disabled": "#5c636d",
    "plot_axis": "#9ca3af",
    "indicator": "#8b93a0",
}

_current = LIGHT


def colors() -> dict[str, str]:
    """The current theme's named colours (``text``, ``muted``, ``error``, ...)."""
    return _current


def is_dark() -> bool:
    return _current is DARK


def category_color(category: str) -> QColor:
    """A stable colour for a catalog category (the same the canvas paints with)."""
    return category_colour(category)


def category_icon(category: str, size: int = 18) -> QIcon:
    """A rounded square in the category colour with a small glyph hinting at it."""
    pix = QPixmap(size * 2, size * 2)
    pix.setDevicePixelRatio(2.0)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    color = category_color(category)
    rect = QRectF(1, 1, size - 2, size - 2)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QBrush(color))
    p.drawRoundedRect(rect, 4, 4)
    pen = QPen(QColor("white"), 1.4)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    _draw_glyph(p, category.lower(), rect)
    p.end()
    return QIcon(pix)


def _draw_glyph(p: QPainter, key: str, r: QRectF) -> None:
    cx, cy, s = r.center().x(), r.center().y(), r.width()
    a, b = s * 0.25, s * 0.75
    if key.startswith("conv"):
        for i in range(3):
            x = r.left() + a + i * (b - a) / 2
            p.drawLine(QPointF(x, r.top() + a), QPointF(x, r.top() + b))
            y = r.top() + a + i * (b - a) / 2
            p.drawLine(QPointF(r.left() + a, y), QPointF(r.left() + b, y))
    elif key.startswith("pool"):
        p.drawRect(QRectF(r.left() + a, r.top() + a, (b - a), (b - a)))
        p.setBrush(QColor("white"))
        p.drawRect(QRectF(r.left() + a, r.top() + a, (b - a) / 2, (b - a) / 2))
    elif key.startswith(("recur", "rnn")):
        p.drawArc(QRectF(cx - s * 0.25, cy - s * 0.25, s * 0.5, s * 0.5), 30 * 16, 300 * 16)
        p.drawLine(QPointF(cx + s * 0.22, cy - s * 0.13), QPointF(cx + s * 0.26, cy + s * 0.02))
    elif key.startswith("merg"):
        p.drawLine(QPointF(r.left() + a, r.top() + a), QPointF(cx, cy))
        p.drawLine(QPointF(r.left() + a, r.top() + b), QPointF(cx, cy))
        p.drawLine(QPointF(cx, cy), QPointF(r.left() + b, cy))
    elif key.startswith("norm"):
        path = QPainterPath(QPointF(r.left() + a * 0.8, r.top() + b))
        path.cubicTo(
            QPointF(cx - s * 0.1, r.top() + b),
            QPointF(cx - s * 0.12, r.top() + a),
            QPointF(cx, r.top() + a),
        )
        path.cubicTo(
            QPointF(cx + s * 0.12, r.top() + a),
            QPointF(cx + s * 0.1, r.top() + b),
            QPointF(r.left() + s - a * 0.8, r.top() + b),
        )
        p.drawPath(path)
    elif key.startswith(("regul", "dropout")):
        for i in range(3):
            for j in range(3):
                if (i + j) % 2 == 0:
                    p.drawPoint(
                        QPointF(r.left() + a + i * (b - a) / 2, r.top() + a + j * (b - a) / 2)
                    )
    elif key.startswith("resh"):
        p.drawRect(QRectF(r.left() + a, cy - s * 0.08, b - a, s * 0.16))
        p.drawLine(QPointF(cx, r.top() + a), QPointF(cx, cy - s * 0.1))
    elif key.startswith("input"):
        p.drawLine(QPointF(r.left() + a, cy), QPointF(r.left() + b, cy))
        p.drawLine(QPointF(r.left() + b - s * 0.15, cy - s * 0.15), QPointF(r.left() + b, cy))
        p.drawLine(QPointF(r.left() + b - s * 0.15, cy + s * 0.15), QPointF(r.left() + b, cy))
    elif key.startswith("activ"):
        p.drawLine(QPointF(r.left() + a, r.top() + b), QPointF(cx, r.top() + b))
        p.drawLine(QPointF(cx, r.top() + b), QPointF(r.left() + b, r.top() + a))
    else:
        for i in range(3):
            y = r.top() + a + i * (b - a) / 2
            p.drawEllipse(QPointF(cx, y), s * 0.06, s * 0.06)


def severity_icon(severity: str, size: int = 14) -> QIcon:
    """A red circle with '!' for errors, an amber triangle for warnings, a green tick for ok."""
    pix = QPixmap(size * 2, size * 2)
    pix.setDevicePixelRatio(2.0)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    if severity == "ok":
        p.setBrush(QColor("#16a34a"))
        p.drawEllipse(QRectF(1, 1, size - 2, size - 2))
        pen = QPen(QColor("white"), 1.6)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        p.setPen(pen)
        p.drawPolyline(
            [
                QPointF(size * 0.28, size * 0.52),
                QPointF(size * 0.44, size * 0.68),
                QPointF(size * 0.72, size * 0.36),
            ]
        )
        p.end()
        return QIcon(pix)
    if severity == "error":
        p.setBrush(QColor("#dc2626"))
        p.drawEllipse(QRectF(1, 1, size - 2, size - 2))
    else:
        p.setBrush(QColor("#f59e0b"))
        path = QPainterPath(QPointF(size / 2, 1))
        path.lineTo(size - 1, size - 1.5)
        path.lineTo(1, size - 1.5)
        path.closeSubpath()
        p.drawPath(path)
    p.setPen(QPen(QColor("white"), 1.6))
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(size * 0.7))
    p.setFont(font)
    p.drawText(
        QRectF(0, 1 if severity != "error" else 0, size, size), Qt.AlignmentFlag.AlignCenter, "!"
    )
    p.end()
    return QIcon(pix)


def _palette(c: dict[str, str]) -> QPalette:
    pal = QPalette()
    role = QPalette.ColorRole
    pal.setColor(role.Window, QColor(c["window"]))
    pal.setColor(role.WindowText, QColor(c["text"]))
    pal.setColor(role.Base, QColor(c["base"]))
    pal.setColor(role.AlternateBase, QColor(c["alt"]))
    pal.setColor(role.Text, QColor(c["text"]))
    pal.setColor(role.Button, QColor(c["button"]))
    pal.setColor(role.ButtonText, QColor(c["text"]))
    pal.setColor(role.ToolTipBase, QColor(c["base"]))
    pal.setColor(role.ToolTipText, QColor(c["text"]))
    pal.setColor(role.PlaceholderText, QColor(c["muted"]))
    pal.setColor(role.Highlight, QColor(c["highlight"]))
    pal.setColor(role.HighlightedText, QColor("#ffffff"))
    pal.setColor(role.Link, QColor(c["highlight"]))
    pal.setColor(role.Mid, QColor(c["border"]))
    window = QColor(c["window"])
    if c is DARK:  # Fusion shades bevels and frames from these; the light defaults glare
        pal.setColor(role.Light, QColor(c["alt"]).lighter(130))
        pal.setColor(role.Midlight, QColor(c["alt"]))
        pal.setColor(role.Dark, window.darker(130))
        pal.setColor(role.Shadow, window.darker(200))
    disabled = QColor(c["disabled"])
    for r in (role.Text, role.WindowText, role.ButtonText, role.PlaceholderText):
        pal.setColor(QPalette.ColorGroup.Disabled, r, disabled)
    pal.setColor(QPalette.ColorGroup.Disabled, role.Button, window)  # flatter than enabled
    pal.setColor(QPalette.ColorGroup.Disabled, role.Base, window)
    return pal


class ThemedStyle(QProxyStyle):
    """Fusion, with check box and radio indicators outlined so they show on dark panels
    (Fusion outlines them in a darker shade of the window colour: invisible there)."""

    def drawPrimitive(self, element, option, painter, widget=None) -> None:
        super().drawPrimitive(element, option, painter, widget)
        pe = QStyle.PrimitiveElement
        if element not in (pe.PE_IndicatorCheckBox, pe.PE_IndicatorRadioButton):
            return
        if not is_dark():
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = QColor(_current["indicator"])
        if not option.state & QStyle.StateFlag.State_Enabled:
            colour = QColor(_current["disabled"])
        painter.setPen(QPen(colour, 1.2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        rect = QRectF(option.rect).adjusted(0.6, 0.6, -0.6, -0.6)
        if element == pe.PE_IndicatorRadioButton:
            painter.drawEllipse(rect)
        else:
            painter.drawRoundedRect(rect, 2, 2)
        painter.restore()


def _stylesheet(c: dict[str, str]) -> str:
    return f"""
QMainWindow::separator {{ background: {c["border"]}; width: 1px; height: 1px; }}
QDockWidget {{ font-weight: 600; }}
QDockWidget::title {{ background: {c["window"]}; padding: 6px 8px;
    border-bottom: 1px solid {c["border"]}; }}
QToolBar {{ background: {c["window"]}; border: none; border-bottom: 1px solid {c["border"]};
    spacing: 2px; padding: 3px 6px; }}
QToolButton {{ padding: 4px 8px; border-radius: 5px; }}
QToolButton:hover {{ background: {c["alt"]}; }}
QToolButton:checked {{ background: {c["alt"]}; color: {c["highlight"]};
    border-bottom: 2px solid {c["highlight"]}; border-radius: 0; }}
QTabWidget::pane {{ border: none; border-top: 1px solid {c["border"]}; }}
QTabBar::tab {{ padding: 5px 14px; border: none; color: {c["muted"]}; }}
QTabBar::tab:selected {{ color: {c["text"]}; border-bottom: 2px solid {c["highlight"]}; }}
QPlainTextEdit {{ border: none; background: {c["code_bg"]}; }}
QTreeWidget, QTableWidget, QListWidget {{ border: none; background: {c["base"]}; }}
QHeaderView::section {{ background: {c["window"]}; border: none;
    border-bottom: 1px solid {c["border"]}; padding: 4px 6px; color: {c["muted"]}; }}
QStatusBar {{ color: {c["muted"]}; border-top: 1px solid {c["border"]}; }}
QLabel#ErrorText {{ color: {c["error"]}; font-size: 11px; }}
QLabel#Muted {{ color: {c["muted"]}; }}
QLabel#InspectorTitle {{ font-size: 15px; font-weight: 600; }}
QLabel#InspectorDoc {{ color: {c["muted"]}; }}
QLabel#InspectorShape {{ color: {c["highlight"]}; font-family: monospace; }}
QToolButton#PanelButton {{ border: 1px solid {c["border"]}; background: {c["button"]};
    padding: 3px 9px; }}
QToolButton#PanelButton:hover {{ background: {c["alt"]}; }}
QToolButton#PanelButton:disabled {{ color: {c["disabled"]}; background: transparent;
    border: 1px dashed {c["border"]}; }}
QPushButton:disabled, QToolButton:disabled, QCheckBox:disabled, QLabel:disabled {{
    color: {c["disabled"]}; }}
QLineEdit[invalid="true"], QAbstractSpinBox[invalid="true"], QComboBox[invalid="true"] {{
    border: 1px solid {c["error"]}; border-radius: 3px; }}
"""


def apply_theme(app: QApplication, dark: bool = False) -> None:
    """Switch the whole application to the light or dark theme."""
    global _current
    _current = DARK if dark else LIGHT
    if not isinstance(app.style(), ThemedStyle):
        app.setStyle(ThemedStyle("Fusion"))
    app.setPalette(_palette(_current))
    app.setStyleSheet(_stylesheet(_current))


def narrow_combos(widget: QWidget) -> None:
    """Let every combo box in ``widget`` shrink with its panel instead of forcing a scroll bar."""
    for combo in widget.findChildren(QComboBox):
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(8)
