"""The items that draw blocks: the frame of an expanded block, the card of a collapsed one.

A block (:class:`engine.model.blocks.Block`) is drawn in one of two ways:

- **expanded**: a :class:`BlockFrame`, a rounded frame around its member cards with a
  title bar (``▾ name``); nested blocks' frames sit inside their parents';
- **collapsed**: a :class:`BlockCard`, one card in a stacked-card look with the name,
  its inputs and outputs, the output shape of its last layer and the sum of its
  layers' parameters (``▸`` expands it). Its member cards are hidden; wires entering
  or leaving the block attach to the card, wires wholly inside are hidden.

:class:`gui.canvas.blocks.BlockLayer` creates, places and updates them.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from gui.canvas.detail import fitted_font, meaningful_id
from gui.canvas.items import font, format_params
from gui.canvas.theme import (
    LIGHT,
    NODE_HEIGHT,
    NODE_RADIUS,
    NODE_WIDTH,
    PORT_HIT_RADIUS,
    PORT_RADIUS,
    Theme,
)

#: Z values: frames just above wires (-1: their faint fill tints the wires inside,
#: and wire labels never cover a title) and behind cards (1), inner frames above
#: outer ones; a collapsed block's card among the cards.
Z_FRAME, Z_CARD = -0.9, 1.0
#: Frame padding around its contents, and the title bar's height above them.
FRAME_PAD, TITLE_H = 6.0, 20.0
#: A collapsed card: the layer card's size (the stacked sheets peek out below right).
CARD_W, CARD_H = NODE_WIDTH, NODE_HEIGHT
STACK = 4.0
#: Below this level of detail a collapsed card shows only its name (large) and its
#: output shape and parameter count (as layer cards switch to fewer, larger texts).
MEDIUM_LOD = 0.75
#: Colour of blocks (frames and cards): a calm indigo.
BLOCK_COLOUR = QColor("#6366f1")


def _theme(item: QGraphicsItem) -> Theme:
    scene = item.scene()
    return getattr(scene, "theme", LIGHT) if scene is not None else LIGHT


class BlockFrame(QGraphicsItem):
    """An expanded block: a rounded frame behind its layers with a title bar.

    The title bar (``▾ name``) takes clicks: the arrow collapses the block, a
    double-click on the name renames it; the rest of the frame lets clicks through to
    the canvas (rubber band, cards).
    """

    def __init__(self, block_id: str) -> None:
        super().__init__()
        self.block_id = block_id
        self.name = block_id
        self.depth = 0
        self.rect = QRectF()
        self.setZValue(Z_FRAME)
        self.setAcceptHoverEvents(False)
        # paint only what is exposed: a stage's frame can be thousands of pixels tall
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)

    def set_frame(self, name: str, rect: QRectF, depth: int) -> None:
        if (name, rect, depth) == (self.name, self.rect, self.depth):
            return
        self.prepareGeometryChange()
        self.name, self.rect, self.depth = name, QRectF(rect), depth
        self.setZValue(Z_FRAME + depth * 0.01)
        self.setToolTip(
            f"<b>{_html(name)}</b> (block '{self.block_id}')<br>"
            "Click ▾ to collapse; double-click the name to rename; right-click for more"
        )
        self.update()

    def title_rect(self) -> QRectF:
        return QRectF(self.rect.left(), self.rect.top(), self.rect.width(), TITLE_H)

    def toggle_rect(self) -> QRectF:
        return QRectF(self.rect.left() + 2, self.rect.top(), TITLE_H, TITLE_H)

    def boundingRect(self) -> QRectF:
        return self.rect.adjusted(-2, -2, 2, 2)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRect(self.title_rect())
        return path

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        theme = _theme(self)
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        fill = QColor(BLOCK_COLOUR)
        fill.setAlpha(22 if theme.dark else 14)
        border = QColor(BLOCK_COLOUR)
        border.setAlpha(150)
        pen = QPen(border, max(1.2, 1.0 / max(lod, 0.1)))
        exposed = option.exposedRect
        radius = NODE_RADIUS + 3
        if self.rect.contains(exposed.adjusted(-radius, -radius, radius, radius)):
            painter.fillRect(exposed, fill)  # the inside of a large frame: no edges here
        elif exposed.contains(self.rect) or self.rect.height() < 4 * exposed.height():
            painter.setPen(pen)
            painter.setBrush(fill)
            painter.drawRoundedRect(self.rect, radius, radius)
        else:  # a tall frame's visible part (an antialiased giant path is slow to fill)
            painter.fillRect(self.rect.intersected(exposed), fill)
            painter.setPen(pen)
            r = self.rect
            for a, b in (
                (r.topLeft(), r.bottomLeft()),
                (r.topRight(), r.bottomRight()),
                (r.topLeft(), r.topRight()),
                (r.bottomLeft(), r.bottomRight()),
            ):
                painter.drawLine(a, b)
        if lod < 0.25 or not self.title_rect().intersects(exposed):
            return
        bar = _mix(BLOCK_COLOUR, theme.background, 0.2 if theme.dark else 0.14)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(bar)
        title = self.title_rect()
        path = QPainterPath()
        path.addRoundedRect(title, NODE_RADIUS + 3, NODE_RADIUS + 3)
        painter.drawPath(path)
        text_font = QFont(font("tag"))
        text_font.setPixelSize(max(12, min(round(12 / max(lod, 0.05)), int(TITLE_H) - 5)))
        painter.setFont(text_font)
        painter.setPen(BLOCK_COLOUR.lighter(150) if theme.dark else BLOCK_COLOUR.darker(150))
        painter.drawText(self.toggle_rect(), Qt.AlignmentFlag.AlignCenter, "▾")
        text_rect = title.adjusted(TITLE_H + 4, 0, -6, 0)
        fm = QFontMetricsF(text_font)
        painter.drawText(
            text_rect,
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            fm.elidedText(self.name, Qt.TextElideMode.ElideRight, text_rect.width()),
        )


class BlockCard(QGraphicsItem):
    """A collapsed block: one card (a small stack of sheets) standing for its layers.

    It plays a layer card's part for the wires (``output_pos``, ``input_pos``,
    ``edges``, ``shape_text``), so wires entering and leaving the block end on it.

    Attributes:
        block_id: The block's id.
        name: What the card shows.
        layers: How many layers it holds.
        inputs, outputs: How many wires enter and leave it.
        shape_text: The output shape of its last layer ("7×7×2048"), or "".
        params: The sum of its layers' parameters (None before shapes are known).
    """

    def __init__(self, block_id: str) -> None:
        super().__init__()
        self.block_id = block_id
        self.node_id = block_id  # what wires and find read
        self.name = block_id
        self.layers = 0
        self.inputs = self.outputs = 0
        self.shape_text = ""
        self.params: int | None = None
        self.edges: set[Any] = set()
        self.state_ports: dict[int, Any] = {}
        self.quiet = False
        #: During a wire drag: ``"accept"`` (the block would take the wire), ``"target"``
        #: (it goes here on release), ``"refuse"``, or ``""`` (as a port's state).
        self.state = ""
        #: Where :meth:`BlockLayer.refresh` put the card (a drag moves it away from here;
        #: on release the block's layers move by as much).
        self.home = QPointF()
        self.setFlags(
            QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
            | QGraphicsItem.GraphicsItemFlag.ItemIsMovable
            | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges
        )
        self.setZValue(Z_CARD)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def set_contents(
        self,
        name: str,
        layers: int,
        inputs: int,
        outputs: int,
        shape_text: str,
        params: int | None,
    ) -> None:
        texts = (name, layers, inputs, outputs, shape_text, params)
        if texts == (
            self.name,
            self.layers,
            self.inputs,
            self.outputs,
            self.shape_text,
            self.params,
        ):
            return
        self.name, self.layers, self.inputs, self.outputs = name, layers, inputs, outputs
        self.shape_text, self.params = shape_text, params
        lines = [
            f"<b>{_html(name)}</b> — block of {layers} layers (collapsed)",
            f"{self.ports_text()}",
        ]
        if shape_text:
            lines.append(f"output {shape_text}")
        if params:
            lines.append(format_params(params))
        lines.append("Double-click or click ▸ to expand; right-click for more")
        self.setToolTip("<br>".join(lines))
        self.update()

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.update()

    def ports_text(self) -> str:
        return (
            f"{self.inputs} input{'s' if self.inputs != 1 else ''} → "
            f"{self.outputs} output{'s' if self.outputs != 1 else ''}"
        )

    def output_pos(self, port: int = 0) -> QPointF:
        return self.mapToScene(QPointF(0, CARD_H / 2))

    def input_pos(self, port: int = 0) -> QPointF:
        return self.mapToScene(QPointF(0, -CARD_H / 2))

    def on_output(self, scene_pos: QPointF) -> bool:
        """Whether ``scene_pos`` is on the card's output dot (a press there starts a
        wire from the block's exit instead of moving the card)."""
        d = self.mapFromScene(scene_pos) - QPointF(0, CARD_H / 2)
        return d.x() ** 2 + d.y() ** 2 <= PORT_HIT_RADIUS**2

    def toggle_rect(self) -> QRectF:
        return QRectF(-CARD_W / 2 + 6, -CARD_H / 2 + 5, 18, 18)

    def boundingRect(self) -> QRectF:
        return QRectF(
            -CARD_W / 2 - 4, -CARD_H / 2 - 4, CARD_W + STACK * 2 + 8, CARD_H + 8 + STACK * 2
        )

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(card_rect(), NODE_RADIUS, NODE_RADIUS)
        path.addEllipse(QPointF(0, CARD_H / 2), PORT_HIT_RADIUS, PORT_HIT_RADIUS)  # output dot
        return path.simplified()

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        theme = _theme(self)
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        card = card_rect()
        sheet = QColor(BLOCK_COLOUR)
        sheet.setAlpha(90)
        painter.setPen(QPen(sheet, 1))
        painter.setBrush(theme.node_fill)
        for k in (2, 1):  # the stack: two sheets peeking out below right
            painter.drawRoundedRect(card.translated(STACK * k, STACK * k), NODE_RADIUS, NODE_RADIUS)
        selected = self.isSelected()
        if selected:
            halo = QColor(theme.accent)
            halo.setAlpha(70)
            painter.setPen(QPen(halo, 5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(card, NODE_RADIUS, NODE_RADIUS)
        if self.state:  # a wire drag: would the block take it?
            ring = theme.refuse if self.state == "refuse" else theme.accept
            painter.setPen(QPen(ring, 3.0 if self.state != "accept" else 2.0))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(card.adjusted(-3, -3, 3, 3), NODE_RADIUS + 2, NODE_RADIUS + 2)
        painter.setPen(QPen(theme.accent if selected else BLOCK_COLOUR, 1.6))
        tint = QColor(BLOCK_COLOUR)
        tint.setAlpha(40 if theme.dark else 24)
        painter.setBrush(theme.node_fill)
        painter.drawRoundedRect(card, NODE_RADIUS, NODE_RADIUS)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(tint)
        painter.drawRoundedRect(card.adjusted(1, 1, -1, -1), NODE_RADIUS, NODE_RADIUS)
        # the output dot, like a layer's: drag from it to wire the block's exit onward
        painter.setPen(QPen(theme.port_border, 1.2))
        painter.setBrush(theme.port_connected if self.outputs else theme.port_fill)
        painter.drawEllipse(QPointF(0, CARD_H / 2), PORT_RADIUS, PORT_RADIUS)
        text = theme.text
        dim = theme.text_dim
        left, right = card.left() + 10, card.right() - 10
        flags = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
        if lod < MEDIUM_LOD:  # zoomed out: the name, large, then shape and parameters
            scale = 1.0 / max(lod, 0.05)
            width = right - left
            size = min(12.0 * scale, CARD_H * 0.42)
            name_font = fitted_font(font("title"), self.name, size, min(9.5 * scale, size), width)
            fm = QFontMetricsF(name_font)
            small = QFont(font("small"))
            small.setPixelSize(max(round(min(9.5 * scale, CARD_H * 0.3)), 1))
            sfm = QFontMetricsF(small)
            second = " · ".join(t for t in (self.shape_text, short_count(self.params)) if t)
            if self.shape_text and sfm.horizontalAdvance(second) > width:
                second = self.shape_text  # the count gives way to the shape
            two = bool(second) and fm.height() + sfm.height() <= CARD_H - 4
            top = card.top() + (CARD_H - fm.height() - (sfm.height() if two else 0)) / 2
            painter.setFont(name_font)
            painter.setPen(text)
            painter.drawText(
                QRectF(left, top, width, fm.height()),
                flags,
                short_name(self.name, fm, width),
            )
            if two:
                painter.setFont(small)
                painter.setPen(dim)
                painter.drawText(
                    QRectF(left, top + fm.height(), width, sfm.height()),
                    flags,
                    sfm.elidedText(second, Qt.TextElideMode.ElideRight, width),
                )
            return
        top = card.top() + 5
        painter.setFont(font("title"))
        painter.setPen(BLOCK_COLOUR.lighter(150) if theme.dark else BLOCK_COLOUR.darker(140))
        painter.drawText(self.toggle_rect(), Qt.AlignmentFlag.AlignCenter, "▸")
        painter.setPen(text)
        title_left = self.toggle_rect().right() + 4
        tfm = QFontMetricsF(font("title"))
        painter.drawText(
            QRectF(title_left, top, right - title_left, 18),
            flags,
            short_name(self.name, tfm, right - title_left),
        )
        painter.setFont(font("small"))
        painter.setPen(dim)
        sfm = QFontMetricsF(font("small"))
        line = f"{self.layers} layers · {self.inputs} in · {self.outputs} out"
        painter.drawText(
            QRectF(left, top + 21, right - left, 16),
            flags,
            sfm.elidedText(line, Qt.TextElideMode.ElideRight, right - left),
        )
        params = format_params(self.params)
        if self.shape_text:
            painter.setPen(theme.text_shape)
            shape_w = right - left - sfm.horizontalAdvance(params) - 8
            painter.drawText(
                QRectF(left, top + 40, right - left, 16),
                flags,
                sfm.elidedText(self.shape_text, Qt.TextElideMode.ElideRight, shape_w),
            )
        if params:
            painter.setPen(dim)
            painter.drawText(
                QRectF(left, top + 40, right - left, 16),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                params,
            )

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged:
            for edge in self.edges:
                edge.adjust(route=not self.quiet)
        return super().itemChange(change, value)


def card_rect() -> QRectF:
    """A collapsed card's rectangle in its own coordinates (centred on its position)."""
    return QRectF(-CARD_W / 2, -CARD_H / 2, CARD_W, CARD_H)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def block_of_item(item: QGraphicsItem | None) -> str | None:
    """The block id of a frame or card at ``item`` (or one of its parents), else None."""
    while item is not None:
        if isinstance(item, (BlockFrame, BlockCard)):
            return item.block_id
        item = item.parentItem()
    return None


def _mix(colour: QColor, background: QColor, amount: float) -> QColor:
    """``colour`` laid over ``background`` at opacity ``amount`` (an opaque result)."""
    return QColor.fromRgbF(
        colour.redF() * amount + background.redF() * (1 - amount),
        colour.greenF() * amount + background.greenF() * (1 - amount),
        colour.blueF() * amount + background.blueF() * (1 - amount),
    )


def short_count(count: int | None) -> str:
    """``220032`` -> ``"220K params"``, ``1234567`` -> ``"1.23M params"`` (zoomed-out cards)."""
    if not count:
        return ""
    if count >= 1_000_000:
        return f"{count / 1_000_000:.3g}M params"
    if count >= 10_000:
        return f"{count / 1000:.0f}K params"
    return format_params(count)


def short_name(name: str, fm: QFontMetricsF, width: float) -> str:
    """``name`` fitted to ``width``: an id-like name keeps its end (``conv2_block3`` ->
    ``…block3``, what tells sibling blocks apart, as :func:`meaningful_id` does for
    layers); a name with spaces is cut at its end."""
    if fm.horizontalAdvance(name) <= width:
        return name
    if " " not in name and "_" in name:
        return meaningful_id(name, lambda t: fm.horizontalAdvance(t) <= width)
    return fm.elidedText(name, Qt.TextElideMode.ElideRight, width)
