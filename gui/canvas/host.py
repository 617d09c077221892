"""What canvas edits and gestures need from the scene they work on.

:mod:`gui.canvas.editing` and :mod:`gui.canvas.interactions` are used by
:class:`gui.canvas.scene.GraphScene`; they name the scene by this protocol rather
than importing the scene module, so the three modules import in one direction only.
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QPointF, SignalInstance
from PySide6.QtWidgets import QGraphicsItem

from engine.model.commands import Command, UndoStack
from engine.model.project import Project
from gui.canvas.items import NodeItem, PortItem
from gui.canvas.theme import Theme


class CanvasHost(Protocol):
    """The scene as edits and gestures see it (a :class:`~gui.canvas.scene.GraphScene`)."""

    project: Project
    undo_stack: UndoStack
    theme: Theme
    status_message: SignalInstance
    _paste_count: int

    def push(self, command: Command) -> bool: ...

    def display_pos(self, x: float, y: float) -> tuple[float, float]: ...

    def model_pos(self, x: float, y: float) -> tuple[float, float]: ...

    def node_item(self, node_id: str) -> NodeItem | None: ...

    def node_items(self) -> list[NodeItem]: ...

    def shown_item(self, node_id: str) -> QGraphicsItem | None: ...

    def input_port_items(self) -> list[PortItem]: ...

    def item_at(self, pos: QPointF) -> QGraphicsItem | None: ...

    def selected_ids(self) -> list[str]: ...

    def select_ids(self, ids: list[str] | tuple[str, ...]) -> None: ...

    def selectedItems(self) -> list[QGraphicsItem]: ...

    def addItem(self, item: QGraphicsItem) -> None: ...

    def removeItem(self, item: QGraphicsItem) -> None: ...
