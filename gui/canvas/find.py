"""Find layers on the canvas (Ctrl+F): the search itself and the find bar over the view.

:func:`find_nodes` matches a query, case-insensitively, against each layer's id, type,
card caption and parameters written ``name=value`` (so ``units=64``, ``relu`` or
``same`` all work) and returns the matching ids from the top of the drawing down.
:class:`FindBar` is a small bar in the top right corner of a
:class:`~gui.canvas.view.GraphView` (not a dialog: the canvas stays usable): it shows
"3 of 17", steps with Enter/F3 and Shift+Enter/Shift+F3, highlights every match,
selects and centres the current one, and closes with Esc.
"""

from __future__ import annotations

import json
from typing import Any

import shiboken6
from PySide6.QtCore import QEvent, QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeyEvent, QKeySequence, QPainter, QPen, QShortcut
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QStyleOptionGraphicsItem,
    QToolButton,
    QWidget,
)

from engine.catalog.checks import caption
from engine.model.graph import Graph, Node
from gui.canvas.theme import NODE_HEIGHT, NODE_RADIUS, NODE_WIDTH

#: Stepping to a match zooms in to at least this, so the found card can be read.
FIND_ZOOM = 0.8


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value) + " " + str(value)  # "true True", "null None"
    if isinstance(value, (list, tuple)):
        parts = [_value_text(v) for v in value]
        # [3, 3] is found as "[3, 3]", "3, 3", "3,3" and "3x3"
        return f"[{', '.join(parts)}] {','.join(parts)} {'x'.join(parts)}"
    if isinstance(value, dict):
        return " ".join(f"{k}={_value_text(v)}" for k, v in value.items())
    return str(value)


def search_text(node: Node) -> str:
    """What a query is matched against (lower case): id, type, caption, ``name=value``."""
    parts = [node.id, node.type]
    try:
        parts.append(caption(node.type, node.params))
    except Exception:  # a caption must never break a search
        pass
    for name, value in node.params.items():
        parts.append(f"{name}={_value_text(value)}")
    return "\n".join(parts).lower()


def find_nodes(graph: Graph, query: str) -> list[str]:
    """Ids of the nodes matching ``query`` (case-insensitive substring), top to bottom.

    Several words must all match (``conv relu`` finds convolutions with relu); an
    empty query finds nothing. Order: by position, top to bottom then left to right,
    so stepping through matches walks down the drawing.
    """
    words = query.lower().split()
    if not words:
        return []
    found = []
    for node in graph.nodes.values():
        text = search_text(node)
        if all(w in text for w in words):
            found.append(node)
    found.sort(key=lambda n: (n.position[1], n.position[0]))
    return [n.id for n in found]


class FindHighlight(QGraphicsItem):
    """One item that rings every match (amber) and the current one (stronger), drawn
    under the cards: a single item whatever the number of matches."""

    PAD = 7.0

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(0.5)  # above wires (-1), below cards (1)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._rects: list[QRectF] = []
        self._current = -1
        self._bounds = QRectF()

    def set_matches(self, rects: list[QRectF], current: int) -> None:
        self.prepareGeometryChange()
        pad = self.PAD + 4
        self._rects = [r.adjusted(-self.PAD, -self.PAD, self.PAD, self.PAD) for r in rects]
        self._current = current
        bounds = QRectF()
        for r in rects:
            bounds = bounds.united(r)
        self._bounds = bounds.adjusted(-pad, -pad, pad, pad) if rects else QRectF()
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        exposed = option.exposedRect
        soft = QColor("#f59e0b")
        soft.setAlpha(110)
        fill = QColor("#fde68a")
        fill.setAlpha(90)
        lod = max(option.levelOfDetailFromTransform(painter.worldTransform()), 0.05)
        radius = NODE_RADIUS + self.PAD
        for i, rect in enumerate(self._rects):
            if not rect.intersects(exposed):
                continue
            current = i == self._current
            colour = QColor("#d97706") if current else soft
            # at least 2-3 screen pixels wide at any zoom
            painter.setPen(QPen(colour, (3.5 if current else 2.2) / min(lod, 1.0)))
            painter.setBrush(fill)
            painter.drawRoundedRect(rect, radius, radius)


