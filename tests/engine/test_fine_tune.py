"""Fine-tuning in two phases (issue 14): the training section's ``fine_tune`` option.

A tiny "pretrained" model (Input(4) -> Dense base_1 -> Dense base_2 -> Dense head, both
base layers frozen) is saved by the test and imported, so every layer's start weights
are known; runs on iris last 3-4 epochs. A nested model (a Sequential "backbone" with
a BatchNormalization inside a functional model) checks what phase 2 unfreezes when
layers sit inside a model. TensorFlow starts once for the module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.codegen.script import generate
from engine.io.importing.rebuild import import_model
from engine.model.project import Project
from engine.train import callbacks as callbacks_module
from engine.train.callbacks import Controls
from engine.train.config import fine_tune_of, training_problems
from engine.train.fine_tune import unfreeze
from engine.train.fit import run_training
from engine.train.runs import read_json

LR, FACTOR = 0.05, 0.1

# ------------------------------------------------------------------ the option's checks


@pytest.mark.parametrize(
    ("fine_tune", "words"),
    [
        ({"after_epoch": 4}, "after_epoch must be a whole number >= 1 and below epochs (4)"),
        ({"after_epoch": 0}, "after_epoch must be a whole number >= 1"),
        ({"after_epoch": 1.5}, "got 1.5"),
        ({"unfreeze": "some"}, 'fine_tune unfreeze must be "all" or a whole number >= 1'),
        ({"unfreeze": 0}, "fine_tune unfreeze must be"),
        ({"learning_rate_factor": 2}, "learning_rate_factor must be a number > 0 and <= 1"),
        ({"learning_rate_factor": 0}, "learning_rate_factor must be a number > 0"),
        ({"factor": 0.1}, "fine_tune has no key 'factor'; it takes after_epoch, unfreeze"),
        ("yes", "fine_tune must be an object"),
    ],
)
def test_a_bad_fine_tune_option_is_refused_by_name(fine_tune, words):
    problems = training_problems({"epochs": 4, "fine_tune": fine_tune})
    assert len(problems) == 1 and words in problems[0], problems


def test_good_fine_tune_options_and_their_defaults():
    assert training_problems({"epochs": 4, "fine_tune": {}}) == []
    assert training_problems({"epochs": 4, "fine_tune": None}) == []
    assert training_problems({"epochs": 1, "fine_tune": {}}) == [
        "fine_tune needs at least 2 epochs (one per phase); epochs is 1"
    ]
    assert fine_tune_of({"epochs": 10, "fine_tune": {}}) == {
        "after_epoch": 5,
        "unfreeze": "all",
        "learning_rate_factor": 0.1,
    }
    assert fine_tune_of({"epochs": 10}) is None
    cluster = {"workers": ["localhost:12345"]}
    assert training_problems({"epochs": 4, "fine_tune": {}, "cluster": cluster}) == [
        "fine_tune works in runs on this machine only, not on a cluster yet; "
        "remove one of fine_tune and cluster"
    ]


def test_the_command_line_names_a_bad_option(tmp_path, capsys):
    """As every training setting: `validate` lists it (exit 1), `train` fails with it
    before TensorFlow trains anything (exit 1), never a traceback."""
    from engine.cli.main import main

    project = tiny_project_dict({"epochs": 3, "fine_tune": {"unfreeze": -1}})
    path = tmp_path / "p.json"
    path.write_text(json.dumps(project))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert 'training: fine_tune unfreeze must be "all" or a whole number >= 1' in out
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "fine_tune unfreeze must be" in err and "Traceback" not in err


# ------------------------------------------------------------------------------ fixtures

FROZEN = ("base_1", "base_2")


def tiny_project_dict(training: dict) -> dict:
    return {
        "format": "layerlab",
        "version": 1,
        "name": "tiny",
        "graph": {
            "nodes": [
                {"id": "x", "type": "Input", "params": {"shape": [4]}, "position": [0, 0]},
                {
                    "id": "out",
                    "type": "Dense",
                    "params": {"units": 3, "activation": "softmax"},
                    "position": [0, 100],
                },
            ],
            "edges": [{"source": "x", "target": "out", "port": 0}],
        },
        "data": {"source": "builtin:iris", "validation_split": 0.2},
        "training": training,
    }


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> tuple[Path, dict[str, list[np.ndarray]]]:
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,), name="features")
    x = keras.layers.Dense(8, activation="relu", name="base_1")(inputs)
    x = keras.layers.Dense(8, activation="relu", name="base_2")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs, name="tiny_pretrained")
    for name in FROZEN:
        model.get_layer(name).trainable = False
    path = tmp_path_factory.mktemp("src") / "pretrained.keras"
    model.save(path)
    return path, {layer.name: layer.get_weights() for layer in model.layers}


def project_of(pretrained, folder: Path, **training) -> Project:
    project = import_model(pretrained[0], weights_out=folder / "tiny.weights.h5")
    project.data = {"source": "builtin:iris", "validation_split": 0.2}
    project.training.update(
        {
            "epochs": 4,
            "batch_size": 16,
            "seed": 0,
            "optimizer": {"type": "Adam", "learning_rate": LR},
            "fine_tune": {"after_epoch": 2, "unfreeze": 1, "learning_rate_factor": FACTOR},
            **training,
        }
    )
    return project


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def events_of(run_dir: Path) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


# ------------------------------------------------------------------------- whole runs


def test_phase_two_changes_only_the_unfrozen_top_at_the_lower_rate(pretrained, tmp_path):
    import keras

    seen: list[dict] = []
    project = project_of(pretrained, tmp_path)
    final = run_training(project.to_dict(), tmp_path / "run", base_dir=tmp_path, emit=seen.append)
    assert final["event"] == "done", final
    start = pretrained[1]
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    # base_1 stays frozen through both phases; base_2 (the frozen layer nearest the
    # output) learns in phase 2 only; the head learns throughout
    assert same(start["base_1"], model.get_layer("base_1").get_weights())
    assert not same(start["base_2"], model.get_layer("base_2").get_weights())
    assert not same(start["head"], model.get_layer("head").get_weights())
    assert model.get_layer("base_2").trainable and not model.get_layer("base_1").trainable

    # one history of 4 epochs, the rate x factor from epoch 3 on
    history = final["history"]
    assert len(history["loss"]) == 4
    assert history["learning_rate"] == pytest.approx([LR, LR, LR * FACTOR, LR * FACTOR])
    assert final["fine_tune_from"] == 3
    assert read_json(tmp_path / "run" / "status.json")["fine_tune_from"] == 3
    assert read_json(tmp_path / "run" / "checkpoints" / "state.json")["phase"] == 2

    # the phase change is an event (in events.jsonl too), and each epoch says its phase
    phase = [e for e in seen if e["event"] == "phase"]
    assert phase == [
        {
            "event": "phase",
            "phase": 2,
            "epoch": 3,
            "reason": "after_epoch",
            "unfrozen": ["base_2"],
            "learning_rate": pytest.approx(LR * FACTOR),
        }
    ]
    assert [e for e in events_of(tmp_path / "run") if e["event"] == "phase"][0]["epoch"] == 3
    epochs = [e for e in seen if e["event"] == "epoch"]
    assert [e["phase"] for e in epochs] == [1, 1, 2, 2]
    assert [e.get("fine_tune_from") for e in epochs] == [None, None, 3, 3]
    started = next(e for e in seen if e["event"] == "started")
    assert started["fine_tune"]["after_epoch"] == 2 and started["fine_tune"]["phase"] == 1


def test_unfreeze_all_and_no_fine_tune_leave_the_run_as_before(pretrained, tmp_path):
    import keras

    project = project_of(
        pretrained, tmp_path, epochs=3, fine_tune={"after_epoch": 1, "unfreeze": "all"}
    )
    final = run_training(project.to_dict(), tmp_path / "all", base_dir=tmp_path)
    assert final["event"] == "done", final
    model = keras.models.load_model(tmp_path / "all" / "model.keras")
    for name in FROZEN:
        assert not same(pretrained[1][name], model.get_layer(name).get_weights())
    assert final["history"]["learning_rate"] == pytest.approx([LR, LR * 0.1, LR * 0.1])

    project.training.pop("fine_tune")
    final = run_training(project.to_dict(), tmp_path / "plain", base_dir=tmp_path)
    assert "fine_tune_from" not in final
    assert "phase" not in read_json(tmp_path / "plain" / "checkpoints" / "state.json")


def test_early_stopping_in_phase_one_moves_to_phase_two_which_it_ends(pretrained, tmp_path):
    seen: list[dict] = []
    # no epoch improves by 100: Keras's EarlyStopping stops each fit at its 2nd epoch
    project = project_of(
        pretrained,
        tmp_path,
        epochs=6,
        fine_tune={"after_epoch": 4, "unfreeze": 1},
        early_stopping={"patience": 0, "min_delta": 100, "monitor": "val_loss"},
    )
    final = run_training(project.to_dict(), tmp_path / "run", base_dir=tmp_path, emit=seen.append)
    assert final["event"] == "done", final
    phase = next(e for e in seen if e["event"] == "phase")
    assert phase["reason"] == "early_stopping" and phase["epoch"] == 3
    assert final["fine_tune_from"] == 3
    assert final["epochs_done"] == 4  # phase 2's early stop ended the run (of 6 epochs)
    assert len(final["history"]["loss"]) == 4


def test_resume_in_phase_two_goes_on_in_phase_two(pretrained, tmp_path, monkeypatch):
    import keras

    monkeypatch.setattr(callbacks_module, "CHECKPOINT_INTERVAL_S", 0.0)
    controls = Controls()

    def emit(event: dict) -> None:  # stop at the end of epoch 3, the first of phase 2
        if event["event"] == "epoch" and event["epoch"] == 3:
            controls.stop.set()

    project = project_of(pretrained, tmp_path)
    run_dir = tmp_path / "run"
    first = run_training(
        project.to_dict(), run_dir, base_dir=tmp_path, emit=emit, controls=controls
    )
    assert first["event"] == "done" and first["stopped"] and first["epochs_done"] == 3
    state = read_json(run_dir / "checkpoints" / "state.json")
    assert (state["epoch"], state["phase"], state["fine_tune_from"]) == (3, 2, 3)
    at_stop = keras.models.load_model(run_dir / "checkpoints" / "last.keras")

    seen: list[dict] = []
    final = run_training(
        project.to_dict(), run_dir, base_dir=tmp_path, resume=True, emit=seen.append
    )
    assert final["event"] == "done", final
    assert not any(e["event"] == "phase" for e in seen)  # no second switch
    assert [e["phase"] for e in seen if e["event"] == "epoch"] == [2]
    started = next(e for e in seen if e["event"] == "started")
    assert started["fine_tune"]["phase"] == 2 and started["fine_tune"]["from_epoch"] == 3
    assert final["history"]["learning_rate"] == pytest.approx([LR, LR, LR * FACTOR, LR * FACTOR])
    assert final["fine_tune_from"] == 3
    model = keras.models.load_model(run_dir / "model.keras")
    assert same(pretrained[1]["base_1"], model.get_layer("base_1").get_weights())
    assert not same(
        at_stop.get_layer("base_2").get_weights(), model.get_layer("base_2").get_weights()
    )


# ----------------------------------------------------------------------- nested models


def nested_model():
    """Input(4) -> backbone (a Sequential: Dense a, BatchNormalization bn, Dense b),
    frozen as a whole -> Dense head: a keras.applications network in miniature."""
    import keras

    keras.utils.set_random_seed(2)
    backbone = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(6, name="a"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Dense(6, activation="relu", name="b"),
        ],
        name="backbone",
    )
    backbone.trainable = False
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(backbone(inputs))
    return keras.Model(inputs, outputs)


def test_unfreeze_counts_layers_of_a_nested_model_and_skips_batchnorm(tmp_path):
    import keras

    model = nested_model()
    backbone = model.get_layer("backbone")
    assert len(model.trainable_weights) == 2  # the head
    # the 1 frozen layer nearest the output is b, inside the backbone
    assert unfreeze(model, 1) == ["b"]
    assert backbone.trainable
    flags = {layer.name: layer.trainable for layer in backbone.layers}
    assert flags == {"a": False, "bn": False, "b": True}
    assert len(model.trainable_weights) == 4  # head and b

    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in backbone.layers}
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(64, 4)), rng.integers(0, 3, 64), epochs=1, verbose=0)
    assert same(before["a"], backbone.get_layer("a").get_weights())
    assert same(before["bn"], backbone.get_layer("bn").get_weights())  # inference mode
    assert not same(before["b"], backbone.get_layer("b").get_weights())

    # what a checkpoint keeps for a resume: the same trainable set
    model.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    nested = again.get_layer("backbone")
    assert {layer.name: layer.trainable for layer in nested.layers} == flags
    assert len(again.trainable_weights) == 4

    model = nested_model()
    assert unfreeze(model, "all") == ["a", "b"]  # BatchNormalization stays frozen
    assert not model.get_layer("backbone").get_layer("bn").trainable
    assert len(model.trainable_weights) == 6
    assert unfreeze(nested_model(), 5) == ["a", "b"]


# --------------------------------------------------------------------- generated script


def test_generated_script_trains_in_two_phases(pretrained, tmp_path):
    project = project_of(pretrained, tmp_path, epochs=3)
    script = tmp_path / "train_tiny.py"
    script.write_text(generate(project))
    text = script.read_text()
    assert "initial_epoch=done" in text and "LEARNING_RATE_FACTOR = 0.1" in text
    lint = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--isolated",
            "--select",
            "F,E9",
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    out = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path / "m.keras")],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "phase 1: trained 2 epochs" in out.stdout, out.stdout
    assert "phase 2: unfroze base_2" in out.stdout, out.stdout
    assert "phase 2: trained 1 epochs" in out.stdout, out.stdout
    import keras

    model = keras.models.load_model(tmp_path / "m.keras")
    assert model.get_layer("base_2").trainable and not model.get_layer("base_1").trainable
    assert float(model.optimizer.learning_rate) == pytest.approx(LR * FACTOR)


def test_the_command_line_says_when_fine_tuning_begins():
    import io

    from engine.cli.train import HumanReporter

    out, err = io.StringIO(), io.StringIO()
    HumanReporter(out, err)(
        {
            "event": "phase",
            "phase": 2,
            "epoch": 4,
            "reason": "after_epoch",
            "unfrozen": ["b", "c"],
            "learning_rate": 0.0001,
        }
    )
    assert out.getvalue() == "fine-tuning from epoch 4: 2 layer(s) unfrozen, learning rate 0.0001\n"
