"""Issue 15: text cut where it matters (palette names, card captions, the inspector's
shape line, runs named for legends)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetricsF

from engine.catalog.table import CATALOG
from engine.model.commands import UndoStack
from engine.model.graph import Edge, Node
from engine.model.project import Project
from gui.canvas.items import NodeItem, font
from gui.inspector.panel import Inspector
from gui.palette import LayerPalette


def test_palette_is_wide_enough_for_every_name_and_elides_in_the_middle(qtbot):
    palette = LayerPalette()
    qtbot.addWidget(palette)
    assert palette.tree.textElideMode() == Qt.TextElideMode.ElideMiddle
    fm = palette.tree.fontMetrics()
    longest = max(fm.horizontalAdvance(t) for t in CATALOG)
    assert palette.sizeHint().width() >= longest + 2 * palette.tree.indentation() + 14
    assert "GlobalAveragePooling1D" in palette.layer_item("GlobalAveragePooling1D").toolTip(0)


def test_card_second_line_keeps_the_shape_and_cuts_the_type_in_its_middle(qtbot):
    item = NodeItem(Node("pool", "MaxPooling2D", {}))
    item.shape_text = "(None, 14, 14, 32)"
    fm = QFontMetricsF(font("small"))
    width = fm.horizontalAdvance("MaxPooling2D · (None, 14, 14, 32)") - 20
    line = item.second_line(fm, width)
    assert line.endswith(" · (None, 14, 14, 32)"), line
    assert line.startswith("Max") and "…" in line and line.split(" · ")[0].endswith("2D")
    assert fm.horizontalAdvance(line) <= width
    wide = item.second_line(fm, 1000)
    assert wide == "MaxPooling2D · (None, 14, 14, 32)"


def test_inspector_shape_line_wraps_instead_of_cutting(qtbot):
    from types import SimpleNamespace

    project = Project(name="t")
    project.graph.nodes = {
        "inp": Node("inp", "Input", {"shape": [4]}),
        "fc": Node("fc", "Dense", {"units": 256}),
    }
    project.graph.edges = [Edge("inp", "fc")]
    inspector = Inspector()
    qtbot.addWidget(inspector)
    inspector.set_project(project, UndoStack(project))
    inspector.resize(170, 400)
    inspector.show()
    inspector.show_nodes(["fc"])
    inspector.set_analysis({"fc": SimpleNamespace(output_shape=(None, 256), params=1280)})
    qtbot.wait(20)
    label = inspector.shape
    assert label.text().endswith("1,280 params")
    assert label.wordWrap()
    assert label.heightForWidth(label.width()) <= label.height() + 1


def test_card_second_line_drops_a_caption_rather_than_cutting_the_type(qtbot):
    """Found in the window before shapes are known: "Max…g2D · 2x2"."""
    item = NodeItem(Node("pool", "MaxPooling2D", {}))
    item.caption = "2x2"
    fm = QFontMetricsF(font("small"))
    width = fm.horizontalAdvance("MaxPooling2D · 2x2") - 10
    assert item.second_line(fm, width) == "MaxPooling2D"
    assert item.second_line(fm, 1000) == "MaxPooling2D · 2x2"
