"""GraphView: the scrollable, zoomable window onto a :class:`GraphScene`."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent, QMouseEvent, QPainter, QWheelEvent
from PySide6.QtWidgets import QGraphicsView, QWidget

from engine import limits
from gui.canvas.find import FindBar
from gui.canvas.minimap import Minimap
from gui.canvas.scene import GraphScene

#: Mime type of a palette drag; the payload is the layer type name (utf-8).
LAYER_MIME = "application/x-layerlab-layer"
#: Mime type of a saved block dragged from "My blocks"; the payload is its fragment (JSON).
BLOCK_MIME = "application/x-layerlab-block"
MIN_ZOOM, MAX_ZOOM = 0.08, 3.0
#: ``fit()`` never magnifies beyond this (a tiny graph stays at a natural size).
FIT_MAX_ZOOM = 1.2
#: ``fit()`` never zooms out beyond this: the zoomed-out summary cards (id and output
#: shape, see :mod:`gui.canvas.detail`) are still readable and clickable. A graph
#: taller than the window at this zoom shows its top and scrolls vertically.
LEGIBLE_ZOOM = 0.4
ZOOM_STEP = 1.2
#: Dragging within this many pixels of the view's edge scrolls it.
AUTOSCROLL_MARGIN = 24


class GraphView(QGraphicsView):
    """Wheel zoom around the cursor; pan with the middle button, space+drag or scroll bars;
    rubber-band selection; drops of palette layers.

    Signals:
        zoom_changed(float): The new zoom factor (1.0 = 100 %).
    """

    zoom_changed = Signal(float)

    def __init__(self, scene: GraphScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.setRenderHints(
            QPainter.RenderHint.Antialiasing
            | QPainter.RenderHint.TextAntialiasing
            | QPainter.RenderHint.SmoothPixmapTransform
        )
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(True)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self._space = False
        self._pan_from: QPoint | None = None
        # Dragging (a wire, nodes, a rubber band) near an edge scrolls the view.
        self._edge_pos: QPoint | None = None
        self._autoscroll = QTimer(self)
        self._autoscroll.setInterval(30)
        self._autoscroll.timeout.connect(self._auto_scroll_step)
        self.find_bar = FindBar(self)
        self.minimap = Minimap(self)
        self.zoom_changed.connect(lambda _z: self.minimap.place())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.minimap.place()

    def open_find(self) -> None:
        """Show the find bar (Ctrl+F) with the keyboard in its field."""
        self.find_bar.open()

    def graph_scene(self) -> GraphScene:
        return self.scene()

    # -------------------------------------------------------------------- zoom
    def zoom(self) -> float:
        """The current zoom factor (1.0 = 100 %)."""
        return self.transform().m11()

    def set_zoom(self, factor: float, anchor: QPoint | None = None) -> None:
        """Zoom to ``factor`` keeping the scene point under ``anchor`` (viewport
        coordinates; default: the centre) where it is."""
        factor = max(MIN_ZOOM, min(MAX_ZOOM, factor))
        ratio = factor / self.zoom()
        if abs(ratio - 1.0) < 1e-9:
            return
        if anchor is None:
            anchor = self.viewport().rect().center()
        before = self.mapToScene(anchor)
        old = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.scale(ratio, ratio)
        self._scroll_by_scene(before - self.mapToScene(anchor))
        self.setTransformationAnchor(old)
        self.zoom_changed.emit(self.zoom())

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom() * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom() / ZOOM_STEP)

    def fit(self, min_zoom: float = LEGIBLE_ZOOM) -> None:
        """Show every node (without magnifying a small graph beyond 120 %).

        Args:
            min_zoom: Never zoom out further than this (default :data:`LEGIBLE_ZOOM`:
                the summary cards stay readable). When the whole graph does not fit
                at that zoom, the view shows its top (where the inputs are) at
                ``min_zoom`` and the rest scrolls (the minimap shows where).
        """
        scene = self.graph_scene()
        scene.update_scene_rect()
        rect = scene.items_rect().adjusted(-40, -40, 40, 40)
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom() > FIT_MAX_ZOOM:
            self.set_zoom(FIT_MAX_ZOOM)
        if self.zoom() < min_zoom:
            self.set_zoom(min_zoom)
            visible = self.visible_scene_rect()
            x = rect.center().x()
            if rect.width() > visible.width():  # wide too: start at the left
                x = rect.left() + visible.width() / 2
            self.centerOn(QPointF(x, rect.top() + visible.height() / 2))
        else:
            self.centerOn(rect.center())
        self.zoom_changed.emit(self.zoom())

    def center_on(self, node_id: str) -> None:
        """Scroll so that node ``node_id`` is in the middle of the view."""
        item = self.graph_scene().shown_item(node_id)  # or its collapsed block's card
        if item is not None:
            self.centerOn(item)

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y()
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier or delta == 0:
            super().wheelEvent(event)  # horizontal / shift-scroll pans
            return
        self.set_zoom(self.zoom() * (1.0015**delta), event.position().toPoint())
        event.accept()

    def _scroll_by_scene(self, delta: QPointF) -> None:
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + round(delta.x() * self.zoom()))
        v.setValue(v.value() + round(delta.y() * self.zoom()))

    # --------------------------------------------------------------------- pan
    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        if event.key() == Qt.Key.Key_Space:
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            if self._pan_from is None:
                self.viewport().unsetCursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pan = event.button() == Qt.MouseButton.MiddleButton or (
            event.button() == Qt.MouseButton.LeftButton and self._space
        )
        if pan:
            self._pan_from = event.position().toPoint()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            pos = event.position().toPoint()
            d = pos - self._pan_from
            self._pan_from = pos
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()
            h.setValue(h.value() - d.x())
            v.setValue(v.value() - d.y())
            event.accept()
            return
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._edge_pos = event.position().toPoint()
            if self._edge_speed() != (0, 0):
                self._autoscroll.start()
        super().mouseMoveEvent(event)

    def _edge_speed(self) -> tuple[int, int]:
        """Scroll pixels per tick for the last drag position (0 away from the edges)."""
        if self._edge_pos is None:
            return (0, 0)
        rect = self.viewport().rect()
        margin = AUTOSCROLL_MARGIN

        def speed(pos: int, low: int, high: int) -> int:
            if pos < low + margin:
                return -max(2, (low + margin - pos) // 2)
            if pos > high - margin:
                return max(2, (pos - high + margin) // 2)
            return 0

        return (
            speed(self._edge_pos.x(), rect.left(), rect.right()),
            speed(self._edge_pos.y(), rect.top(), rect.bottom()),
        )

    def _auto_scroll_step(self) -> None:
        dx, dy = self._edge_speed()
        if (dx, dy) == (0, 0) or not QGuiApplication.mouseButtons() & Qt.MouseButton.LeftButton:
            self._autoscroll.stop()
            return
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + dx)
        v.setValue(v.value() + dy)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._autoscroll.stop()
        self._edge_pos = None
        if self._pan_from is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._pan_from = None
            if self._space:
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            else:
                self.viewport().unsetCursor()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def focusOutEvent(self, event) -> None:
        self._space = False
        super().focusOutEvent(event)

    # ------------------------------------------------------------------- drops
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(LAYER_MIME) or event.mimeData().hasFormat(BLOCK_MIME):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasFormat(LAYER_MIME) or event.mimeData().hasFormat(BLOCK_MIME):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:
        mime = event.mimeData()
        if mime.hasFormat(BLOCK_MIME):
            self._drop_block(event)
            return
        if not mime.hasFormat(LAYER_MIME):
            super().dropEvent(event)
            return
        layer_type = bytes(mime.data(LAYER_MIME).data()).decode("utf-8", "replace").strip()
        pos = self.mapToScene(event.position().toPoint())
        if self.graph_scene().add_layer(layer_type, pos) is not None:
            event.acceptProposedAction()
            self.setFocus()
        else:
            event.ignore()

    def _drop_block(self, event) -> None:
        """A saved block dropped from "My blocks": placed where it was dropped."""
        scene = self.graph_scene()
        try:
            fragment = limits.loads(bytes(event.mimeData().data(BLOCK_MIME).data()).decode("utf-8"))
        except (ValueError, UnicodeDecodeError, limits.LimitExceeded) as exc:
            scene.status_message.emit(f"Cannot place the dropped block: {exc}")
            event.ignore()
            return
        if not isinstance(fragment, dict):
            scene.status_message.emit("Cannot place the dropped block: it is not a saved block")
            event.ignore()
            return
        pos = self.mapToScene(event.position().toPoint())
        if scene.place_block(fragment, pos):
            event.acceptProposedAction()
            self.setFocus()
        else:
            event.ignore()

    def visible_scene_rect(self) -> QRectF:
        return self.mapToScene(self.viewport().rect()).boundingRect()
