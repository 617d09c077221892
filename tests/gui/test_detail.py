"""Level of detail: zoomed-out cards keep the meaningful part of ids; Fit to Window
stays at a zoom where cards can be read; wires are straight when zoomed out."""

from __future__ import annotations

from PySide6.QtCore import QPointF

from engine.model.commands import UndoStack
from engine.model.project import load_project
from gui.canvas.detail import ELLIPSIS, SUMMARY_LOD, meaningful_id, simple_path, summary_layout
from gui.canvas.items import font, wire_path
from presets import presets_dir


def test_meaningful_id_drops_the_stage_not_the_block_number():
    def fits(limit):
        return lambda text: len(text) <= limit

    assert meaningful_id("conv3_block1_0_bn", fits(40)) == "conv3_block1_0_bn"
    assert meaningful_id("conv3_block1_0_bn", fits(14)) == ELLIPSIS + "block1_0_bn"
    assert meaningful_id("conv3_block1_0_bn", fits(8)) == ELLIPSIS + "0_bn"
    assert meaningful_id("averylongname", fits(6)) == "avery" + ELLIPSIS


def test_zoomed_out_card_keeps_the_end_of_its_id_and_shows_its_shape(qtbot):
    from PySide6.QtWidgets import QWidget

    qtbot.addWidget(QWidget())  # a QApplication for the fonts
    summary = summary_layout("conv3_block1_0_bn", "28×28×512", 0.4, font("title"))
    assert "block1_0_bn" in summary.id_text  # never "conv3_…1_0_bn"
    assert not summary.id_text.startswith("conv3_")
    assert summary.shape_text == "28×28×512"
    # readable on screen: the id is at least 9 screen pixels high
    assert summary.id_font.pixelSize() * 0.4 >= 8.9
    # the texts stay inside the card: labels never overlap their neighbours'
    from gui.canvas.detail import card_rect

    card = card_rect()
    assert card.contains(summary.id_rect) and card.contains(summary.shape_rect)


class RecordingPainter:
    """Stands in for a QPainter: keeps the texts drawn."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def drawText(self, _rect, _flags, text) -> None:
        self.texts.append(text)

    def __getattr__(self, _name):
        return lambda *args, **kwargs: None


def test_medium_zoom_title_is_not_cut_in_the_middle(qtbot):
    from PySide6.QtCore import QRectF
    from PySide6.QtWidgets import QWidget

    from engine.model.graph import Node
    from gui.canvas.items import NodeItem
    from gui.canvas.theme import LIGHT

    qtbot.addWidget(QWidget())
    item = NodeItem(Node("conv3_block1_0_bn", "BatchNormalization"))
    painter = RecordingPainter()
    item._paint_medium(painter, LIGHT, 0.5, QRectF(-82, -35, 170, 70))
    title = painter.texts[0]
    assert "block1_0_bn" in title and "conv3_" + ELLIPSIS not in title


def test_fit_to_window_on_resnet101_stays_legible(qtbot):
    from gui.canvas.scene import GraphScene
    from gui.canvas.view import LEGIBLE_ZOOM, GraphView

    project = load_project(presets_dir() / "resnet101.json")
    scene = GraphScene(project, UndoStack(project))
    view = GraphView(scene)
    qtbot.addWidget(view)
    view.resize(1000, 680)
    view.show()
    qtbot.waitExposed(view)
    view.fit()
    # the whole 345-layer column would need ~0.02 (a hairline); cards stay readable
    assert view.zoom() >= LEGIBLE_ZOOM
    summary = summary_layout("conv4_block23_3_conv", "14×14×1024", view.zoom(), font("title"))
    assert summary.id_font.pixelSize() * view.zoom() >= 8.9
    assert "3_conv" in summary.id_text
    # it shows the top of the model (the input), and the cards there can be clicked
    top = min(scene.node_items(), key=lambda i: i.y())
    assert view.visible_scene_rect().contains(top.sceneBoundingRect())
    assert view.itemAt(view.mapFromScene(top.scenePos())) is not None


def test_wires_are_straight_when_zoomed_out():
    curve = wire_path(QPointF(0, 0), QPointF(50, 300))
    straight = simple_path(curve)
    assert straight.elementCount() == 2
    assert straight.elementAt(1).x == 50 and straight.elementAt(1).y == 300
    assert SUMMARY_LOD <= 0.5