class FindBar(QFrame):
    """The find bar: a query field, "3 of 17", previous/next and close buttons.

    Signals:
        current_changed(str): The id of the match now selected ("" when none).
    """

    current_changed = Signal(str)

    def __init__(self, view: QGraphicsView) -> None:
        """``view``: the :class:`~gui.canvas.view.GraphView` the bar sits on."""
        super().__init__(view)
        self.view = view
        self.setObjectName("FindBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.matches: list[str] = []
        self.current = -1
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Find layer: name, type or value (units=64)")
        self.edit.setClearButtonEnabled(True)
        self.edit.setMinimumWidth(260)
        self.edit.installEventFilter(self)
        self.count = QLabel("")
        self.count.setMinimumWidth(64)
        self.count.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.prev_button = self._button(
            "▲", "Previous match (Shift+Enter, Shift+F3)", self.previous
        )
        self.next_button = self._button("▼", "Next match (Enter, F3)", self.next)
        close = self._button("✕", "Close (Esc)", self.close_bar)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 4, 4, 4)
        row.setSpacing(4)
        row.addWidget(self.edit, 1)
        row.addWidget(self.count)
        row.addWidget(self.prev_button)
        row.addWidget(self.next_button)
        row.addWidget(close)
        self.highlight = FindHighlight()
        self._highlight_scene = None
        # typing re-searches after a short pause (a 500-layer search is ~1 ms, but
        # moving the view for every key would jump around)
        self._typing = QTimer(self)
        self._typing.setSingleShot(True)
        self._typing.setInterval(120)
        self._typing.timeout.connect(self._search_and_show)
        self.edit.textChanged.connect(lambda _t: self._typing.start())
        for keys, slot in (("F3", self.next), ("Shift+F3", self.previous)):
            shortcut = QShortcut(QKeySequence(keys), view)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
        view.installEventFilter(self)
        self.hide()

    def _button(self, text: str, tip: str, slot) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(slot)
        return button

    # ------------------------------------------------------------------ public
    def open(self) -> None:
        """Show the bar (or focus it again) with its text selected."""
        self.show()
        self.raise_()
        self._place()
        self.edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.edit.selectAll()
        if self.edit.text():
            self._search_and_show()

    def close_bar(self) -> None:
        """Hide the bar and the highlights; the canvas gets the keyboard back."""
        self._typing.stop()
        self.hide()
        self._set_highlight([], -1)
        self.view.setFocus()

    def set_query(self, text: str) -> None:
        """Search for ``text`` now (what typing does after a pause)."""
        self.edit.setText(text)
        self._typing.stop()
        self._search_and_show()

    def next(self) -> None:
        self._step(1)

    def previous(self) -> None:
        self._step(-1)

    def count_text(self) -> str:
        return self.count.text()

    # ---------------------------------------------------------------- internal
    def _search(self) -> None:
        """Search again, keeping the current match when it still matches."""
        scene = self.view.graph_scene()
        keep = self.matches[self.current] if 0 <= self.current < len(self.matches) else None
        self.matches = find_nodes(scene.project.graph, self.edit.text()) if scene.project else []
        self.current = self.matches.index(keep) if keep in self.matches else -1

    def _search_and_show(self) -> None:
        self._search()
        if self.matches and self.current < 0:
            self.current = 0
        self._show_current()

    def _step(self, delta: int) -> None:
        if not self.isVisible():
            self.open()
            return
        self._typing.stop()
        self._search()  # the graph may have changed since
        if not self.matches:
            self._show_current()
            return
        if self.current < 0:
            self.current = 0 if delta > 0 else len(self.matches) - 1
        else:
            self.current = (self.current + delta) % len(self.matches)
        self._show_current()

    def _show_current(self) -> None:
        scene = self.view.graph_scene()
        n = len(self.matches)
        if not self.edit.text().strip():
            self.count.setText("")
        elif not n:
            self.count.setText("No match")
        else:
            self.count.setText(f"{self.current + 1} of {n}")
        self.prev_button.setEnabled(n > 1)
        self.next_button.setEnabled(n > 1)
        rects = []
        shown: dict[int, int] = {}  # id(item) -> its ring's index
        for node_id in self.matches:
            # a layer inside a collapsed block is found on the block's card (which is
            # selected and ringed); the block stays collapsed: finding changes nothing
            item = scene.shown_item(node_id)
            if item is not None and id(item) not in shown:
                shown[id(item)] = len(rects)
                rects.append(item.mapRectToScene(_card()))
        current = -1
        if 0 <= self.current < n:
            item = scene.shown_item(self.matches[self.current])
            current = shown.get(id(item), -1)
        self._set_highlight(rects, current)
        if 0 <= self.current < n:
            node_id = self.matches[self.current]
            block = scene.blocks.hidden_by.get(node_id)
            if block is not None:
                scene.status_message.emit(
                    f"'{node_id}' is inside collapsed block '{block}' "
                    "(double-click the block to expand it)"
                )
            scene.select_ids([node_id])
            if self.view.zoom() < FIND_ZOOM:
                self.view.set_zoom(FIND_ZOOM)
            self.view.center_on(node_id)
            self.current_changed.emit(node_id)
        else:
            self.current_changed.emit("")

    def _set_highlight(self, rects: list[QRectF], current: int) -> None:
        scene = self.view.graph_scene()
        alive = shiboken6.isValid(self.highlight)  # scene.clear() deletes it
        if not alive or self._highlight_scene is not scene or self.highlight.scene() is not scene:
            if alive and self.highlight.scene() is not None:
                self.highlight.scene().removeItem(self.highlight)
            self.highlight = FindHighlight()
            scene.addItem(self.highlight)
            self._highlight_scene = scene
        self.highlight.set_matches(rects, current)

    def _place(self) -> None:
        self.adjustSize()
        width = min(max(self.sizeHint().width(), 420), self.view.width() - 16)
        self.resize(width, self.sizeHint().height())
        port = self.view.viewport().geometry()  # inside the scroll bars
        self.move(port.right() + 1 - width - 12, port.top() + 8)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.view and event.type() == QEvent.Type.Resize and self.isVisible():
            self._place()
        if watched is self.edit and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            key, shift = event.key(), event.modifiers() & Qt.KeyboardModifier.ShiftModifier
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.previous() if shift else self.next()
                return True
            if key == Qt.Key.Key_Escape:
                self.close_bar()
                return True
        return super().eventFilter(watched, event)


def _card() -> QRectF:
    return QRectF(-NODE_WIDTH / 2, -NODE_HEIGHT / 2, NODE_WIDTH, NODE_HEIGHT)
