"""Blocks on the canvas: which are drawn how, and where (the folding of collapsed rows).

:class:`BlockLayer` keeps the block items of :mod:`gui.canvas.block_items` (a
:class:`~gui.canvas.block_items.BlockFrame` per expanded block, a
:class:`~gui.canvas.block_items.BlockCard` per collapsed one) in step with
``graph.blocks``: the scene calls :meth:`BlockLayer.refresh` after every block event and
after layers move. It hides the members of collapsed blocks and moves the ends of the
wires that enter or leave them onto their block's card.

**Layout.** Collapsing never moves a layer in the project. The canvas *displays* the
graph with each collapsed block's vertical span folded to one row (:class:`Fold`):
whatever lies below a collapsed block is drawn higher by the height the block's layers
took, so an imported ResNet-50 with collapsed stages reads as a short column of stage
cards. Positions in the file stay the members' own; the scene converts between the
two (``GraphScene.model_pos`` / ``display_pos``) where a gesture writes a position.
A collapsed card sits on its block's main column (the median of its layers' x) at
its first row.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QGraphicsItem

from engine.model.blocks import owners, parents
from engine.model.graph import Graph
from gui.canvas.block_items import FRAME_PAD, TITLE_H, BlockCard, BlockFrame, card_rect


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
        own = owners(blocks) if blocks else {}
        for node_id, item in scene._nodes.items():
            node = graph.nodes.get(node_id)
            if node is None:
                continue
            if item.owner_block != own.get(node_id):
                item.owner_block = own.get(node_id)
                item.update()
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
                    else self.cards[child].mapRectToScene(card_rect())
                    if child in self.cards
                    else None
                )
                if child_rect is not None:
                    rect = rect.united(child_rect)
            for n in block.nodes:
                item = scene._nodes.get(n)
                if n not in inner and item is not None:
                    rect = rect.united(item.mapRectToScene(card_rect()))
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
