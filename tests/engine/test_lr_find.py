"""The learning-rate finder (``layerlab lr-find``): its suggestion on the mlp preset lies
within a factor of 10 of the rate that trains best in a small sweep."""

from __future__ import annotations

import json
import math

from engine.cli.main import main
from engine.data.dataset import labels_for_loss
from engine.model.project import load_project
from engine.train.fit import build_snapshot_model, load_dataset
from engine.tune.lr_find import suggest
from presets import presets_dir


def test_the_suggestion_on_a_made_up_curve_is_its_steepest_descent():
    lrs = [10 ** (-6 + i * 0.1) for i in range(50)]
    # flat, then falling fastest around 1e-3 (i = 30), lowest at i = 40, then exploding
    losses = [2.0 - math.tanh((i - 30) / 4) if i <= 40 else 1.0 + (i - 40) for i in range(50)]
    result = suggest(lrs, losses)
    assert result["method"] == "steepest"
    assert math.isclose(result["suggested_lr"], lrs[30], rel_tol=1e-9)
    flat = suggest(lrs[:12], [1.0] * 12)  # too few points before the minimum
    assert flat["method"] == "min_loss/10" and flat["suggested_lr"] == lrs[0] / 10


def test_the_lr_finder_suggestion_is_within_10x_of_the_best_rate_of_a_sweep(capsys):
    path = presets_dir() / "mlp.json"
    assert main(["lr-find", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result) >= {"suggested_lr", "lrs", "losses"}
    assert len(result["lrs"]) == len(result["losses"]) > 20
    assert result["lrs"] == sorted(result["lrs"])

    import keras

    project = load_project(path).to_dict()
    ds = load_dataset(project, path.parent)
    y = labels_for_loss(ds.y_train, "sparse_categorical_crossentropy", ds.num_classes)
    y_val = labels_for_loss(ds.y_val, "sparse_categorical_crossentropy", ds.num_classes)
    scores = {}
    for lr in (1e-4, 1e-3, 1e-2, 1e-1, 1.0):
        keras.utils.set_random_seed(0)
        model = build_snapshot_model(project)
        model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy")
        model.fit(ds.x_train, y, batch_size=32, epochs=2, verbose=0)
        scores[lr] = model.evaluate(ds.x_val, y_val, verbose=0)
    best = min(scores, key=scores.get)
    assert best / 10 <= result["suggested_lr"] <= best * 10, (result["suggested_lr"], scores)
