"""The data panel's controls for streamed data (CSV missing values, .npy files, image
cache and unreadable images) and a 100,000-file image folder summarised fast."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np

from engine.data import image_stream
from engine.data import images as image_module
from engine.model.commands import SetSection, UndoStack
from engine.model.project import new_project
from gui.training.data_panel import DataPanel


def _panel(qtbot, tmp_path: Path, data: dict) -> DataPanel:
    project = new_project()
    project.path = tmp_path / "p.json"
    project.data = data
    panel = DataPanel()
    qtbot.addWidget(panel)
    panel.set_project(project, UndoStack(project))
    return panel


def _tiny_files(root: Path, classes: int, per_class: int) -> None:
    """Empty files with an image suffix in class folders (indexing never opens them).
    Hard links to an empty file: a link is one system call and no new inode, about 15x
    faster to make than new files on a loaded machine."""
    for c in range(classes):
        blank = root.parent / f"blank{c}.png"  # a file takes at most 65,000 links
        blank.touch()
        folder = root / f"class{c:02d}"
        folder.mkdir(parents=True)
        base = str(folder) + os.sep
        for i in range(per_class):
            os.link(blank, f"{base}{i:06d}.png")


def test_a_100000_file_image_folder_shows_its_summary_within_2_s_without_decoding(
    qtbot, tmp_path, monkeypatch
):
    _tiny_files(tmp_path / "photos", 10, 10_000)
    decoded: list[str] = []

    def refuse(*args, **kwargs):
        decoded.append(str(args[:1]))
        raise AssertionError("the summary decoded an image")

    for name in ("decode_image", "load_pixels"):
        monkeypatch.setattr(image_module, name, refuse)
    for name in ("_read_checked", "_decode_group"):
        monkeypatch.setattr(image_stream, name, refuse)
    start = time.monotonic()
    panel = _panel(qtbot, tmp_path, {"source": "images", "path": "photos", "image_size": [32, 32]})
    qtbot.waitUntil(lambda: panel.dataset is not None or bool(panel.load_error), timeout=10_000)
    took = time.monotonic() - start
    assert panel.load_error == ""
    assert "80,000 train · 20,000 validation" in panel.summary.text()
    assert "10 classes" in panel.summary.text()
    print(f"summary of 100,000 files: {took:.2f} s")
    assert took < 2.0, f"the summary of 100,000 files took {took:.2f} s"
    assert not decoded
    # the few shown: grey, since these empty files are not images, and saying so
    first = panel.thumbnails.item(0)
    assert panel.thumbnails.count() > 0 and first.text() == "broken"
    assert "class00" in first.toolTip() and "training skips it" in first.toolTip()
    shutil.rmtree(tmp_path / "photos")  # here, not in a later session's cleanup


def test_the_csv_missing_policy_is_a_control_beside_the_csv_options(qtbot, tmp_path):
    (tmp_path / "t.csv").write_text("a,b,y\n1,,x\n2,3,y\n4,5,x\n6,7,y\n8,9,x\n")
    panel = _panel(qtbot, tmp_path, {"source": "csv", "path": "t.csv", "missing": "mean"})
    assert panel.form.isRowVisible(panel.missing)
    assert panel.missing.currentData() == "mean"
    panel.missing.setCurrentIndex(panel.missing.findData("drop"))
    assert panel.project.data["missing"] == "drop"
    qtbot.waitUntil(lambda: not panel.busy, timeout=10_000)
    assert panel.dataset is not None and panel.dataset.count("train") == 3  # 4 rows kept
    panel.missing.setCurrentIndex(panel.missing.findData("error"))
    qtbot.waitUntil(lambda: not panel.busy, timeout=10_000)
    assert "line 2, column 'b'" in panel.load_error
    panel.undo_stack.push(SetSection("data", {"source": "images", "path": "x"}, "images"))
    assert not panel.form.isRowVisible(panel.missing)


def test_a_refused_csv_offers_the_fix_as_a_button_and_in_the_problems_list(qtbot, tmp_path):
    from gui.training.data_problems import data_problems

    rows = "".join(
        f"{i},{'Lyon' if i % 2 else 'Nice'},{'' if i == 3 else i},{i % 2}\n" for i in range(12)
    )
    (tmp_path / "t.csv").write_text("age,city,income,y\n" + rows)
    panel = _panel(qtbot, tmp_path, {"source": "csv", "path": "t.csv"})
    panel.show()
    qtbot.waitUntil(lambda: not panel.busy and bool(panel.load_error), timeout=10_000)
    assert "column 'city'" in panel.load_error and panel.fix_button.isVisible()
    assert panel.fix_button.text() == "One-hot encode 'city'"
    found = data_problems(
        panel.project, None, [], panel.load_error, (panel.load_fix.text, panel.fix_command)
    )
    assert found[0].fix_text == "One-hot encode 'city'"
    panel.undo_stack.push(found[0].fix())  # the Problems list's button does this
    assert panel.project.data["categorical"] == ["city"]
    qtbot.waitUntil(lambda: not panel.busy and "missing value" in panel.load_error, timeout=10_000)
    assert panel.fix_button.text() == "Drop the rows with missing values"
    panel.fix_button.click()
    assert panel.project.data == {
        "source": "csv",
        "path": "t.csv",
        "categorical": ["city"],
        "missing": "drop",
    }
    qtbot.waitUntil(lambda: not panel.busy and panel.dataset is not None, timeout=10_000)
    assert not panel.fix_button.isVisible() and panel.missing.currentData() == "drop"
    assert panel.dataset.feature_names == ["age", "city=Lyon", "city=Nice", "income"]
    panel.undo_stack.undo()
    assert "missing" not in panel.project.data


def test_image_cache_and_unreadable_files_are_controls(qtbot, tmp_path):
    panel = _panel(qtbot, tmp_path, {"source": "images", "path": "none", "cache": "file"})
    assert panel.form.isRowVisible(panel.cache) and panel.form.isRowVisible(panel.corrupt)
    assert panel.cache.currentData() == "file"
    assert panel.corrupt.currentData() == "skip"
    panel.corrupt.setCurrentIndex(panel.corrupt.findData("error"))
    assert panel.project.data["corrupt_files"] == "error"
    assert panel.project.data["cache"] == "file"
    panel.cache.setCurrentIndex(panel.cache.findData("none"))
    assert panel.project.data["cache"] == "none"
    panel.undo_stack.push(SetSection("data", {"source": "csv", "path": "t.csv"}, "csv"))
    assert not panel.form.isRowVisible(panel.cache)


def test_the_file_picker_offers_npy_beside_npz(qtbot, tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", np.zeros((10, 2), np.float32))
    np.save(tmp_path / "y.npy", np.arange(10) % 2)
    asked: list[str] = []

    def pick(parent, caption, folder, pattern):
        asked.append(pattern)
        return str(tmp_path / "x.npy"), pattern

    monkeypatch.setattr("gui.training.data_panel.QFileDialog.getOpenFileName", pick)
    panel = _panel(qtbot, tmp_path, {"source": "npz", "path": "arrays.npz"})
    panel.y_array.setEditText("y.npy")
    panel.browse.click()
    assert "*.npy" in asked[0] and "*.npz" in asked[0]
    assert panel.project.data["path"] == "x.npy"
    qtbot.waitUntil(lambda: not panel.busy, timeout=10_000)
    assert panel.dataset is not None and panel.dataset.input_shape == (2,), panel.load_error


def test_thumbnails_of_any_shape_are_squares_so_their_labels_line_up(qtbot, tmp_path):
    from PySide6.QtGui import QImage

    from engine.data.dataset import load_data
    from gui.training.data_panel import image_thumbnails

    for name, (w, h) in {"wide": (90, 30), "tall": (20, 70)}.items():
        for i in range(3):
            (tmp_path / "set" / name).mkdir(parents=True, exist_ok=True)
            image = QImage(w, h, QImage.Format.Format_RGB888)
            image.fill(0x3366CC)
            assert image.save(str(tmp_path / "set" / name / f"{i}.png"))
    ds = load_data({"source": "images", "path": str(tmp_path / "set"), "validation_split": 0.0})
    thumbs = image_thumbnails(ds, 6, 48)
    assert {(image.width(), image.height()) for image, _, _ in thumbs} == {(48, 48)}
    assert sorted(label for _, label, _ in thumbs) == ["tall"] * 3 + ["wide"] * 3
    wide = next(image for image, label, _ in thumbs if label == "wide")
    assert wide.pixelColor(24, 2).alpha() == 0 and wide.pixelColor(24, 24).blue() == 0xCC
    assert all(tip.startswith(str(tmp_path / "set")) for _, _, tip in thumbs)


def test_a_hidden_panel_draws_its_plot_preview_only_once_shown(qtbot, tmp_path):
    panel = _panel(qtbot, tmp_path, {"source": "builtin:moons", "samples": 200})
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=20_000)
    assert panel.plot_widget is None  # hidden: no pyqtgraph plot made for nobody
    panel.show()
    assert panel.preview.currentWidget() is panel.plot_widget
    assert len(panel.plot.listDataItems()) == 2  # one scatter per class
