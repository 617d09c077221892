"""The layer palette: every catalog layer, grouped by category, searchable, and
"My blocks", the blocks the user saved.

Drag a layer onto the canvas (mime ``application/x-layerlab-layer``, payload
the type name) or double-click it to add it after the selected layer. A saved block
drags out as ``application/x-layerlab-block`` (payload: the block's fragment as JSON)
or is placed by a double-click; its context menu deletes its file. The saved blocks
are read by a background thread (:meth:`LayerPalette.reload_blocks`): the window
never reads files on its UI thread.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QMimeData, QPoint, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QDrag, QIcon, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLineEdit,
    QMenu,
    QMessageBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.catalog.specs import CATEGORIES
from engine.catalog.table import CATALOG
from engine.model.block_files import (
    BlockFileError,
    SavedBlock,
    list_saved_blocks,
    load_block,
    save_block,
)
from engine.model.graph import Graph, GraphError
from gui.theme import category_icon

LAYER_MIME = "application/x-layerlab-layer"
#: Mime type of a saved block dragged from "My blocks"; payload: its fragment (JSON).
BLOCK_MIME = "application/x-layerlab-block"
TYPE_ROLE = Qt.ItemDataRole.UserRole + 1
#: A "My blocks" row's file path (str).
BLOCK_ROLE = Qt.ItemDataRole.UserRole + 2
MY_BLOCKS = "My blocks"


def layer_mime(layer_type: str) -> QMimeData:
    """The drag payload for one layer type."""
    mime = QMimeData()
    mime.setData(LAYER_MIME, layer_type.encode("utf-8"))
    mime.setText(layer_type)
    return mime


def block_icon(size: int = 14) -> QIcon:
    """Two stacked rounded sheets in the canvas's block colour (a saved block)."""
    pix = QPixmap(size * 2, size * 2)
    pix.setDevicePixelRatio(2.0)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    colour = QColor("#6366f1")
    p.setPen(QPen(colour, 1.2))
    p.setBrush(QColor("#e0e7ff"))
    p.drawRoundedRect(QRectF(3.5, 3.5, size - 5, size - 5), 2.5, 2.5)
    p.setBrush(colour)
    p.drawRoundedRect(QRectF(1, 1, size - 5, size - 5), 2.5, 2.5)
    p.end()
    return QIcon(pix)


def block_mime(fragment: dict[str, Any]) -> QMimeData:
    """The drag payload for one saved block (its fragment)."""
    mime = QMimeData()
    mime.setData(BLOCK_MIME, json.dumps(fragment).encode("utf-8"))
    name = fragment.get("name")
    mime.setText(name if isinstance(name, str) else "block")
    return mime


class _LayerTree(QTreeWidget):
    """A tree whose layer rows drag out as layer mime data (saved blocks as blocks)."""

    def startDrag(self, supported_actions) -> None:
        item = self.currentItem()
        layer_type = item.data(0, TYPE_ROLE) if item else None
        block_path = item.data(0, BLOCK_ROLE) if item else None
        palette = self.parent()
        if block_path and isinstance(palette, LayerPalette):
            fragment = palette.fragments.get(block_path)
            if fragment is None:
                return
            mime = block_mime(fragment)
        elif layer_type:
            mime = layer_mime(layer_type)
        else:
            return
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.setPixmap(item.icon(0).pixmap(24, 24))
        drag.exec(Qt.DropAction.CopyAction)


