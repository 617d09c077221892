"""The items that draw a graph: :class:`NodeItem`, :class:`PortItem`, :class:`EdgeItem`.

Items hold only what they display (texts derived from the model and from the
last analysis); the model itself stays in :class:`engine.model.graph.Graph`. Every
item reads its colours from ``scene().theme`` when it paints.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
)
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from engine.catalog.checks import caption
from engine.catalog.table import CATALOG
from engine.model.graph import Edge, Node, input_port_names, output_ports
from gui.canvas.detail import (
    SUMMARY_LOD,
    fitted_font,
    meaningful_id,
    paint_summary,
    simple_path,
)
from gui.canvas.theme import (
    LIGHT,
    NODE_HEIGHT,
    NODE_RADIUS,
    NODE_WIDTH,
    PORT_HIT_RADIUS,
    PORT_RADIUS,
    STRIPE_WIDTH,
    Theme,
    category_colour,
)

#: Z values: wires under nodes, the wire being dragged above everything.
Z_EDGE, Z_NODE, Z_DRAFT = -1.0, 1.0, 10.0

_FONTS: dict[str, QFont] = {}


def font(kind: str) -> QFont:
    """Shared fonts (created on first use, after the QApplication exists)."""
    if not _FONTS:
        title = QFont()
        title.setPixelSize(13)
        title.setWeight(QFont.Weight.DemiBold)
        small = QFont()
        small.setPixelSize(11)
        tag = QFont()
        tag.setPixelSize(10)
        tag.setWeight(QFont.Weight.DemiBold)
        label = QFont()
        label.setPixelSize(10)
        badge = QFont()
        badge.setPixelSize(11)
        badge.setWeight(QFont.Weight.Bold)
        _FONTS.update(title=title, small=small, tag=tag, label=label, badge=badge)
    return _FONTS[kind]


def _theme(item: QGraphicsItem) -> Theme:
    scene = item.scene()
    return getattr(scene, "theme", LIGHT) if scene is not None else LIGHT


def format_shape(shape: Any) -> str:
    """A tensor shape without its batch axis: ``(None, 8, 8, 6)`` -> ``"8×8×6"``.

    Lists of shapes (layers with several outputs) are joined with ``" | "``;
    unknown sizes show as ``?``.
    """
    if shape is None:
        return ""
    if (
        isinstance(shape, (list, tuple))
        and shape
        and all(isinstance(s, (list, tuple)) for s in shape)
    ):
        return " | ".join(format_shape(s) for s in shape)
    dims = list(shape)[1:] if isinstance(shape, (list, tuple)) else [shape]
    if not dims:
        return "scalar"
    return "×".join("?" if d is None else str(d) for d in dims)


def format_params(count: int | None) -> str:
    """``156`` -> ``"156 params"``; large counts are shortened (``"1.25M params"``)."""
    if not count:
        return ""
    if count >= 1_000_000:
        return f"{count / 1_000_000:.3g}M params"
    return f"{count:,} param{'s' if count != 1 else ''}"


class PortItem(QGraphicsItem):
    """An input (top edge) or the output (bottom edge) of a node.

    Attributes:
        kind: ``"in"`` or ``"out"``.
        port: The port number: an input's, or an output's (0 the layer's output; a
            recurrent layer's states 1.. when it returns them).
        label: A short name drawn beside the port (``"h"``, ``"c"`` for states), or "".
        connected: A wire is attached.
        state: ``""``, ``"accept"`` (would take the wire being dragged),
            ``"target"`` (the wire would go here on release) or ``"refuse"``.
    """

    def __init__(self, node: NodeItem, kind: str, port: int = 0) -> None:
        super().__init__(node)
        self.kind, self.port = kind, port
        self.label = ""
        self.connected = False
        self.state = ""
        self._hover = False
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setZValue(1.0)

    @property
    def node_id(self) -> str:
        return self.parentItem().node_id

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.update()

    def set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self.update()

    def set_label(self, label: str) -> None:
        if label != self.label:
            self.prepareGeometryChange()
            self.label = label
            self.update()

    def boundingRect(self) -> QRectF:
        r = PORT_HIT_RADIUS
        rect = QRectF(-r, -r, 2 * r, 2 * r)
        return rect.united(self._label_rect()) if self.label else rect

    def _label_rect(self) -> QRectF:
        """Outside the card, beside the port: below an output, above an input."""
        y = PORT_RADIUS + 1 if self.kind == "out" else -PORT_RADIUS - 14
        return QRectF(PORT_RADIUS - 1, y, 30, 13)

    def shape(self) -> QPainterPath:
        r = PORT_HIT_RADIUS
        path = QPainterPath()
        path.addEllipse(QRectF(-r, -r, 2 * r, 2 * r))
        return path

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if option.levelOfDetailFromTransform(painter.worldTransform()) < 0.3:
            return  # too small to see or to hit; the wires show the connections
        theme = _theme(self)
        r = PORT_RADIUS
        fill = theme.port_connected if self.connected else theme.port_fill
        border = theme.port_border
        if self.state == "accept":
            r, fill, border = r + 1.5, theme.accept.lighter(170), theme.accept
        elif self.state == "target":
            r, fill, border = r + 3, theme.accept, theme.accept.darker(130)
        elif self.state == "refuse":
            r, fill, border = r + 3, theme.refuse, theme.refuse.darker(130)
        elif self._hover:
            r, border = r + 1.5, theme.accent
        painter.setPen(QPen(border, 1.5))
        painter.setBrush(fill)
        painter.drawEllipse(QPointF(0, 0), r, r)
        if self.label and option.levelOfDetailFromTransform(painter.worldTransform()) >= 0.45:
            painter.setFont(font("label"))
            painter.setPen(theme.text_dim)
            painter.drawText(
                self._label_rect(),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                self.label,
            )

    def hoverEnterEvent(self, event) -> None:
        self._hover = True
        self.update()

    def hoverLeaveEvent(self, event) -> None:
        self._hover = False
        self.update()


class ProblemBadge(QGraphicsItem):
    """The red (error) or amber (warning) dot at a node's top-right corner."""

    RADIUS = 8.0

    def __init__(self, node: NodeItem) -> None:
        super().__init__(node)
        self.severity = "error"
        self.setPos(NODE_WIDTH / 2 - 3, -NODE_HEIGHT / 2 + 3)
        self.setZValue(2.0)
        self.setVisible(False)

    def boundingRect(self) -> QRectF:
        r = self.RADIUS + 1
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        theme = _theme(self)
        colour = theme.error if self.severity == "error" else theme.warning
        painter.setPen(QPen(theme.node_fill, 1.5))
        painter.setBrush(colour)
        painter.drawEllipse(QPointF(0, 0), self.RADIUS, self.RADIUS)
        painter.setPen(QColor("white"))
        painter.setFont(font("badge"))
        painter.drawText(self.boundingRect(), Qt.AlignmentFlag.AlignCenter, "!")


class NodeItem(QGraphicsItem):
    """One layer: a rounded card with a category stripe, texts and ports.

    The card is centred on the item's position, which is the node's position
    in the project. Texts shown (attributes, for views and tests):

    Attributes:
        node_id: The node id (bold title).
        node_type: The layer type (coloured tag).
        caption: ``catalog.caption`` of the params ("32 filters 3x3 relu").
        shape_text: Output shape from the last analysis ("8×8×6"), or "".
        params_text: Parameter count from the last analysis ("156 params"), or "".
        problems: ``[(severity, message), ...]`` from the last analysis.
        frozen: True for a frozen layer (``node.trainable`` False): the card is drawn
            in muted colours with a lock in its top right corner.
        in_ports: Input port number -> :class:`PortItem`.
        out_port: The output :class:`PortItem` (output 0), or None for layers that have none.
        state_ports: Output port number (1..) -> :class:`PortItem`: the states of a
            recurrent layer with ``return_state``, labelled ``h``/``c``; the output and
            its states then spread along the bottom edge, as inputs do along the top.
        edges: The :class:`EdgeItem` objects attached to this node.
    """

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node_id = node.id
        self.node_type = node.type
        self.category = ""
        self.caption = ""
        self.frozen = False
        self.shape_text = ""
        self.params_text = ""
        #: The innermost block holding the layer (set by the block layer), or None: a
        #: zoomed-out card drops its id's prefix first (gui/canvas/detail.py).
        self.owner_block: str | None = None
        self.problems: list[tuple[str, str]] = []
        self.in_ports: dict[int, PortItem] = {}
        self.out_port: PortItem | None = PortItem(self, "out")
        self.out_port.setPos(0, NODE_HEIGHT / 2)
        self.out_port.setToolTip("Output\nDrag to another layer's input to connect")
        self.state_ports: dict[int, PortItem] = {}
        self._input_labels: dict[int, str] = {}
        self.edges: set[EdgeItem] = set()
        self.badge = ProblemBadge(self)
        #: True while the scene moves the item for the model (wires re-route later).
        self.quiet = False
        #: True while the scene moves many items at once and re-draws all wires after.
        self.defer = False
        self._texts: tuple[str, str, str, str, str] = ("", "", "", "", "")
        f = (
            QGraphicsItem.GraphicsItemFlag.ItemIsMovable
            | QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
            | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges
        )
        self.setFlags(f)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setZValue(Z_NODE)
        self.setPos(*node.position)
        self.refresh(node)

    # ------------------------------------------------------------- contents
    def refresh(self, node: Node) -> None:
        """Re-read id, type and caption from the model node."""
        self.node_id, self.node_type = node.id, node.type
        spec = CATALOG.get(node.type)
        self.category = spec.category if spec else ""
        self.frozen = not node.trainable
        try:
            self.caption = caption(node.type, node.params)
        except Exception:  # a caption must never break drawing
            self.caption = ""
        self._layout_texts()
        self._input_labels = input_port_names(node)
        for p, item in self.in_ports.items():
            item.set_label(self._input_labels.get(p, ""))
        if self.set_output_ports(output_ports(node)):
            for edge_item in self.edges:
                if edge_item.source is self:
                    edge_item.adjust()

    def set_analysis(
        self, shape_text: str, params_text: str, problems: list[tuple[str, str]]
    ) -> None:
        """Show the latest shape inference result and problems of this node."""
        if (shape_text, params_text, list(problems)) == (
            self.shape_text,
            self.params_text,
            self.problems,
        ):
            return  # unchanged: a 500-layer graph re-validates without 500 repaints
        self.shape_text, self.params_text = shape_text, params_text
        self.problems = list(problems)
        severity = (
            "error" if any(s == "error" for s, _ in problems) else "warning" if problems else ""
        )
        self.badge.severity = severity or "error"
        self.badge.setVisible(bool(problems))
        self.badge.setToolTip("\n".join(f"{s.capitalize()}: {m}" for s, m in problems))
        self.badge.update()
        self._layout_texts()

    @property
    def severity(self) -> str:
        """``"error"``, ``"warning"`` or ``""``: the worst problem shown."""
        if any(s == "error" for s, _ in self.problems):
            return "error"
        return "warning" if self.problems else ""

    def _layout_texts(self) -> None:
        """Elide texts to the card width once (not on every paint) and set the tooltip."""
        inner = NODE_WIDTH - STRIPE_WIDTH - 22
        lock = LOCK_SIZE + 6 if self.frozen else 0
        title = QFontMetricsF(font("title")).elidedText(
            self.node_id, Qt.TextElideMode.ElideRight, inner - 6 - lock
        )
        tag_fm = QFontMetricsF(font("tag"))
        tag = tag_fm.elidedText(self.node_type, Qt.TextElideMode.ElideMiddle, inner - 10)
        small = QFontMetricsF(font("small"))
        caption_w = inner - (tag_fm.horizontalAdvance(tag) + 10) - 6
        caption = small.elidedText(self.caption, Qt.TextElideMode.ElideRight, caption_w)
        if caption_w < small.horizontalAdvance("…") * 3:
            caption = ""
        params_w = small.horizontalAdvance(self.params_text)
        shape = small.elidedText(self.shape_text, Qt.TextElideMode.ElideRight, inner - params_w - 8)
        self._texts = (title, tag, caption, shape, self.params_text)
        lines = [f"<b>{self.node_id}</b> — {self.node_type}"]
        if self.caption:
            lines.append(self.caption)
        if self.frozen:
            lines.append("Frozen: training leaves its weights as they are")
        if self.shape_text:
            lines.append(f"output {self.shape_text}")
        if self.params_text:
            lines.append(self.params_text)
        for severity, message in self.problems:
            colour = "#dc2626" if severity == "error" else "#d97706"
            lines.append(
                f"<span style='color:{colour}'>{severity.capitalize()}: {_html(message)}</span>"
            )
        self.setToolTip("<br>".join(lines))
        self.update()

    # ---------------------------------------------------------------- ports
    def set_input_ports(self, ports: Iterable[int], connected: dict[int, str]) -> bool:
        """Show exactly ``ports`` (sorted) along the top edge.

        Args:
            ports: Input port numbers to show.
            connected: Port number -> id of the node feeding it.

        Returns:
            True when the port layout changed (wires into this node must follow).
        """
        wanted = sorted(set(ports))
        changed = wanted != sorted(self.in_ports)
        for p in [p for p in self.in_ports if p not in wanted]:
            item = self.in_ports.pop(p)
            item.setParentItem(None)
            if item.scene() is not None:
                item.scene().removeItem(item)
        for p in wanted:
            if p not in self.in_ports:
                self.in_ports[p] = PortItem(self, "in", p)
                self.in_ports[p].set_label(self._input_labels.get(p, ""))
        if changed:
            n = len(wanted)
            for i, p in enumerate(wanted):
                self.in_ports[p].setPos(
                    -NODE_WIDTH / 2 + NODE_WIDTH * (i + 1) / (n + 1), -NODE_HEIGHT / 2
                )
        for p, item in self.in_ports.items():
            item.set_connected(p in connected)
            item.setToolTip(
                f"Input {p} of {self.node_id}, fed by {connected[p]}\n"
                "Drag away to disconnect or re-route"
                if p in connected
                else f"Input {p} of {self.node_id}\nDrag to a layer's output to connect"
            )
        return changed

    def set_output_ports(self, names: tuple[str, ...]) -> bool:
        """Show the state outputs ``names[1:]``: small labelled ports right of the output,
        all of them spread along the bottom edge (the output alone sits in the middle).

        Returns:
            True when they changed (wires from this node must follow).
        """
        wanted = dict(enumerate(names))
        wanted.pop(0, None)
        if {p: i.label for p, i in self.state_ports.items()} == wanted:
            return False
        for item in self.state_ports.values():
            item.setParentItem(None)
            if item.scene() is not None:
                item.scene().removeItem(item)
        self.state_ports = {}
        n = len(wanted) + 1
        xs = (
            [0.0]
            if n == 1
            else [-NODE_WIDTH / 2 + NODE_WIDTH * (i + 1) / (n + 1) for i in range(n)]
        )
        if self.out_port is not None:
            self.out_port.setPos(xs[0], NODE_HEIGHT / 2)
        for p, label in wanted.items():
            item = PortItem(self, "out", p)
            item.set_label(label)
            item.setPos(xs[p], NODE_HEIGHT / 2)
            item.setToolTip(
                f"Output {p} of {self.node_id}: its state {label}\n"
                "Drag to another layer's input (e.g. a decoder's initial state)"
            )
            self.state_ports[p] = item
        return True

    def output_port_item(self, port: int) -> PortItem | None:
        """The item of output ``port`` (0: :attr:`out_port`)."""
        return self.out_port if port == 0 else self.state_ports.get(port)

    def set_has_output(self, has_output: bool) -> None:
        if self.out_port is not None:
            self.out_port.setVisible(has_output)

    def input_pos(self, port: int) -> QPointF:
        """Scene position of input ``port`` (the top centre if that port is not shown)."""
        item = self.in_ports.get(port)
        if item is not None:
            return item.scenePos()
        return self.mapToScene(QPointF(0, -NODE_HEIGHT / 2))

    def output_pos(self, port: int = 0) -> QPointF:
        """Scene position of output ``port`` (the output's if that port is not shown)."""
        item = self.output_port_item(port) or self.out_port
        if item is not None:
            return item.scenePos()
        return self.mapToScene(QPointF(0, NODE_HEIGHT / 2))

    # -------------------------------------------------------------- drawing
    def boundingRect(self) -> QRectF:
        m = 4.0
        return QRectF(
            -NODE_WIDTH / 2 - m, -NODE_HEIGHT / 2 - m, NODE_WIDTH + 2 * m, NODE_HEIGHT + 2 * m + 3
        )

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(_card_rect(), NODE_RADIUS, NODE_RADIUS)
        return path

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        theme = _theme(self)
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        rect = _card_rect()
        painter.setPen(Qt.PenStyle.NoPen)
        if lod > 0.3:
            painter.setBrush(theme.node_shadow)
            painter.drawRoundedRect(rect.translated(0, 2.5), NODE_RADIUS, NODE_RADIUS)
        selected = self.isSelected()
        severity = self.severity
        if selected:
            halo = QColor(theme.accent)
            halo.setAlpha(70)
            painter.setPen(QPen(halo, 5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(rect, NODE_RADIUS, NODE_RADIUS)
        if severity:
            pen = QPen(theme.error if severity == "error" else theme.warning, 2)
        elif selected:
            pen = QPen(theme.accent, 1.6)
        else:
            pen = QPen(theme.node_border, 1)
        if self.frozen and not severity and not selected:
            pen = QPen(theme.node_border, 1, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(muted(theme.node_fill, theme) if self.frozen else theme.node_fill)
        painter.drawRoundedRect(rect, NODE_RADIUS, NODE_RADIUS)

        colour = category_colour(self.category)
        if self.frozen:
            colour = muted(colour, theme)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawPath(_stripe_path())
        if self.frozen and lod >= 0.45:
            paint_lock(
                painter,
                QPointF(rect.right() - 10 - LOCK_SIZE, rect.top() + 7),
                theme.text_dim,
            )

        title, tag, caption, shape, params = self._texts
        left = rect.left() + STRIPE_WIDTH + 10
        right = rect.right() - 10
        if lod < SUMMARY_LOD:  # zoomed out: a summary card (gui/canvas/detail.py)
            paint_summary(
                painter,
                lod,
                colour,
                theme.text,
                theme.text_shape,
                self.node_id,
                self.shape_text,
                font("title"),
                self.owner_block,
            )
            return
        flags = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
        if lod < 0.75:
            # Half zoom: fewer, larger texts (id, then type and shape) that stay readable.
            self._paint_medium(
                painter, theme, lod, QRectF(left, rect.top(), right - left, rect.height())
            )
            return
        top = rect.top() + 6
        painter.setFont(font("title"))
        painter.setPen(theme.text)
        painter.drawText(QRectF(left, top, right - left, 18), flags, title)
        # Type tag: a soft pill in the category colour, then the caption.
        tag_font = font("tag")
        painter.setFont(tag_font)
        tw = QFontMetricsF(tag_font).horizontalAdvance(tag) + 10
        pill = QRectF(left - 1, top + 21, tw, 16)
        soft = QColor(colour)
        soft.setAlpha(60 if theme.dark else 34)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(soft)
        painter.drawRoundedRect(pill, 8, 8)
        painter.setPen(colour.lighter(140) if theme.dark else colour.darker(135))
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, tag)
        painter.setFont(font("small"))
        if caption:
            painter.setPen(theme.text_dim)
            painter.drawText(
                QRectF(pill.right() + 6, top + 21, right - pill.right() - 6, 16), flags, caption
            )
        if shape:
            painter.setPen(theme.text_shape)
            painter.drawText(QRectF(left, top + 40, right - left, 16), flags, shape)
        if params:
            painter.setPen(theme.text_dim)
            painter.drawText(
                QRectF(left, top + 40, right - left, 16),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                params,
            )

    def _paint_medium(self, painter: QPainter, theme: Theme, lod: float, area: QRectF) -> None:
        title_font = fitted_font(font("title"), self.node_id, 11.5 / lod, 9.5 / lod, area.width())
        line_font = QFont(font("small"))
        line_font.setPixelSize(int(9.5 / lod))
        title_h, line_h = 11.5 / lod * 1.3, 9.5 / lod * 1.3
        top = area.top() + (area.height() - title_h - line_h) / 2
        flags = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
        painter.setFont(title_font)
        painter.setPen(theme.text)
        painter.drawText(
            QRectF(area.left(), top, area.width(), title_h),
            flags,
            meaningful_id(
                self.node_id,
                lambda t: QFontMetricsF(title_font).horizontalAdvance(t) <= area.width(),
                self.owner_block,
            ),
        )
        second = self.second_line(QFontMetricsF(line_font), area.width())
        painter.setFont(line_font)
        painter.setPen(theme.text_dim)
        painter.drawText(QRectF(area.left(), top + title_h, area.width(), line_h), flags, second)

    def second_line(self, fm: QFontMetricsF, width: float) -> str:
        """``"MaxPooling2D · (12, 12, 6)"`` fitted to ``width``: the shape stays whole and
        the type name gives way in its middle ("MaxP…ing2D"); only when even that does
        not fit is the end cut. Before shapes are known the caption ("2x2") is dropped
        rather than the type cut."""
        detail = self.shape_text or self.caption
        if not detail:
            return fm.elidedText(self.node_type, Qt.TextElideMode.ElideMiddle, width)
        tail = " · " + detail
        room = width - fm.horizontalAdvance(tail)
        if fm.horizontalAdvance(self.node_type) <= room:
            return self.node_type + tail
        if not self.shape_text:  # a caption ("2x2") gives way to the type, never the reverse
            return fm.elidedText(self.node_type, Qt.TextElideMode.ElideMiddle, width)
        if room >= fm.horizontalAdvance("MaxP…2D"):
            return fm.elidedText(self.node_type, Qt.TextElideMode.ElideMiddle, room) + tail
        return fm.elidedText(self.node_type + tail, Qt.TextElideMode.ElideRight, width)

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        if change == QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged and not self.defer:
            for edge in self.edges:
                edge.adjust(route=not self.quiet)
        return super().itemChange(change, value)


class EdgeItem(QGraphicsItem):
    """A wire: a smooth cubic curve from an output port down to an input port,
    with the tensor shape it carries in a small label at its middle.

    Attributes:
        edge: The model edge this wire draws.
        label: The shape text shown ("8×8×6"), or "".
    """

    def __init__(self, edge: Edge, source: NodeItem, target: NodeItem) -> None:
        super().__init__()
        self.edge, self.source, self.target = edge, source, target
        self.label = ""
        self._path = QPainterPath()
        self._shape: QPainterPath | None = None
        self._label_rect = QRectF()
        self._rect = QRectF()
        self._hover = False
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setAcceptHoverEvents(True)
        self.setZValue(Z_EDGE)
        self.adjust()

    def set_label(self, text: str) -> None:
        text = self._port_text(text)
        if text == self.label and self.toolTip():
            return
        self.label = text
        self.adjust()
        tip = f"{self.edge.source} → {self.edge.target} (input {self.edge.port})"
        state = self.source.state_ports.get(self.edge.source_port)
        if state is not None:
            tip = f"{self.edge.source} (state {state.label}) → {self.edge.target} (input {self.edge.port})"
        self.setToolTip(f"{tip}\n{text}" if text else tip)

    def _port_text(self, text: str) -> str:
        """The shape of the output this wire leaves, from a several-output shape text
        (``"5×16 | 16 | 16"``)."""
        parts = text.split(" | ")
        if self.source.state_ports and len(parts) == len(self.source.state_ports) + 1:
            return parts[self.edge.source_port] if self.edge.source_port < len(parts) else ""
        return text

    def adjust(self, route: bool = True) -> None:
        """Recompute the curve after either end moved.

        Args:
            route: Detour around nodes in the way (False: the plain curve, for bulk
                changes that re-route everything once afterwards).
        """
        p1 = self.source.output_pos(self.edge.source_port)
        p2 = self.target.input_pos(self.edge.port)
        # Route first: the scene query inside must not run between
        # prepareGeometryChange() and the new bounding rect, or the BSP index
        # would keep this item under its old rect (and crash after removal).
        path = self._route(p1, p2) if route else wire_path(p1, p2)
        self.prepareGeometryChange()
        self._path = path
        self._shape = None
        mid = self._path.pointAtPercent(0.5)
        if self.label:
            fm = QFontMetricsF(font("label"))
            w, h = fm.horizontalAdvance(self.label) + 12, 16.0
            self._label_rect = QRectF(mid.x() - w / 2, mid.y() - h / 2, w, h)
        else:
            self._label_rect = QRectF()
        rect = self._path.boundingRect().adjusted(-4, -4, 4, 4)
        self._rect = rect.united(self._label_rect) if self.label else rect

    def _route(self, p1: QPointF, p2: QPointF) -> QPainterPath:
        """The plain S-curve, or a detour beside the nodes it would run through."""
        path = wire_path(p1, p2)
        scene = self.scene()
        if scene is None or p2.y() - p1.y() < NODE_HEIGHT * 1.2:
            return path
        for _ in range(3):
            blockers = self._blockers(scene, path)
            if not blockers:
                return path
            rects = [b.sceneBoundingRect() for b in blockers]
            mid = (p1.x() + p2.x()) / 2
            right = max(r.right() for r in rects) + 18
            left = min(r.left() for r in rects) - 18
            x = right if abs(right - mid) <= abs(left - mid) else left
            path = detour_path(p1, p2, x)
        return path

    def _blockers(self, scene, path: QPainterPath) -> list[NodeItem]:
        stroker = QPainterPathStroker()
        stroker.setWidth(4)
        area = stroker.createStroke(path)
        return [
            i
            for i in scene.items(area, Qt.ItemSelectionMode.IntersectsItemShape)
            if isinstance(i, NodeItem) and i is not self.source and i is not self.target
        ]

    def path(self) -> QPainterPath:
        return self._path

    def boundingRect(self) -> QRectF:
        return self._rect

    def shape(self) -> QPainterPath:
        if self._shape is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(10)
            self._shape = stroker.createStroke(self._path)
            if self.label:
                self._shape.addRect(self._label_rect)
        return self._shape

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        theme = _theme(self)
        selected = self.isSelected()
        colour = theme.accent if selected or self._hover else theme.wire
        painter.setPen(
            QPen(colour, 2.6 if selected else 1.8, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
        )
        painter.setBrush(Qt.BrushStyle.NoBrush)
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        painter.drawPath(simple_path(self._path) if lod < SUMMARY_LOD else self._path)
        if not self.label or lod < 0.55:
            return
        painter.setPen(QPen(colour, 1))
        painter.setBrush(theme.wire_label_fill)
        painter.drawRoundedRect(self._label_rect, 8, 8)
        painter.setFont(font("label"))
        painter.setPen(theme.accent if selected else theme.wire_label_text)
        painter.drawText(self._label_rect, Qt.AlignmentFlag.AlignCenter, self.label)

    def hoverEnterEvent(self, event) -> None:
        self._hover = True
        self.update()

    def hoverLeaveEvent(self, event) -> None:
        self._hover = False
        self.update()


def wire_path(p1: QPointF, p2: QPointF) -> QPainterPath:
    """A smooth S-curve leaving ``p1`` downward and entering ``p2`` from above."""
    dy = p2.y() - p1.y()
    pull = max(abs(dy) * 0.5, 40.0) if dy >= 0 else max(abs(dy) * 0.5, 90.0)
    path = QPainterPath(p1)
    path.cubicTo(QPointF(p1.x(), p1.y() + pull), QPointF(p2.x(), p2.y() - pull), p2)
    return path


def detour_path(p1: QPointF, p2: QPointF, x: float) -> QPainterPath:
    """A wire that swings out to column ``x`` just below ``p1``, runs down it, and
    swings back in just above ``p2`` (skip connections around a chain of nodes)."""
    bend = min(44.0, (p2.y() - p1.y()) / 3)
    a, b = QPointF(x, p1.y() + bend), QPointF(x, p2.y() - bend)
    path = QPainterPath(p1)
    path.cubicTo(QPointF(p1.x(), p1.y() + bend * 0.8), QPointF(x, p1.y() + bend * 0.2), a)
    path.lineTo(b)
    path.cubicTo(QPointF(x, p2.y() - bend * 0.2), QPointF(p2.x(), p2.y() - bend * 0.8), p2)
    return path


LOCK_SIZE = 11.0
"""Width and height of the lock drawn on a frozen card (scene units)."""


def muted(colour: QColor, theme: Theme) -> QColor:
    """``colour`` greyed towards the canvas background: how a frozen card is painted."""
    h, s, v, a = colour.getHsvF()
    grey = QColor.fromHsvF(max(h, 0.0), s * 0.25, v, a)
    bg = theme.background
    mix = 0.45
    return QColor.fromRgbF(
        grey.redF() * (1 - mix) + bg.redF() * mix,
        grey.greenF() * (1 - mix) + bg.greenF() * mix,
        grey.blueF() * (1 - mix) + bg.blueF() * mix,
        a,
    )


def paint_lock(painter: QPainter, top_left: QPointF, colour: QColor) -> None:
    """A small padlock (shackle and body) of :data:`LOCK_SIZE` at ``top_left``."""
    x, y, size = top_left.x(), top_left.y(), LOCK_SIZE
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(colour, 1.6)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    shackle = QRectF(x + size * 0.22, y, size * 0.56, size * 0.7)
    painter.drawArc(shackle, 0, 180 * 16)
    painter.drawLine(
        QPointF(shackle.left(), y + size * 0.35), QPointF(shackle.left(), y + size * 0.5)
    )
    painter.drawLine(
        QPointF(shackle.right(), y + size * 0.35), QPointF(shackle.right(), y + size * 0.5)
    )
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    painter.drawRoundedRect(QRectF(x, y + size * 0.45, size, size * 0.55), 1.5, 1.5)
    painter.restore()


def _card_rect() -> QRectF:
    return QRectF(-NODE_WIDTH / 2, -NODE_HEIGHT / 2, NODE_WIDTH, NODE_HEIGHT)


_STRIPE: list[QPainterPath] = []


def _stripe_path() -> QPainterPath:
    """The left colour stripe, clipped to the card's rounded corners (built once)."""
    if not _STRIPE:
        card = QPainterPath()
        card.addRoundedRect(_card_rect(), NODE_RADIUS, NODE_RADIUS)
        band = QPainterPath()
        r = _card_rect()
        band.addRect(QRectF(r.left(), r.top(), STRIPE_WIDTH, r.height()))
        _STRIPE.append(card.intersected(band))
    return _STRIPE[0]


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
