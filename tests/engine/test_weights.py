"""An imported model's weights: training and export start from them, also after edits.

One small iris model is trained once for the module (through LayerLab itself, so the
data are preprocessed the same way), imported like `layerlab import` does, and then
trained, edited and exported.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.build.builder import build_model
from engine.build.weights import WeightsError, carry_weights, load_start_weights
from engine.io.export import export
from engine.io.importing.rebuild import import_model
from engine.model.project import Project
from engine.train.fit import run_training
from tests.engine.test_training import dense_project

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> tuple[Path, dict, object]:
    """(folder, the imported project's dict with data and training, the source model)."""
    folder = tmp_path_factory.mktemp("imported")
    source = dense_project({"epochs": 40})
    final = run_training(source, folder / "source-run")
    assert final["event"] == "done", final
    model_file = folder / "source-run" / "model.keras"
    project = import_model(model_file, weights_out=folder / "imported.weights.h5")
    data = project.to_dict()
    data["data"] = source["data"]
    data["training"] = {
        **source["training"],
        "epochs": 1,
        "optimizer": {"type": "SGD", "learning_rate": 1e-6},
    }
    return folder, data, keras.models.load_model(model_file)


def batch() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((6, 4)).astype("float32")


def val_accuracy(events: list[dict]) -> float:
    return next(e for e in events if e["event"] == "epoch")["logs"]["val_accuracy"]


def test_training_an_imported_model_starts_from_its_weights(imported, tmp_path):
    folder, data, _source = imported
    events: list[dict] = []
    final = run_training(data, tmp_path / "run", base_dir=folder, emit=events.append)
    assert final["event"] == "done", final
    started = next(e for e in events if e["event"] == "started")
    assert started["notes"] == ["the model starts from the imported weights in imported.weights.h5"]
    fresh = copy.deepcopy(data)
    del fresh["weights"]
    fresh_events: list[dict] = []
    run_training(fresh, tmp_path / "fresh", base_dir=folder, emit=fresh_events.append)
    # a learning rate of 1e-6 changes nothing in one epoch: the accuracy is the import's
    assert val_accuracy(events) >= 0.85
    assert val_accuracy(events) > val_accuracy(fresh_events) + 0.2


def test_after_edits_unchanged_layers_keep_their_weights_by_name(imported):
    folder, data, source = imported
    project = Project.from_dict(copy.deepcopy(data), path=folder / "p.json")
    graph = project.graph
    out_edge = graph.inputs_of("out")[0]
    graph.disconnect(out_edge)
    from engine.model.graph import Edge, Node

    graph.add_node(Node("added", "Dense", {"units": 16, "activation": "relu"}))
    graph.connect(Edge("hidden", "added", 0))
    graph.connect(Edge("added", "out", 0))
    model = build_model(project)
    loaded = load_start_weights(model, project)
    assert loaded.loaded == ["hidden", "out"] and loaded.fresh == ["added"]
    for name in ("hidden", "out"):
        for got, want in zip(
            model.get_layer(name).get_weights(), source.get_layer(name).get_weights()
        ):
            np.testing.assert_array_equal(got, want)
    assert loaded.message() == (
        "2 layers start from the imported weights in "
        "imported.weights.h5; 'added' (changed since the import) "
        "start fresh"
    )

    graph.set_params("hidden", {"units": 8, "activation": "relu"})
    narrower = load_start_weights(build_model(project), project)
    assert narrower.fresh == ["hidden", "added"] and narrower.loaded == ["out"]


def test_a_missing_weights_file_is_named_and_training_goes_on_fresh(imported, tmp_path):
    folder, data, _source = imported
    moved = copy.deepcopy(data)
    moved["weights"] = "gone.weights.h5"
    project = Project.from_dict(copy.deepcopy(moved), path=folder / "p.json")
    with pytest.raises(
        WeightsError, match="gone.weights.h5: the project's weights file is missing"
    ):
        load_start_weights(build_model(project), project)
    events: list[dict] = []
    final = run_training(moved, tmp_path / "run", base_dir=folder, emit=events.append)
    assert final["event"] == "done"
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert any(
        "gone.weights.h5: the project's weights file is missing; the model starts "
        "from fresh weights" in w
        for w in warnings
    ), warnings


def test_exports_of_an_imported_project_carry_its_weights(imported, tmp_path):
    folder, data, source = imported
    project = Project.from_dict(copy.deepcopy(data), path=folder / "p.json")
    result = export(project, "keras", tmp_path / "model.keras")
    assert result.verified and "starts from the imported weights" in result.message
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded(batch()), source(batch()), atol=1e-6)

    script = export(project, "python", tmp_path / "model.py")
    assert script.verified and script.weights == tmp_path / "model.weights.h5"


def test_a_weights_file_of_another_model_is_refused_by_name(imported, tmp_path):
    folder, data, _source = imported
    other = copy.deepcopy(data)
    other["weights"] = "other.weights.h5"
    shutil.copy(folder / "source-run" / "model.keras", tmp_path / "other.weights.h5")
    project = Project.from_dict(other, path=tmp_path / "p.json")
    with pytest.raises(WeightsError, match="other.weights.h5: not a weights file"):
        load_start_weights(build_model(project), project)


def test_save_as_keeps_the_weights_file_beside_the_project(imported, tmp_path):
    folder, data, _source = imported
    project = Project.from_dict(copy.deepcopy(data), path=folder / "p.json")
    assert carry_weights(project, folder / "renamed.json") == folder / "imported.weights.h5"
    assert project.extra["weights"] == "imported.weights.h5", "same folder: no copy"
    elsewhere = tmp_path / "elsewhere" / "copy.json"
    elsewhere.parent.mkdir()
    assert carry_weights(project, elsewhere) == elsewhere.parent / "copy.weights.h5"
    assert project.extra["weights"] == "copy.weights.h5"
    assert (elsewhere.parent / "copy.weights.h5").read_bytes() == (
        folder / "imported.weights.h5"
    ).read_bytes()


def test_imported_weights_false_trains_and_exports_from_fresh_weights(imported, tmp_path):
    folder, data, source = imported
    fresh = copy.deepcopy(data)
    fresh["training"]["imported_weights"] = False
    events: list[dict] = []
    final = run_training(fresh, tmp_path / "run", base_dir=folder, emit=events.append)
    assert final["event"] == "done"
    assert next(e for e in events if e["event"] == "started")["notes"] == []
    project = Project.from_dict(copy.deepcopy(fresh), path=folder / "p.json")
    result = export(project, "keras", tmp_path / "fresh.keras")
    assert "imported weights" not in result.message
    reloaded = keras.models.load_model(tmp_path / "fresh.keras")
    assert not np.allclose(reloaded(batch()), source(batch()), atol=1e-3)
