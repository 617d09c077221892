"""The layer palette: every catalog layer, grouped by category, searchable.

Drag a layer onto the canvas (mime ``application/x-layerlab-layer``, payload
the type name) or double-click it to add it after the selected layer.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QSize, Qt, Signal
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.catalog.specs import CATEGORIES
from engine.catalog.table import CATALOG
from gui.theme import category_icon

LAYER_MIME = "application/x-layerlab-layer"
TYPE_ROLE = Qt.ItemDataRole.UserRole + 1


def layer_mime(layer_type: str) -> QMimeData:
    """The drag payload for one layer type."""
    mime = QMimeData()
    mime.setData(LAYER_MIME, layer_type.encode("utf-8"))
    mime.setText(layer_type)
    return mime


class _LayerTree(QTreeWidget):
    """A tree whose layer rows drag out as layer mime data."""

    def startDrag(self, supported_actions) -> None:
        item = self.currentItem()
        layer_type = item.data(0, TYPE_ROLE) if item else None
        if not layer_type:
            return
        drag = QDrag(self)
        drag.setMimeData(layer_mime(layer_type))
        drag.setPixmap(item.icon(0).pixmap(24, 24))
        drag.exec(Qt.DropAction.CopyAction)


class LayerPalette(QWidget):
    """Search box over a category tree of layer types.

    Signals:
        add_requested(str): The user double-clicked (or pressed Enter on) a layer type.
    """

    add_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit(placeholderText="Search layers…")
        self.search.setClearButtonEnabled(True)
        self.tree = _LayerTree()
        self.tree.setHeaderHidden(True)
        self.tree.setIndentation(12)
        self.tree.setRootIsDecorated(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # "GlobalAvera…Pooling1D" and "…2D" stay apart when the dock is narrow
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self._populate()
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self._on_search_return)
        # Activation = double-click or Enter (Qt emits it once for a double-click).
        self.tree.itemActivated.connect(self._on_activated)

    def _populate(self) -> None:
        self.tree.clear()
        groups: dict[str, QTreeWidgetItem] = {}
        order = list(CATEGORIES) + [
            s.category for s in CATALOG.values() if s.category not in CATEGORIES
        ]
        for category in dict.fromkeys(order):
            group = QTreeWidgetItem([category])
            group.setIcon(0, category_icon(category))
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            groups[category] = group
        for spec in CATALOG.values():
            item = QTreeWidgetItem([spec.type])
            item.setData(0, TYPE_ROLE, spec.type)
            item.setIcon(0, category_icon(spec.category, 14))
            item.setToolTip(0, f"<b>{spec.type}</b><br>{spec.doc}")
            item.setFlags(
                Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemIsDragEnabled
            )
            groups[spec.category].addChild(item)
        for group in groups.values():
            if group.childCount():
                self.tree.addTopLevelItem(group)
                group.setExpanded(True)

    def sizeHint(self) -> QSize:
        """Wide enough for the longest layer name (the dock starts at this width)."""
        hint = super().sizeHint()
        fm = self.tree.fontMetrics()
        longest = max((fm.horizontalAdvance(t) for t in CATALOG), default=0)
        width = longest + 2 * self.tree.indentation() + 14 + 8 + 24 + 12  # icon, margins
        return QSize(max(hint.width(), width), hint.height())

    def layer_item(self, layer_type: str) -> QTreeWidgetItem | None:
        """The tree row for ``layer_type`` (for tests and keyboard navigation)."""
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            for j in range(group.childCount()):
                if group.child(j).data(0, TYPE_ROLE) == layer_type:
                    return group.child(j)
        return None

    def visible_types(self) -> list[str]:
        """Layer types not hidden by the search filter, in palette order."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            for j in range(group.childCount()):
                if not group.child(j).isHidden():
                    out.append(group.child(j).data(0, TYPE_ROLE))
        return out

    def _filter(self, text: str) -> None:
        words = text.lower().split()
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            category = group.text(0).lower()
            shown = 0
            for j in range(group.childCount()):
                item = group.child(j)
                spec = CATALOG[item.data(0, TYPE_ROLE)]
                hay = f"{spec.type.lower()} {category} {spec.doc.lower()}"
                # The type name matters most: a word matches the name, category or doc.
                visible = all(w in hay for w in words)
                item.setHidden(not visible)
                shown += visible
            group.setHidden(shown == 0)
            if words:
                group.setExpanded(True)

    def _on_search_return(self) -> None:
        """Enter in the search box adds the first layer that matches."""
        shown = self.visible_types()
        if self.search.text().strip() and shown:
            self.add_requested.emit(shown[0])

    def _on_activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        layer_type = item.data(0, TYPE_ROLE)
        if layer_type:
            self.add_requested.emit(layer_type)
