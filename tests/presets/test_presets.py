"""Every preset loads, validates with no problems, builds, and the trainable ones train.

The reference-size presets must match keras.applications parameter for parameter
(counted by shape inference, which needs no weights). The small presets train one
epoch each in this process, the way ``layerlab train`` would.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import re
from pathlib import Path

import pytest

from engine.model.project import load_project

PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets"
PRESET_FILES = sorted(PRESETS_DIR.glob("*.json"))
IDS = [p.stem for p in PRESET_FILES]
MAKE_PRESETS = Path(__file__).resolve().parents[2] / "bench" / "make_presets.py"

#: The gallery the preset issue asks for.
GALLERY = {
    "lenet5",
    "mlp",
    "vgg16",
    "vgg19",
    "resnet18",
    "resnet50",
    "resnet101",
    "alexnet",
    "googlenet",
    "alexnet-mini",
    "vgg-mini",
    "inception-mini",
    "resnet-mini",
    "residual-mlp",
    "plain-deep-mlp",
    "lstm-digits",
    "gru-digits",
    "adding-simple-rnn",
    "adding-lstm",
    "playground",
    "augmentation",
    "batchnorm-dropout",
}

#: keras.applications.<Model>(weights=None).count_params().
KERAS_APPLICATIONS_PARAMS = {
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "resnet50": 25_636_712,
    "resnet101": 44_707_176,
}


def _trainable(path: Path) -> bool:
    """Presets meant to train here: those on built-in data (the rest point at image folders)."""
    return str(load_project(path).data.get("source", "")).startswith("builtin:")


TRAINABLE = [p for p in PRESET_FILES if _trainable(p)]


@functools.cache
def report_of(path: Path):
    """engine.analysis.validation's report for a preset (shape inference; computed once per file)."""
    from engine.analysis.validation import validate

    return validate(load_project(path))


def test_presets_gallery_is_complete() -> None:
    assert GALLERY <= set(IDS), f"missing presets: {sorted(GALLERY - set(IDS))}"
    assert all(stem == stem.lower() and "_" not in stem for stem in IDS)


def test_presets_match_their_generator() -> None:
    """bench/make_presets.py rewrites exactly the committed files (no hand edits drift)."""
    spec = importlib.util.spec_from_file_location("make_presets", MAKE_PRESETS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.PRESETS) == set(IDS)
    for name, make in module.PRESETS.items():
        text = (PRESETS_DIR / f"{name}.json").read_text(encoding="utf-8")
        assert module.dumps(make()) == text, f"{name}.json differs from make_presets.py"


@pytest.mark.parametrize("path", PRESET_FILES, ids=IDS)
def test_preset_loads_and_explains_itself(path: Path) -> None:
    project = load_project(path)
    assert project.name.strip()
    assert len(project.description.split()) >= 30, "the description should teach something"
    assert "Try" in project.description
    assert project.graph.output_nodes()
    assert sum(n.type == "Input" for n in project.graph.nodes.values()) == 1


@pytest.mark.parametrize("path", PRESET_FILES, ids=IDS)
def test_preset_layout_flows_down_without_overlaps(path: Path) -> None:
    graph = load_project(path).graph
    positions = [tuple(n.position) for n in graph.nodes.values()]
    assert len(set(positions)) == len(positions), "two nodes sit on the same spot"
    for e in graph.edges:
        src, dst = graph.nodes[e.source].position, graph.nodes[e.target].position
        assert dst[1] > src[1], f"{e.source} -> {e.target} points upwards"


@pytest.mark.parametrize("path", PRESET_FILES, ids=IDS)
def test_preset_validates_with_no_problems(path: Path) -> None:
    from engine.train.config import training_problems

    project = load_project(path)
    report = report_of(path)
    assert report.valid
    assert [str(p) for p in report.problems] == []
    assert training_problems(project.training) == []
    assert report.total_params > 0


@pytest.mark.parametrize("name", sorted(KERAS_APPLICATIONS_PARAMS))
def test_preset_counts_equal_keras_applications(name: str) -> None:
    report = report_of(PRESETS_DIR / f"{name}.json")
    assert report.total_params == KERAS_APPLICATIONS_PARAMS[name]


def test_reference_presets_are_imagenet_sized() -> None:
    for name in ("vgg16", "vgg19", "resnet18", "resnet50", "resnet101", "alexnet", "googlenet"):
        report = report_of(PRESETS_DIR / f"{name}.json")
        shapes = {info.id: info.output_shape for info in report.layers}
        assert tuple(shapes["input"]) == (None, 224, 224, 3), name
        assert tuple(shapes["predictions"]) == (None, 1000), name
    assert 60_000_000 < report_of(PRESETS_DIR / "alexnet.json").total_params < 62_000_000


def test_readme_lists_every_preset_with_its_parameter_count() -> None:
    text = (PRESETS_DIR / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z0-9-]+)` \| [^|]+ \| ([\d,]+) \|", text, re.M))
    assert set(rows) == set(IDS)
    for path in PRESET_FILES:
        assert int(rows[path.stem].replace(",", "")) == report_of(path).total_params, path.stem


#: Above this many parameters a build only shapes the weights (VGG would allocate 0.6 GB).
REAL_BUILD_LIMIT = 100_000_000


@pytest.mark.parametrize("path", PRESET_FILES, ids=IDS)
def test_preset_builds_the_model_validation_describes(path: Path) -> None:
    import keras

    from engine.build.builder import build_model

    project = load_project(path)
    report = report_of(path)
    try:
        if report.total_params > REAL_BUILD_LIMIT:
            with keras.StatelessScope(initialize_variables=False):
                model = build_model(project)
        else:
            model = build_model(project)
        assert model.count_params() == report.total_params
        assert set(project.graph.nodes) <= {layer.name for layer in model.layers}
        assert len(model.outputs) == len(project.graph.output_nodes())
    finally:
        keras.backend.clear_session()


@pytest.mark.slow
@pytest.mark.parametrize("path", TRAINABLE, ids=[p.stem for p in TRAINABLE])
def test_trainable_preset_trains_one_epoch(path: Path, tmp_path: Path) -> None:
    from engine.train.fit import run_training

    project = load_project(path).to_dict()
    project["training"]["tensorboard"] = False
    if "samples" in project["data"]:  # generated data: a smaller set is enough here
        project["data"]["samples"] = min(project["data"]["samples"], 400)
    final = run_training(project, tmp_path / "run", epochs=1, base_dir=PRESETS_DIR)
    assert final["event"] == "done", final.get("message")
    assert final["epochs_done"] == 1
    logs = final["history"]
    assert all(math.isfinite(v[-1]) for v in logs.values())
    assert "val_loss" in logs
    assert (tmp_path / "run" / "model.keras").exists()
