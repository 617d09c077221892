"""The transfer-digits preset (a backbone pretrained on digits 0-4 ships in presets/,
a new head learns 5-9 offline) and the built-in digits' ``classes`` option it uses."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data.dataset import load_data
from engine.data.sources import DataError
from engine.model.project import load_project
from presets import presets_dir
from tests.engine.test_codegen import assert_same_data, generated_data

PRESET = presets_dir() / "transfer-digits.json"
WEIGHTS = presets_dir() / "transfer-digits-backbone.weights.h5"


def test_digits_classes_keeps_only_those_digits_as_classes_0_to_n():
    full = load_data({"source": "builtin:digits", "validation_split": 0.2})
    some = load_data({"source": "builtin:digits", "classes": [9, 5, 7], "validation_split": 0.2})
    assert some.num_classes == 3 and some.class_names == ["5", "7", "9"]
    everything = np.concatenate([some.parts["train"], some.parts["validation"]])
    assert len(everything) == int(np.isin(full.y, [5, 7, 9]).sum())
    assert set(np.unique(some.y)) == {0, 1, 2}
    # a "7" of the subset is a 7 of the full set: same pixels
    sevens_full = full.x[full.y == 7]
    sevens_some = some.x[some.y == 1]
    np.testing.assert_array_equal(sevens_full, sevens_some)


@pytest.mark.parametrize("bad", [[5], [5, 5], [3, 10], "5-9", [True, 2], 7])
def test_digits_classes_refuses_bad_values_naming_the_key(bad):
    with pytest.raises(DataError) as err:
        load_data({"source": "builtin:digits", "classes": bad})
    assert '"classes"' in str(err.value) and repr(bad) in str(err.value)


def test_generated_script_loads_the_same_digits_subset():
    section = {"source": "builtin:digits", "classes": [5, 6, 7, 8, 9], "validation_split": 0.9}
    assert_same_data(load_data(section), generated_data(section))


def test_preset_ships_a_small_weights_file_and_trains_offline_with_it(tmp_path, monkeypatch):
    import keras

    from engine.analysis.validation import validate
    from engine.build.backbone import OFFLINE_ENV
    from engine.build.builder import build_model
    from engine.train.fit import run_training

    assert WEIGHTS.stat().st_size < 1_500_000
    monkeypatch.setenv(OFFLINE_ENV, "1")
    project = load_project(PRESET)
    report = validate(project)
    assert report.valid and not report.problems
    assert report.trainable_params == 1_285  # only the new head learns
    pretrained = build_model(project).get_layer("backbone").get_weights()
    random = build_model(project, weights=False).get_layer("backbone").get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(pretrained, random))

    d = project.to_dict()
    d["training"]["tensorboard"] = False
    final = run_training(d, tmp_path / "run", epochs=1, base_dir=presets_dir())
    assert final["event"] == "done", final.get("message")
    trained = keras.models.load_model(tmp_path / "run" / "model.keras")
    after = trained.get_layer("backbone").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(pretrained, after))  # frozen: unchanged