class LayerPalette(QWidget):
    """Search box over a category tree of layer types.

    Signals:
        add_requested(str): The user double-clicked (or pressed Enter on) a layer type.
        place_requested(dict): The user double-clicked a saved block (its fragment).
        message(str): A line for the status bar.
    """

    add_requested = Signal(str)
    place_requested = Signal(dict)
    message = Signal(str)
    _blocks_read = Signal(object, int)  # (list of (SavedBlock, fragment | None), generation)
    #: A block was saved to "My blocks" (its path), or could not be (None); then a message.
    block_saved = Signal(object, str)

    def __init__(self, parent: QWidget | None = None, blocks_folder: Path | None = None) -> None:
        super().__init__(parent)
        #: Where "My blocks" are (None: no "My blocks" section).
        self.blocks_folder = blocks_folder
        self.saved_blocks: list[SavedBlock] = []
        #: File path (str) -> the saved block's fragment, read by the background thread.
        self.fragments: dict[str, dict[str, Any]] = {}
        self._generation = 0
        self._reading: threading.Thread | None = None
        self._saving: threading.Thread | None = None
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
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)
        self._blocks_read.connect(self._show_blocks)
        self.block_saved.connect(self._on_block_saved)
        self.reload_blocks()

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
        self.blocks_group = QTreeWidgetItem([MY_BLOCKS])
        self.blocks_group.setFlags(Qt.ItemFlag.ItemIsEnabled)
        self.blocks_group.setIcon(0, block_icon(18))
        font = self.blocks_group.font(0)
        font.setBold(True)
        self.blocks_group.setFont(0, font)
        self.blocks_group.setToolTip(
            0, "Blocks you saved (right-click a block on the canvas: Save to My Blocks)"
        )
        self.tree.insertTopLevelItem(0, self.blocks_group)
        self.blocks_group.setHidden(True)

    # ---------------------------------------------------------------- my blocks
    def reload_blocks(self) -> None:
        """Re-read "My blocks" in a background thread; the section updates when done."""
        if self.blocks_folder is None:
            return
        self._generation += 1
        generation, folder = self._generation, self.blocks_folder
        signal = self._blocks_read

        def read() -> None:
            out = []
            for saved in list_saved_blocks(folder):
                fragment = None
                if not saved.problem:
                    try:
                        fragment = load_block(saved.path)
                    except BlockFileError:
                        fragment = None
                out.append((saved, fragment))
            if not shiboken6.isValid(self):  # the palette is gone
                return
            try:
                signal.emit(out, generation)
            except RuntimeError:  # ... or went while emitting
                pass

        self._reading = threading.Thread(target=read, name="my-blocks", daemon=True)
        self._reading.start()

    def save_block(self, graph: Graph, block_id: str) -> None:
        """Save block ``block_id`` of ``graph`` to "My blocks" in a background thread (a
        copy of the graph is taken here, so later edits do not reach the file); when
        written, :attr:`block_saved` and :attr:`message` say where (or why not) and the
        section re-reads the folder."""
        folder = self.blocks_folder
        if folder is None or block_id not in graph.blocks:
            self.message.emit(f"Cannot save the block: no block '{block_id}' or no folder")
            return
        snapshot = graph.copy()
        signal = self.block_saved

        def write() -> None:
            try:
                path = save_block(snapshot, block_id, folder)
                out = (path, f"Saved block '{block_id}' to My blocks ({path})")
            except (BlockFileError, GraphError) as exc:
                out = (None, f"Cannot save the block: {exc}")
            if not shiboken6.isValid(self):  # the palette is gone
                return
            try:
                signal.emit(*out)
            except RuntimeError:  # ... or went while emitting
                pass

        self._saving = threading.Thread(target=write, name="my-blocks-save", daemon=True)
        self._saving.start()

    def _on_block_saved(self, path: Path | None, text: str) -> None:
        self.message.emit(text)
        if path is not None:
            self.reload_blocks()

    def wait_for_blocks(self, timeout: float = 5.0) -> None:
        """Block until the last :meth:`save_block` has written and the last
        :meth:`reload_blocks` has read the files (for tests)."""
        if self._saving is not None:
            self._saving.join(timeout)
        if self._reading is not None:
            self._reading.join(timeout)

    def _show_blocks(self, entries: list, generation: int) -> None:
        if generation != self._generation:
            return  # a newer read is on its way
        group = self.blocks_group
        group.takeChildren()
        self.saved_blocks = [saved for saved, _ in entries]
        self.fragments = {str(saved.path): f for saved, f in entries if f is not None}
        grey = QBrush(self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
        for saved, fragment in entries:
            broken = bool(saved.problem) or fragment is None
            count = f"{saved.layers} layer{'s' if saved.layers != 1 else ''}"
            item = QTreeWidgetItem([saved.name if broken else f"{saved.name}  ({count})"])
            item.setData(0, BLOCK_ROLE, str(saved.path))
            item.setIcon(0, block_icon(14))
            if broken:
                item.setForeground(0, grey)
                item.setToolTip(0, f"<b>{saved.name}</b> cannot be placed:<br>{saved.problem}")
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            else:
                item.setToolTip(
                    0,
                    f"<b>{saved.name}</b> — saved block of {count}<br>{saved.summary}<br>"
                    "Drag onto the canvas or double-click to place it",
                )
                item.setFlags(
                    Qt.ItemFlag.ItemIsEnabled
                    | Qt.ItemFlag.ItemIsSelectable
                    | Qt.ItemFlag.ItemIsDragEnabled
                )
            group.addChild(item)
        group.setHidden(group.childCount() == 0)
        group.setExpanded(True)
        self._filter(self.search.text())

    def block_item(self, name: str) -> QTreeWidgetItem | None:
        """The "My blocks" row of the saved block ``name``."""
        for j in range(self.blocks_group.childCount()):
            child = self.blocks_group.child(j)
            path = child.data(0, BLOCK_ROLE)
            if any(s.name == name and str(s.path) == path for s in self.saved_blocks):
                return child
        return None

    def delete_block(self, path: str, ask: bool = True) -> bool:
        """Delete a saved block's file (after asking) and list "My blocks" again."""
        saved = next((s for s in self.saved_blocks if str(s.path) == path), None)
        name = saved.name if saved else Path(path).stem
        if ask:
            answer = QMessageBox.question(
                self,
                "Delete Saved Block",
                f"Delete the saved block '{name}'?\n{path}\n\nProjects that use it keep "
                "their layers.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return False
        try:
            Path(path).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.message.emit(f"Cannot delete {path}: {exc}")
            return False
        self.message.emit(f"Deleted the saved block '{name}'")
        self.reload_blocks()
        return True

    def _context_menu(self, pos: QPoint) -> None:
        item = self.tree.itemAt(pos)
        path = item.data(0, BLOCK_ROLE) if item is not None else None
        if not path:
            return
        menu = QMenu(self)
        if path in self.fragments:
            menu.addAction(
                "Place on Canvas", lambda: self.place_requested.emit(self.fragments[path])
            )
        menu.addAction("Delete", lambda: self.delete_block(path))
        menu.exec(self.tree.viewport().mapToGlobal(pos))

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
                layer_type = group.child(j).data(0, TYPE_ROLE)
                if layer_type and not group.child(j).isHidden():
                    out.append(layer_type)
        return out

    def _filter(self, text: str) -> None:
        words = text.lower().split()
        for i in range(self.tree.topLevelItemCount()):
            group = self.tree.topLevelItem(i)
            category = group.text(0).lower()
            shown = 0
            for j in range(group.childCount()):
                item = group.child(j)
                layer_type = item.data(0, TYPE_ROLE)
                if layer_type:
                    spec = CATALOG[layer_type]
                    hay = f"{spec.type.lower()} {category} {spec.doc.lower()}"
                else:  # a saved block: its name and what it holds
                    hay = f"{item.text(0).lower()} {category} {item.toolTip(0).lower()}"
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
        path = item.data(0, BLOCK_ROLE)
        if path in self.fragments:
            self.place_requested.emit(self.fragments[path])
        elif path:
            saved = next((s for s in self.saved_blocks if str(s.path) == path), None)
            self.message.emit(f"Cannot place this block: {saved.problem if saved else path}")
