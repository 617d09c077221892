"""The evaluation view of real runs: confusion matrix counts, per-class metrics, the
gallery of misclassified digits, and the predicted-vs-true scatter for regression."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gui.training.evaluation_view import EvaluationView, wait_for_loaders


def project(nodes, data, loss, metrics, name) -> dict:
    edges = [{"source": a["id"], "target": b["id"], "port": 0} for a, b in zip(nodes, nodes[1:])]
    return {
        "format": "layerlab",
        "version": 1,
        "name": name,
        "graph": {"nodes": nodes, "edges": edges},
        "data": data,
        "training": {
            "optimizer": {"type": "Adam", "learning_rate": 0.01},
            "loss": loss,
            "metrics": metrics,
            "batch_size": 64,
            "epochs": 2,
            "seed": 0,
            "tensorboard": False,
        },
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Real runs made once: a small CNN on builtin:digits (images, 10 classes), a linear
    model on builtin:adding (regression) and one on builtin:iris (tabular classes)."""
    from engine.train.fit import run_training

    root = tmp_path_factory.mktemp("eval-runs")
    digits = project(
        [
            {"id": "input", "type": "Input", "params": {"shape": [8, 8, 1]}},
            {
                "id": "conv",
                "type": "Conv2D",
                "params": {"filters": 4, "kernel_size": 3, "activation": "relu"},
            },
            {"id": "flat", "type": "Flatten", "params": {}},
            {"id": "out", "type": "Dense", "params": {"units": 10, "activation": "softmax"}},
        ],
        {"source": "builtin:digits", "validation_split": 0.2},
        "sparse_categorical_crossentropy",
        ["accuracy"],
        "digits cnn",
    )
    adding = project(
        [
            {"id": "input", "type": "Input", "params": {"shape": [10, 2]}},
            {"id": "flat", "type": "Flatten", "params": {}},
            {"id": "out", "type": "Dense", "params": {"units": 1}},
        ],
        {"source": "builtin:adding", "validation_split": 0.2, "length": 10, "samples": 300},
        "mse",
        ["mae"],
        "adding",
    )
    iris = project(
        [
            {"id": "input", "type": "Input", "params": {"shape": [4]}},
            {"id": "out", "type": "Dense", "params": {"units": 3, "activation": "softmax"}},
        ],
        {"source": "builtin:iris", "validation_split": 0.3},
        "sparse_categorical_crossentropy",
        ["accuracy"],
        "iris",
    )
    out = {}
    for name, proj in (("digits", digits), ("adding", adding), ("iris", iris)):
        final = run_training(proj, root / name)
        assert final["event"] == "done", final
        out[name] = root / name
    return out


@pytest.fixture
def view(qtbot):
    widget = EvaluationView()
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    yield widget
    wait_for_loaders()


def evaluation(run: Path) -> dict:
    return json.loads((run / "evaluation.json").read_text())


def test_evaluation_view_confusion_matrix_and_per_class_metrics(view, runs, qtbot):
    details = evaluation(runs["digits"])["details"]
    with qtbot.waitSignal(view.samples_loaded, timeout=30_000):
        view.show_run(runs["digits"])
    assert view.confusion_counts() == details["confusion_matrix"]
    assert view.confusion_labels() == details["class_names"]
    rows = view.per_class_rows()
    assert len(rows) == len(details["per_class"]) + 1  # plus the average row
    for row, expected in zip(rows, details["per_class"]):
        assert row == [
            expected["class"],
            f"{expected['precision']:.3f}",
            f"{expected['recall']:.3f}",
            f"{expected['f1']:.3f}",
            str(expected["support"]),
        ]
    assert rows[-1][0] == "average" and rows[-1][-1] == str(details["samples"])
    cards = view.card_texts()
    accuracy = evaluation(runs["digits"])["validation"]["metrics"]["accuracy"]
    assert cards["validation accuracy"] == f"{accuracy:.3f}"


