"""File > New from Pretrained… and the start page's button: a network and an image folder
become a frozen-backbone transfer-learning project on the canvas."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QDialogButtonBox

from gui.main_window import MainWindow
from gui.new_pretrained import NewPretrainedDialog, adopt


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "recovery"))


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "pets"
    for name in ("cat", "dog"):
        (folder / name).mkdir(parents=True)
        (folder / name / "a.png").write_bytes(b"not read by the dialog")
    return folder


def _ok(dialog: NewPretrainedDialog):
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)


def test_dialog_lists_the_classes_off_the_ui_thread_then_creates_the_project(qtbot, image_folder):
    window = MainWindow(load_tensorflow=False, start_page=True, check_recovery=False)
    qtbot.addWidget(window)
    assert window.act_new_pretrained in window.menuBar().actions()[0].menu().actions()
    dialog = NewPretrainedDialog(window)
    qtbot.addWidget(dialog)
    assert not _ok(dialog).isEnabled()  # no folder yet
    dialog.backbone.setCurrentIndex(dialog.backbone.findData("EfficientNetB0"))
    assert dialog.input_size.value() == 224 and dialog.input_size.minimum() == 32
    assert "rescales pixels itself" in dialog.about.text()
    dialog.input_size.setValue(64)
    dialog.weights.setCurrentIndex(dialog.weights.findData(None))
    dialog.folder.setText(str(image_folder))
    dialog._list_classes()
    qtbot.waitUntil(lambda: _ok(dialog).isEnabled(), timeout=5000)
    assert dialog.classes_label.text() == "2 classes: cat, dog"
    assert adopt(window, dialog)
    nodes = window.project.graph.nodes
    assert nodes["backbone"].params == {"application": "EfficientNetB0", "weights": None}
    assert not nodes["backbone"].trainable
    assert nodes["image"].params["shape"] == [64, 64, 3]
    assert nodes["probs"].params["units"] == 2
    assert window.project.path is None and not window.on_start_page()
    window.close()


def test_dialog_says_why_a_folder_cannot_be_used(qtbot, tmp_path):
    (tmp_path / "flat").mkdir()
    dialog = NewPretrainedDialog(folder=str(tmp_path / "flat"))
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: "class sub-folder" in dialog.classes_label.text(), timeout=5000)
    assert not _ok(dialog).isEnabled()
    dialog.folder.setText(str(tmp_path / "nowhere"))
    dialog._list_classes()
    qtbot.waitUntil(lambda: "not found" in dialog.classes_label.text(), timeout=5000)
    assert not _ok(dialog).isEnabled()


def test_start_page_button_opens_new_from_pretrained(qtbot, monkeypatch):
    window = MainWindow(load_tensorflow=False, start_page=True, check_recovery=False)
    qtbot.addWidget(window)
    called = []
    monkeypatch.setattr(
        "gui.file_actions.create_from_dialog", lambda win, dialog: called.append(dialog)
    )
    window.start_page.pretrained_button.click()
    assert called and isinstance(called[0], NewPretrainedDialog)
    window.close()
