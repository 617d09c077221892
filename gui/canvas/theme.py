"""Colours and metrics of the canvas (light and dark)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from PySide6.QtGui import QColor

#: Node card size in scene pixels; positions in the project are card centres.
NODE_WIDTH = 196.0
NODE_HEIGHT = 70.0
NODE_RADIUS = 9.0
STRIPE_WIDTH = 6.0
PORT_RADIUS = 5.0
#: Ports are easier to hit than to see.
PORT_HIT_RADIUS = 11.0

#: One colour per catalog category (unknown categories get a stable colour from
#: :data:`_SPARE`).
CATEGORY_COLOURS: dict[str, str] = {
    "Input": "#10b981",
    "Core": "#3b82f6",
    "Convolution": "#8b5cf6",
    "Pooling": "#06b6d4",
    "Recurrent": "#f97316",
    "Normalization": "#eab308",
    "Regularization": "#64748b",
    "Merge": "#ec4899",
    "Attention": "#ef4444",
    "Preprocessing & augmentation": "#14b8a6",
}
_SPARE = ("#6366f1", "#84cc16", "#f59e0b", "#0ea5e9", "#d946ef", "#22c55e")


def category_colour(category: str | None) -> QColor:
    """The stripe colour of a catalog category."""
    if category in CATEGORY_COLOURS:
        return QColor(CATEGORY_COLOURS[category])
    if not category:
        return QColor("#94a3b8")
    return QColor(_SPARE[zlib.crc32(category.encode()) % len(_SPARE)])


@dataclass(frozen=True)
class Theme:
    """The colours every canvas item paints with."""

    dark: bool
    background: QColor
    grid: QColor
    node_fill: QColor
    node_border: QColor
    node_shadow: QColor
    text: QColor
    text_dim: QColor
    text_shape: QColor
    accent: QColor
    wire: QColor
    wire_label_fill: QColor
    wire_label_text: QColor
    port_fill: QColor
    port_border: QColor
    port_connected: QColor
    accept: QColor
    refuse: QColor
    error: QColor
    warning: QColor


LIGHT = Theme(
    dark=False,
    background=QColor("#f5f6f8"),
    grid=QColor("#d9dde3"),
    node_fill=QColor("#ffffff"),
    node_border=QColor("#d3d8e0"),
    node_shadow=QColor(15, 23, 42, 28),
    text=QColor("#1f2937"),
    text_dim=QColor("#6b7280"),
    text_shape=QColor("#2563eb"),
    accent=QColor("#2563eb"),
    wire=QColor("#9aa4b2"),
    wire_label_fill=QColor("#ffffff"),
    wire_label_text=QColor("#475569"),
    port_fill=QColor("#ffffff"),
    port_border=QColor("#8a94a3"),
    port_connected=QColor("#64748b"),
    accept=QColor("#16a34a"),
    refuse=QColor("#dc2626"),
    error=QColor("#dc2626"),
    warning=QColor("#d97706"),
)

DARK = Theme(
    dark=True,
    background=QColor("#1b1d21"),
    grid=QColor("#2c3036"),
    node_fill=QColor("#272a30"),
    node_border=QColor("#3b4048"),
    node_shadow=QColor(0, 0, 0, 90),
    text=QColor("#e5e7eb"),
    text_dim=QColor("#9ca3af"),
    text_shape=QColor("#7ab0ff"),
    accent=QColor("#4f8cff"),
    wire=QColor("#6b7380"),
    wire_label_fill=QColor("#272a30"),
    wire_label_text=QColor("#c3c9d2"),
    port_fill=QColor("#1b1d21"),
    port_border=QColor("#8b93a1"),
    port_connected=QColor("#a3acb9"),
    accept=QColor("#22c55e"),
    refuse=QColor("#f87171"),
    error=QColor("#f87171"),
    warning=QColor("#fbbf24"),
)
