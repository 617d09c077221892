"""Level of detail: how cards and wires look when the canvas is zoomed out.

Below :data:`SUMMARY_LOD` (the scale ``QStyleOptionGraphicsItem.levelOfDetailFromTransform``
gives: 1.0 at 100 %) a card becomes a summary: tinted in its type's colour, the
meaningful part of its id in a font of about 12 screen pixels (:func:`meaningful_id`
keeps the end of ``conv3_block1_0_bn``: ``…block1_0_bn``, never ``conv3_…1_0_bn``) and,
when there is room, its output shape. Everything is clipped to the card, so labels
never overlap; wire labels are hidden and wires are drawn as straight segments
(:func:`simple_path`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath

from gui.canvas.theme import NODE_HEIGHT, NODE_WIDTH, STRIPE_WIDTH

#: Below this level of detail cards are summaries and wires straight.
SUMMARY_LOD = 0.45
#: Screen pixel sizes of the summary's id (shrunk down to the minimum for long ids)
#: and of its output shape.
ID_PX, ID_MIN_PX, SHAPE_PX = 12.0, 9.0, 9.5
ELLIPSIS = "…"


def meaningful_id(node_id: str, fits, block_id: str | None = None) -> str:
    """``node_id`` shortened from the front, at ``_`` boundaries, until ``fits(text)``.

    Layer names grow at the front with their stage (``conv3_block1_0_bn``), so the end
    is what tells neighbouring cards apart: ``…block1_0_bn``, then ``…0_bn``; when not
    even the last part fits, it is cut at its end (``conv…``). Inside a block whose id
    prefixes the layer's (``inception_3a_3x3_reduce`` in block ``inception_3a``), the
    block's prefix goes first and the rest is kept whole (``3x3_reduce``), never its
    meaningful middle (``…3x3_reduce`` would read ``…reduce`` soon after).

    Args:
        node_id: The layer id.
        fits: ``fits(text) -> bool``: whether ``text`` fits the room there is.
        block_id: The id of the innermost block holding the layer, if any.
    """
    if fits(node_id):
        return node_id
    if block_id and node_id.startswith(block_id + "_") and len(node_id) > len(block_id) + 1:
        node_id = node_id[len(block_id) + 1 :]
        if fits(node_id):
            return node_id
    parts = node_id.split("_")
    for start in range(1, len(parts)):
        text = ELLIPSIS + "_".join(parts[start:])
        if fits(text):
            return text
    last = parts[-1]
    if fits(last):
        return last
    while len(last) > 1 and not fits(last + ELLIPSIS):
        last = last[:-1]
    return last + ELLIPSIS


def fitted_font(base: QFont, text: str, size: float, smallest: float, width: float) -> QFont:
    """``base`` at pixel ``size``, or smaller (down to ``smallest``) so ``text`` fits
    ``width``: a long id shrinks a little before :func:`meaningful_id` shortens it."""
    natural = QFontMetricsF(base).horizontalAdvance(text) * size / max(base.pixelSize(), 1)
    if natural > width:
        size = max(size * width / natural, min(smallest, size))
    out = QFont(base)
    out.setPixelSize(max(math.ceil(size - 1e-6), 1))
    return out


@dataclass
class Summary:
    """What a zoomed-out card shows, and where (item coordinates)."""

    id_text: str
    id_font: QFont
    id_rect: QRectF
    shape_text: str  # "" when there is no room (or no shape yet)
    shape_font: QFont
    shape_rect: QRectF


def card_rect() -> QRectF:
    return QRectF(-NODE_WIDTH / 2, -NODE_HEIGHT / 2, NODE_WIDTH, NODE_HEIGHT)


#: Where a card's texts start (right of its colour stripe).
TEXT_LEFT = -NODE_WIDTH / 2 + STRIPE_WIDTH + 10


def summary_layout(
    node_id: str, shape_text: str, lod: float, base_font: QFont, block_id: str | None = None
) -> Summary:
    """The texts of a card at level of detail ``lod`` (below :data:`SUMMARY_LOD`): the
    id about :data:`ID_PX` screen pixels high (shrunk to :data:`ID_MIN_PX` before it
    is shortened by :func:`meaningful_id`, inside block ``block_id`` if given), and the
    output shape under it when both lines fit the card's height."""
    lod = max(lod, 0.02)
    card = card_rect()
    left = TEXT_LEFT
    width = card.right() - 6 - left
    size = min(ID_PX / lod, card.height() * 0.6)
    id_font = fitted_font(base_font, node_id, size, ID_MIN_PX / lod, width)
    if id_font.pixelSize() * lod < ID_PX - 1:  # a small id reads better, and fits more, unbolded
        id_font.setWeight(QFont.Weight.Medium)
    fm = QFontMetricsF(id_font)
    text = meaningful_id(node_id, lambda t: fm.horizontalAdvance(t) <= width, block_id)
    shape_font = QFont(base_font)
    shape_font.setWeight(QFont.Weight.Normal)
    shape_font.setPixelSize(max(math.ceil(SHAPE_PX / lod - 1e-6), 1))
    shape_fm = QFontMetricsF(shape_font)
    id_h, shape_h = fm.height(), shape_fm.height()
    two_lines = bool(shape_text) and id_h + shape_h <= card.height() - 4
    top = card.top() + (card.height() - (id_h + shape_h if two_lines else id_h)) / 2
    shape = ""
    if two_lines:
        shape = shape_fm.elidedText(shape_text, Qt.TextElideMode.ElideRight, width)
    return Summary(
        text,
        id_font,
        QRectF(left, top, width, id_h),
        shape,
        shape_font,
        QRectF(left, top + id_h, width, shape_h),
    )


def paint_summary(
    painter: QPainter,
    lod: float,
    colour: QColor,
    text_colour: QColor,
    dim_colour: QColor,
    node_id: str,
    shape_text: str,
    base_font: QFont,
    block_id: str | None = None,
) -> None:
    """Draw the zoomed-out contents of a card (its frame and stripe are drawn already):
    a tint of the type's ``colour`` and :func:`summary_layout`'s texts (``block_id``:
    the layer's innermost block, whose id prefix is dropped first)."""
    tint = QColor(colour)
    tint.setAlpha(46)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(tint)
    painter.drawRoundedRect(card_rect().adjusted(1, 1, -1, -1), 8, 8)
    summary = summary_layout(node_id, shape_text, lod, base_font, block_id)
    flags = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
    painter.setFont(summary.id_font)
    painter.setPen(text_colour)
    painter.drawText(summary.id_rect, flags, summary.id_text)
    if summary.shape_text:
        painter.setFont(summary.shape_font)
        painter.setPen(dim_colour)
        painter.drawText(summary.shape_rect, flags, summary.shape_text)


def simple_path(path: QPainterPath) -> QPainterPath:
    """``path`` with every curve replaced by a straight segment between its ends: an
    S-curve becomes one line, a detour around cards three (out, down, back in)."""
    out = QPainterPath()
    n = path.elementCount()
    i = 0
    while i < n:
        e = path.elementAt(i)
        if e.isMoveTo():
            out.moveTo(QPointF(e.x, e.y))
            i += 1
        elif e.isLineTo():
            out.lineTo(QPointF(e.x, e.y))
            i += 1
        else:  # CurveTo + 2 CurveToData: the third point is where it ends
            end = path.elementAt(min(i + 2, n - 1))
            out.lineTo(QPointF(end.x, end.y))
            i += 3
    return out