def test_evaluation_view_gallery_shows_the_misclassified_digits(view, runs, qtbot):
    details = evaluation(runs["digits"])["details"]
    cm = np.asarray(details["confusion_matrix"])
    wrong = int(cm.sum() - np.trace(cm))
    assert wrong > 0  # two epochs of a tiny CNN leave some mistakes to show
    with qtbot.waitSignal(view.samples_loaded, timeout=30_000):
        view.show_run(runs["digits"])
    captions = view.gallery_captions()
    assert len(captions) == min(wrong, 48)
    assert (
        f"{wrong} of {details['samples']} validation samples misclassified"
        in view.gallery_status.text()
    )
    pairs = [c.split(" → ") for c in captions]
    assert all(len(p) == 2 and p[0] != p[1] for p in pairs)
    # each (true, predicted) pair in the gallery is an off-diagonal cell of the matrix
    names = details["class_names"]
    for true, pred in pairs:
        assert cm[names.index(true), names.index(pred)] > 0
    assert not view.gallery.item(0).icon().isNull()


def test_evaluation_view_lists_tabular_mistakes_in_words(view, runs, qtbot):
    details = evaluation(runs["iris"])["details"]
    cm = np.asarray(details["confusion_matrix"])
    wrong = int(cm.sum() - np.trace(cm))
    assert wrong > 0  # a linear model after two epochs still confuses some flowers
    with qtbot.waitSignal(view.samples_loaded, timeout=30_000):
        view.show_run(runs["iris"])
    assert view.confusion_counts() == details["confusion_matrix"]
    lines = view.gallery_captions()
    assert len(lines) == min(wrong, 48)
    assert (
        f"{wrong} of {details['samples']} validation samples misclassified"
        in view.gallery_status.text()
    )
    for line in lines:  # "sample #12: setosa → versicolor (confidence 0.61)"
        true, pred = line.split(": ", 1)[1].split(" (")[0].split(" → ")
        assert true != pred and true in details["class_names"]


def test_evaluation_view_regression_scatter(view, runs, qtbot):
    ev = evaluation(runs["adding"])
    preds = ev["details"]["predictions"]
    view.show_run(runs["adding"])
    x, y = view.scatter_points()  # at once: evaluation.json's sample predictions
    assert list(x) == pytest.approx([p["true"] for p in preds])
    assert list(y) == pytest.approx([p["predicted"] for p in preds])
    qtbot.waitUntil(lambda: not view.is_loading(), timeout=30_000)
    x, y = view.scatter_points()  # then the whole validation split
    assert len(x) == ev["validation"]["samples"]
    assert np.sqrt(np.mean((y - x) ** 2)) == pytest.approx(ev["details"]["rmse"], rel=1e-3)
    assert "validation rmse" in view.card_texts()


def test_evaluation_view_of_a_failed_run_says_why(view, runs, tmp_path):
    failed = tmp_path / "failed"
    failed.mkdir()
    (failed / "project.json").write_text((runs["digits"] / "project.json").read_text())
    (failed / "status.json").write_text(
        json.dumps({"state": "failed", "message": "the loss became nan at epoch 1, step 3"})
    )
    view.show_run(failed)
    assert "the loss became nan at epoch 1, step 3" in view.message()


def test_evaluation_view_gallery_reports_unloadable_data(view, runs, tmp_path, qtbot):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("evaluation.json", "status.json"):
        (broken / name).write_text((runs["digits"] / name).read_text())
    snap = json.loads((runs["digits"] / "project.json").read_text())
    snap["data"] = {"source": "npz", "path": str(tmp_path / "gone.npz")}
    (broken / "project.json").write_text(json.dumps(snap))
    with qtbot.waitSignal(view.samples_loaded, timeout=30_000):
        view.show_run(broken)
    text = view.gallery_status.text()
    assert text.startswith("Could not load the samples:") and "gone.npz" in text
    assert "Traceback" not in text
    assert view.confusion_counts() == evaluation(runs["digits"])["details"]["confusion_matrix"]


def test_evaluation_view_refuses_a_mangled_evaluation_file(view, runs, tmp_path):
    mangled = tmp_path / "mangled"
    shutil.copytree(runs["digits"], mangled)
    ev = evaluation(mangled)
    ev["details"]["confusion_matrix"] = [[1, 2], [3]]  # ragged
    (mangled / "evaluation.json").write_text(json.dumps(ev))
    view.show_run(mangled)
    message = view.message()
    assert "evaluation.json cannot be shown" in message and str(mangled) in message
    assert "Traceback" not in message and view.card_texts() == {}
