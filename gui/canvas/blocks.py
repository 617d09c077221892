"""Blocks on the canvas: the frame of an expanded block and the card of a collapsed one.

A block (:class:`engine.model.blocks.Block`) is drawn in one of two ways:

- **expanded**: a :class:`BlockFrame`, a rounded frame behind its member cards with a
  title bar (``▾ name``); nested blocks' frames sit inside their parents';
- **collapsed**: a :class:`BlockCard`, one card in a stacked-card look with the name,
  its inputs and outputs, the output shape of its last layer and the sum of its
  layers' parameters (``▸`` expands it). Its member cards are hidden; wires entering
  or leaving the block attach to the card, wires wholly inside are hidden.

**Layout.** Collapsing never moves a layer in the project. The canvas *displays* the
graph with each collapsed block's vertical span folded to one row (:class:`Fold`):
whatever lies below a collapsed block is drawn higher by the height the block's layers
took, so an imported ResNet-50 with collapsed stages reads as a short column of stage
cards. Positions in the file stay the members' own; the scene converts between the
two (``GraphScene.model_pos`` / ``display_pos``) where a gesture writes a position.

:class:`BlockLayer` keeps these items in step with ``graph.blocks``: the scene calls
:meth:`BlockLayer.refresh` after every block event and after nodes move.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from engine.model.blocks import parents
from engine.model.graph import Graph
from gui.canvas.detail import fitted_font, meaningful_id
from gui.canvas.items import font, format_params
from gui.canvas.theme import LIGHT, NODE_HEIGHT, NODE_RADIUS, NODE_WIDTH, Theme

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


def default_block_id(graph: Graph, ids: list[str]) -> str:
    """A free block id for layers ``ids``: their common ``_``-separated id prefix
    (``conv2_block1_1_conv``, ``conv2_block1_2_relu`` -> ``conv2_block1``), else
    ``block_1``, ``block_2``, ...; never a layer's or another block's id."""
    parts = [i.split("_") for i in ids]
    common: list[str] = []
    for group in zip(*parts):
        if len(set(group)) != 1:
            break
        common.append(group[0])
    if len(ids) > 1 and len(common) == min(len(p) for p in parts):
        common = common[:-1]  # one id is the prefix of all: keep it a group name
    base = "_".join(common)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", base or "-"):
        base = ""

    def taken(name: str) -> bool:
        return name in graph.nodes or name in graph.blocks

    if base and not taken(base):
        return base
    stem = base or "block"
    n = 1
    while taken(f"{stem}_{n}"):
        n += 1
    return f"{stem}_{n}"


@dataclass
class Fold:
    """The display-only folding of collapsed blocks' vertical spans.

    ``spans`` are disjoint, sorted ``(top, bottom)`` model y ranges (card centres);
    each is drawn as a single row at ``top``. :meth:`y` maps a model y to the drawn y,
    :meth:`model_y` back (a drawn y at a folded row maps to the row's top).
    """

    spans: list[tuple[float, float]] = field(default_factory=list)
    _tops: list[float] = field(default_factory=list)
    _shift: list[float] = field(default_factory=list)  # folded height above span i

    @classmethod
    def of(cls, spans: list[tuple[float, float]]) -> Fold:
        merged: list[list[float]] = []
        for top, bottom in sorted(spans):
            if merged and top <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], bottom)
            else:
                merged.append([top, bottom])
        fold = cls([(a, b) for a, b in merged])
        total = 0.0
        for a, b in fold.spans:
            fold._tops.append(a)
            fold._shift.append(total)
            total += b - a
        return fold

    def y(self, y: float) -> float:
        i = bisect.bisect_right(self._tops, y) - 1
        if i < 0:
            return y
        a, b = self.spans[i]
        if y <= b:
            return a - self._shift[i]  # inside a folded span: its row
        return y - self._shift[i] - (b - a)

    def model_y(self, y: float) -> float:
        for i in range(len(self.spans) - 1, -1, -1):
            a, b = self.spans[i]
            row = a - self._shift[i]
            if y > row:
                return y + self._shift[i] + (b - a)
            if y == row:
                return a
        return y


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

    def ports_text(self) -> str:
        return (
            f"{self.inputs} input{'s' if self.inputs != 1 else ''} → "
            f"{self.outputs} output{'s' if self.outputs != 1 else ''}"
        )

    def output_pos(self, port: int = 0) -> QPointF:
        return self.mapToScene(QPointF(0, CARD_H / 2))

    def input_pos(self, port: int = 0) -> QPointF:
        return self.mapToScene(QPointF(0, -CARD_H / 2))

    def toggle_rect(self) -> QRectF:
        return QRectF(-CARD_W / 2 + 6, -CARD_H / 2 + 5, 18, 18)

    def boundingRect(self) -> QRectF:
        return QRectF(
            -CARD_W / 2 - 4, -CARD_H / 2 - 4, CARD_W + STACK * 2 + 8, CARD_H + 8 + STACK * 2
        )

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(_card(), NODE_RADIUS, NODE_RADIUS)
        return path

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        theme = _theme(self)
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        card = _card()
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
        painter.setPen(QPen(theme.accent if selected else BLOCK_COLOUR, 1.6))
        tint = QColor(BLOCK_COLOUR)
        tint.setAlpha(40 if theme.dark else 24)
        painter.setBrush(theme.node_fill)
        painter.drawRoundedRect(card, NODE_RADIUS, NODE_RADIUS)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(tint)
        painter.drawRoundedRect(card.adjusted(1, 1, -1, -1), NODE_RADIUS, NODE_RADIUS)
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


class BlockLayer:
    """The block items of one scene, rebuilt from ``graph.blocks`` by :meth:`refresh`.

    Args:
        scene: The :class:`~gui.canvas.scene.GraphScene`.
        counts: ``counts() -> {node id: parameter count}`` from the last analysis.
    """

    def __init__(self, scene: Any, counts: Callable[[], dict[str, int]]) -> None:
        self.scene = scene
        self.counts = counts
        self.frames: dict[str, BlockFrame] = {}
        self.cards: dict[str, BlockCard] = {}
        #: Cards of blocks not shown collapsed now (hidden, kept for the next collapse).
        self._spare: dict[str, BlockCard] = {}
        #: node id -> the collapsed block card standing for it (hidden members only)
        self.hidden_by: dict[str, str] = {}
        self.fold = Fold()

    # ------------------------------------------------------------------ lookups
    def display_pos(self, x: float, y: float) -> tuple[float, float]:
        return (x, self.fold.y(y))

    def model_pos(self, x: float, y: float) -> tuple[float, float]:
        return (x, self.fold.model_y(y))

    def representative(self, node_id: str) -> QGraphicsItem | None:
        """What stands for a node on the canvas: its card, or its collapsed block's."""
        bid = self.hidden_by.get(node_id)
        if bid is not None:
            return self.cards.get(bid)
        return self.scene.node_item(node_id)

    def clear(self) -> None:
        self.frames.clear()
        self.cards.clear()
        self._spare.clear()
        self.hidden_by.clear()
        self.fold = Fold()

    # ------------------------------------------------------------------ refresh
    def refresh(self) -> None:
        """Bring frames, cards, hidden members, folded positions and wire ends in step
        with the graph's blocks (O(layers + wires + block members))."""
        scene = self.scene
        graph: Graph = scene.project.graph
        blocks = graph.blocks
        up = parents(blocks) if blocks else {}

        def collapsed_above(bid: str) -> bool:
            p = up.get(bid)
            while p is not None:
                if blocks[p].collapsed:
                    return True
                p = up.get(p)
            return False

        shown = {bid for bid in blocks if not collapsed_above(bid)}
        folded = [bid for bid in shown if blocks[bid].collapsed]
        hidden_by: dict[str, str] = {}
        spans = []
        for bid in folded:
            ys = [graph.nodes[n].position[1] for n in blocks[bid].nodes if n in graph.nodes]
            if ys:
                spans.append((min(ys), max(ys)))
            for n in blocks[bid].nodes:
                hidden_by[n] = bid
        self.hidden_by = hidden_by
        self.fold = Fold.of(spans)

        # layer cards: shown or hidden, at their drawn positions
        for node_id, item in scene._nodes.items():
            node = graph.nodes.get(node_id)
            if node is None:
                continue
            visible = node_id not in hidden_by
            if item.isVisible() != visible:
                item.setVisible(visible)
            if not visible:
                continue  # placed when its block expands
            x, y = self.display_pos(*node.position)
            if item.x() != x or item.y() != y:
                item.defer = True  # the scene re-draws every shown wire afterwards
                item.setPos(x, y)
                item.defer = False

        # collapsed cards
        for bid in [b for b in self.cards if b not in folded]:
            card = self.cards.pop(bid)
            card.edges.clear()
            if bid in blocks:  # kept hidden, its drawing cached, for the next collapse
                card.setSelected(False)
                card.setVisible(False)
                self._spare[bid] = card
            else:
                scene.removeItem(card)
        for bid in [b for b in self._spare if b not in blocks]:
            scene.removeItem(self._spare.pop(bid))
        counts = self.counts()
        for bid in folded:
            block = blocks[bid]
            card = self.cards.get(bid)
            if card is None:
                card = self._spare.pop(bid, None)
                if card is None:
                    card = BlockCard(bid)
                    scene.addItem(card)
                card.setVisible(True)
                self.cards[bid] = card
            members = [n for n in block.nodes if n in graph.nodes]
            xs = sorted(graph.nodes[n].position[0] for n in members)
            ys = [graph.nodes[n].position[1] for n in members]
            x = xs[len(xs) // 2] if xs else 0.0  # the main column (side branches aside)
            y = self.fold.y(min(ys)) if ys else 0.0
            card.home = QPointF(x, y)
            if card.x() != x or card.y() != y:
                card.quiet = True
                card.setPos(x, y)
                card.quiet = False

        # wires: re-attach ends to what stands for each layer
        entering: dict[str, set] = {bid: set() for bid in folded}
        leaving: dict[str, set] = {bid: set() for bid in folded}
        last_out: dict[str, str] = {}
        for edge, edge_item in scene._edges.items():
            sb, tb = hidden_by.get(edge.source), hidden_by.get(edge.target)
            source = self.cards[sb] if sb else scene._nodes.get(edge.source)
            target = self.cards[tb] if tb else scene._nodes.get(edge.target)
            if source is None or target is None:
                continue
            inside = sb is not None and sb == tb
            if sb and not inside:
                leaving[sb].add((edge.source, edge.source_port))
                last_out[sb] = edge.source
            if tb and not inside:
                entering[tb].add((edge.source, edge.source_port))
            if edge_item.source is not source or edge_item.target is not target:
                edge_item.source.edges.discard(edge_item)
                edge_item.target.edges.discard(edge_item)
                edge_item.source, edge_item.target = source, target
                source.edges.add(edge_item)
                target.edges.add(edge_item)
            if edge_item.isVisible() == inside:
                edge_item.setVisible(not inside)

        for bid in folded:
            block = blocks[bid]
            members = [n for n in block.nodes if n in graph.nodes]
            out = last_out.get(bid) or (members[-1] if members else "")
            out_item = scene._nodes.get(out)
            total = [counts.get(n) for n in members]
            params = sum(c for c in total if c) if any(c is not None for c in total) else None
            self.cards[bid].set_contents(
                block.name,
                len(members),
                len(entering[bid]),
                len(leaving[bid]),
                out_item.shape_text if out_item is not None else "",
                params,
            )

        # frames of expanded blocks, inner ones first
        expanded = sorted(
            (bid for bid in shown if not blocks[bid].collapsed), key=lambda b: len(blocks[b].nodes)
        )
        for bid in [b for b in self.frames if b not in expanded]:
            scene.removeItem(self.frames.pop(bid))
        depth: dict[str, int] = {}
        for bid in blocks:
            d, p = 0, up.get(bid)
            while p is not None:
                d, p = d + 1, up.get(p)
            depth[bid] = d
        rects: dict[str, QRectF] = {}
        children: dict[str, list[str]] = {}
        for bid in shown:
            if up.get(bid) is not None:
                children.setdefault(up[bid], []).append(bid)
        for bid in expanded:
            block = blocks[bid]
            inner = set()
            rect = QRectF()
            for child in children.get(bid, []):
                inner.update(blocks[child].nodes)
                child_rect = (
                    rects.get(child)
                    if child in rects
                    else self.cards[child].mapRectToScene(_card())
                    if child in self.cards
                    else None
                )
                if child_rect is not None:
                    rect = rect.united(child_rect)
            for n in block.nodes:
                item = scene._nodes.get(n)
                if n not in inner and item is not None:
                    rect = rect.united(item.mapRectToScene(_card()))
            if rect.isNull():
                continue
            rect = rect.adjusted(-FRAME_PAD, -FRAME_PAD - TITLE_H, FRAME_PAD, FRAME_PAD)
            rects[bid] = rect
            frame = self.frames.get(bid)
            if frame is None:
                frame = BlockFrame(bid)
                self.frames[bid] = frame
                scene.addItem(frame)
            frame.set_frame(block.name, rect, depth[bid])

    def items_rect(self) -> QRectF:
        """Bounding rectangle of the collapsed cards and frames."""
        rect = QRectF()
        for card in self.cards.values():
            rect = rect.united(card.sceneBoundingRect())
        for frame in self.frames.values():
            rect = rect.united(frame.rect)
        return rect


def _card() -> QRectF:
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
