"""The minimap: an overview of the whole graph in the canvas's bottom right corner.

It draws each card as a small rectangle in its type's colour (not the cards
themselves: a 500-layer graph costs a few hundred ``fillRect`` calls) and the part
the view shows as a frame. Clicking moves the view there; dragging the frame pans.
The card rectangles are re-read from the scene at most every
:data:`REFRESH_MS` after the scene changes; scrolling and zooming only move the frame.
It hides itself while the whole graph fits in the view.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QGraphicsView, QWidget

from gui.canvas.block_items import BLOCK_COLOUR
from gui.canvas.theme import category_colour

#: Largest and smallest size of the minimap (pixels; it takes the graph's proportions
#: within these) and its distance from the view's edges.
WIDTH, HEIGHT, SMALLEST, MARGIN = 200, 220, 56, 12
#: The card rectangles are re-read this long after the last scene change.
REFRESH_MS = 150


class Minimap(QWidget):
    """The overview of ``view``'s scene (a child widget of the view).

    Attributes:
        cards: The card rectangles drawn, in scene coordinates, with their colours.
    """

    def __init__(self, view: QGraphicsView) -> None:
        super().__init__(view)
        self.view = view
        self.setObjectName("Minimap")
        self.resize(WIDTH, HEIGHT)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Overview: click to go there, drag the frame to pan")
        self.cards: list[tuple[QRectF, QColor]] = []
        self._bounds = QRectF()
        self._dragging = False
        self._grab = QPointF()
        self._refresh = QTimer(self)
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(REFRESH_MS)
        self._refresh.timeout.connect(self.refresh)
        self._scene = None
        self._connect_scene()
        view.horizontalScrollBar().valueChanged.connect(self._view_moved)
        view.verticalScrollBar().valueChanged.connect(self._view_moved)
        self.refresh()

    # -------------------------------------------------------------- geometry
    def _connect_scene(self) -> None:
        scene = self.view.scene()
        if scene is self._scene:
            return
        if self._scene is not None:
            self._scene.changed.disconnect(self._scene_changed)
        self._scene = scene
        if scene is not None:
            scene.changed.connect(self._scene_changed)

    def _scene_changed(self, _regions=None) -> None:
        if not self._refresh.isActive():
            self._refresh.start()

    def _view_moved(self, _value: int = 0) -> None:
        self.place()
        self.update()

    def refresh(self) -> None:
        """Re-read the cards from the scene (what the debounce timer calls)."""
        self._connect_scene()
        scene = self.view.scene()
        self.cards = []
        bounds = QRectF()
        for item in scene.node_items() if scene is not None else []:
            if not item.isVisible():  # inside a collapsed block: its card stands for it
                continue
            rect = item.sceneBoundingRect()
            self.cards.append((rect, category_colour(item.category)))
            bounds = bounds.united(rect)
        blocks = getattr(scene, "blocks", None)
        for card in blocks.cards.values() if blocks is not None else []:
            rect = card.sceneBoundingRect()
            self.cards.append((rect, BLOCK_COLOUR))
            bounds = bounds.united(rect)
        self._bounds = bounds.adjusted(-60, -60, 60, 60) if self.cards else QRectF()
        if self.cards:  # the graph's proportions: a tall column gets a narrow map
            aspect = self._bounds.width() / max(self._bounds.height(), 1.0)
            if aspect * HEIGHT <= WIDTH:
                self.resize(max(SMALLEST, round(aspect * (HEIGHT - 12)) + 12), HEIGHT)
            else:
                self.resize(WIDTH, max(SMALLEST, round((WIDTH - 12) / aspect) + 12))
        self.place()
        self.update()

    def place(self) -> None:
        """Keep to the bottom right corner; hide while every card is in view."""
        port = self.view.viewport().geometry()  # inside the scroll bars
        self.move(
            port.right() + 1 - self.width() - MARGIN, port.bottom() + 1 - self.height() - MARGIN
        )
        visible = self.visible_rect()
        cards = self._bounds.adjusted(60, 60, -60, -60)
        show = bool(self.cards) and not visible.contains(cards)
        if show != self.isVisible():
            self.setVisible(show)
        if show:
            self.raise_()

    def _transform(self) -> tuple[float, QPointF]:
        """(scale, offset): minimap point = scene point * scale + offset."""
        area = QRectF(self.rect()).adjusted(6, 6, -6, -6)
        bounds = self._bounds if not self._bounds.isNull() else QRectF(0, 0, 1, 1)
        scale = min(area.width() / bounds.width(), area.height() / bounds.height())
        used_w, used_h = bounds.width() * scale, bounds.height() * scale
        offset = QPointF(
            area.left() + (area.width() - used_w) / 2 - bounds.left() * scale,
            area.top() + (area.height() - used_h) / 2 - bounds.top() * scale,
        )
        return scale, offset

    def to_minimap(self, rect: QRectF) -> QRectF:
        scale, offset = self._transform()
        return QRectF(
            rect.left() * scale + offset.x(),
            rect.top() * scale + offset.y(),
            rect.width() * scale,
            rect.height() * scale,
        )

    def to_scene(self, point: QPointF) -> QPointF:
        scale, offset = self._transform()
        return QPointF((point.x() - offset.x()) / scale, (point.y() - offset.y()) / scale)

    def visible_rect(self) -> QRectF:
        view = self.view
        return view.mapToScene(view.viewport().rect()).boundingRect()

    # --------------------------------------------------------------- drawing
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        theme = getattr(self.view.scene(), "theme", None)
        dark = bool(theme and theme.dark)
        back = QColor(30, 32, 38, 225) if dark else QColor(255, 255, 255, 230)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(120, 120, 130, 160), 1))
        painter.setBrush(back)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 6, 6)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(Qt.PenStyle.NoPen)
        for rect, colour in self.cards:
            r = self.to_minimap(rect)
            if r.width() < 2:  # never thinner than a line
                r.setWidth(2)
            if r.height() < 1.5:
                r.setHeight(1.5)
            painter.setBrush(colour)
            painter.drawRect(r)
        frame = self.to_minimap(self.visible_rect()).intersected(QRectF(self.rect()))
        accent = QColor("#2563eb")
        fill = QColor(accent)
        fill.setAlpha(40)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(accent, 1.5))
        painter.setBrush(fill)
        painter.drawRect(frame.adjusted(0.5, 0.5, -0.5, -0.5))
        painter.end()

    # ----------------------------------------------------------------- mouse
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        pos = event.position()
        frame = self.to_minimap(self.visible_rect())
        self._dragging = True
        # grabbing the frame keeps the point under the mouse; elsewhere jumps there
        self._grab = pos - frame.center() if frame.contains(pos) else QPointF()
        self._go(pos)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._dragging:
            self._go(event.position())
            event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._dragging = False
        event.accept()

    def _go(self, pos: QPointF) -> None:
        self.view.centerOn(self.to_scene(pos - self._grab))
        self.update()
