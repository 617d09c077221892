"""Issue 15: the status bar said a green "No problems" while the Data panel said the data
does not fit the model: data problems join the Problems list and the count, with one-click
fixes (one undoable edit each)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine.model.project import Project
from gui.main_window import MainWindow


def iris(input_shape: list, units: int, activation: str = "softmax") -> Project:
    return Project.from_dict(
        {
            "format": "layerlab",
            "version": 1,
            "name": "iris",
            "graph": {
                "nodes": [
                    {"id": "input", "type": "Input", "params": {"shape": input_shape}},
                    {
                        "id": "out",
                        "type": "Dense",
                        "params": {"units": units, "activation": activation},
                    },
                ],
                "edges": [{"source": "input", "target": "out", "port": 0}],
            },
            "data": {"source": "builtin:iris", "validation_split": 0.3},
            "training": {"loss": "sparse_categorical_crossentropy", "epochs": 1},
        }
    )


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("LAYERLAB_RECOVERY_DIR", str(tmp_path / "recovery"))


def _window(qtbot, project: Project) -> MainWindow:
    w = MainWindow(project, load_tensorflow=False, check_recovery=False, use_settings=False)
    qtbot.addWidget(w, before_close_func=lambda w: w.undo_stack.set_clean())  # no Save? dialog
    w.show()
    qtbot.waitExposed(w)
    w.training_dock.show()
    w.training_dock.build()
    return w


def _rows(window: MainWindow) -> list[tuple[str, str]]:
    tree = window.problems
    return [
        (tree.topLevelItem(i).text(1), tree.topLevelItem(i).text(2))
        for i in range(tree.topLevelItemCount())
    ]


def test_data_that_does_not_fit_is_counted_and_fixed_in_one_click(qtbot):
    w = _window(qtbot, iris([8], 3))
    panel = w.training_dock.data_panel
    qtbot.waitUntil(lambda: panel.dataset is not None and bool(panel.fit_problems), timeout=20000)
    qtbot.waitUntil(lambda: "No problems" not in w.problems_label.text())
    assert "1 error" in w.problems_label.text()
    rows = _rows(w)
    assert ("input", rows[0][1]) == rows[0] and "does not fit" in rows[0][1], rows
    assert w.problems.fix_buttons, "a Fix button for the input shape"
    button = w.problems.fix_buttons[0]
    assert button.text() == "Set the Input shape to the data's (4,)"
    button.click()
    assert w.project.graph.nodes["input"].params["shape"] == [4]
    qtbot.waitUntil(lambda: not panel.fit_problems)
    qtbot.waitUntil(lambda: "No problems" in w.problems_label.text())
    assert w.undo_stack.undo_text == "Set the Input shape to the data's (4,)"
    w.act_undo.trigger()  # one undoable edit
    assert w.project.graph.nodes["input"].params["shape"] == [8]
    # in the Training view the list is hidden: the status bar's count, clicked, shows it
    w.set_perspective("train")
    qtbot.waitUntil(lambda: "1 error" in w.problems_label.text())
    assert not w.problems.isVisible()
    w.problems_label.linkActivated.emit("problems")
    assert w.perspective == "design" and w.problems.isVisible()
    assert w.bottom_tabs.currentWidget() is w.problems


def test_output_units_fix_sets_one_unit_per_class(qtbot):
    w = _window(qtbot, iris([4], 5))
    dock = w.training_dock
    panel = dock.data_panel
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=20000)
    dock.update_model(
        {
            "input": SimpleNamespace(output_shape=(None, 4)),
            "out": SimpleNamespace(output_shape=(None, 5)),
        }
    )
    qtbot.waitUntil(lambda: bool(w.problems.fix_buttons))
    assert ("out", _rows(w)[0][1]) == _rows(w)[0]
    button = w.problems.fix_buttons[0]
    assert button.text() == "Set the output units to the 3 classes"
    button.click()
    # only the units change: a lost softmax would leave the model untrainable with this loss
    assert w.project.graph.nodes["out"].params == {"units": 3, "activation": "softmax"}
    w.act_undo.trigger()
    assert w.project.graph.nodes["out"].params == {"units": 5, "activation": "softmax"}


def test_an_output_without_softmax_is_a_warning_fixed_in_one_click(qtbot):
    w = _window(qtbot, iris([4], 3, activation="linear"))
    panel = w.training_dock.data_panel
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=20000)
    qtbot.waitUntil(lambda: bool(w.problems.fix_buttons))
    node, text = _rows(w)[0]
    assert node == "out" and "has no softmax" in text
    assert "1 warning" in w.problems_label.text()
    button = w.problems.fix_buttons[0]
    assert button.text() == "Give 'out' the activation softmax"
    button.click()
    assert w.project.graph.nodes["out"].params == {"units": 3, "activation": "softmax"}
    qtbot.waitUntil(lambda: "No problems" in w.problems_label.text())
    w.act_undo.trigger()  # the warning comes back with the linear output
    qtbot.waitUntil(lambda: "1 warning" in w.problems_label.text())


def test_data_that_cannot_be_loaded_is_a_problem(qtbot, tmp_path):
    project = iris([4], 3)
    project.data = {"source": "csv", "path": str(tmp_path / "missing.csv"), "target": "y"}
    w = _window(qtbot, project)
    qtbot.waitUntil(lambda: bool(w.training_dock.data_panel.load_error), timeout=20000)
    qtbot.waitUntil(lambda: "No problems" not in w.problems_label.text())
    assert any("cannot be loaded" in text for _node, text in _rows(w))


def test_a_classifier_pointed_at_regression_data_is_fixed_in_three_clicks(qtbot, tmp_path):
    rows = "".join(f"{i},{i % 5},{i % 3},{i * 0.5 + 1}\n" for i in range(40))
    (tmp_path / "r.csv").write_text("a,b,c,price\n" + rows)
    project = iris([3], 3)  # Dense 3 softmax, sparse cross-entropy
    project.data = {"source": "csv", "path": str(tmp_path / "r.csv"), "task": "regression"}
    w = _window(qtbot, project)
    dock = w.training_dock
    qtbot.waitUntil(lambda: dock.data_panel.dataset is not None, timeout=20000)
    shapes = {"input": SimpleNamespace(output_shape=(None, 3))}
    dock.update_model({**shapes, "out": SimpleNamespace(output_shape=(None, 3))})
    qtbot.waitUntil(lambda: len(w.problems.fix_buttons) == 3)
    texts = [b.text() for b in w.problems.fix_buttons]
    assert texts == [
        "Use the loss mse and the metric mae",
        "Set the output units to 1",
        "Give 'out' the activation linear",
    ], (texts, _rows(w))
    assert "always 1" in _rows(w)[2][1]
    w.problems.fix_buttons[0].click()
    assert w.project.training == {"loss": "mse", "epochs": 1, "metrics": ["mae"]}
    qtbot.waitUntil(lambda: len(w.problems.fix_buttons) == 2)
    w.problems.fix_buttons[0].click()
    assert w.project.graph.nodes["out"].params == {"units": 1, "activation": "softmax"}
    dock.update_model({**shapes, "out": SimpleNamespace(output_shape=(None, 1))})
    qtbot.waitUntil(lambda: len(w.problems.fix_buttons) == 1)
    w.problems.fix_buttons[0].click()
    assert w.project.graph.nodes["out"].params == {"units": 1, "activation": "linear"}
    qtbot.waitUntil(lambda: "No problems" in w.problems_label.text())


def test_the_data_is_checked_before_the_training_tab_is_ever_shown(qtbot):
    w = MainWindow(iris([8], 3), load_tensorflow=False, check_recovery=False, use_settings=False)
    qtbot.addWidget(w, before_close_func=lambda w: w.undo_stack.set_clean())
    w.show()
    qtbot.waitExposed(w)
    assert not w.training_dock._built
    w.validation.tensorflow_ready.emit()  # the window is idle after start-up
    qtbot.waitUntil(lambda: "1 error" in w.problems_label.text(), timeout=20000)
    assert any("does not fit" in text for _node, text in _rows(w))
    assert not w.training_dock._built  # the views (and their plots) wait until shown
    w.training_dock.build()  # shown: the same data panel, not loaded again
    assert w.training_dock.data_panel.fit_problems and "1 error" in w.problems_label.text()
    assert w.training_dock.training_panel.train_samples == 105  # iris: 150, 30 % validation


def test_the_loss_fix_adds_a_metric_only_when_none_would_apply():
    from gui.training.data_problems import _task_loss

    regression = SimpleNamespace(task="regression", num_classes=None)
    classes = SimpleNamespace(task="classification", num_classes=3)
    assert _task_loss({"metrics": ["accuracy", "mae"]}, regression) == {"loss": "mse"}
    assert _task_loss({"metrics": ["accuracy"]}, regression) == {"loss": "mse", "metrics": ["mae"]}
    assert _task_loss({"loss": "mse", "metrics": ["mae"]}, classes) == {
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
    }
