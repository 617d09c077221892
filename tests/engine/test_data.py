"""The data engine: built-in sets, CSV/NPZ/image sources, splits, standardisation, fit checks.

Only the image-folder and tf.data tests start TensorFlow (once for the module).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.data.dataset import (
    Dataset,
    check_fit,
    labels_for_loss,
    load_data,
    make_tf_dataset,
)
from engine.data.sources import BUILTINS, DataError

# --------------------------------------------------------------------------- helpers


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def csv_section(path: Path, **keys) -> dict:
    return {"source": "csv", "path": str(path), "validation_split": 0.25, **keys}


@pytest.fixture(scope="module")
def tf():
    tensorflow = pytest.importorskip("tensorflow")
    return tensorflow


def write_png(tf, path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(pixels.astype(np.uint8)).numpy())


# --------------------------------------------------------------------------- built-ins

EXPECTED = {
    "digits": ((8, 8, 1), 10),
    "digits-rows": ((8, 8), 10),
    "iris": ((4,), 3),
    "wine": ((13,), 3),
    "breast_cancer": ((30,), 2),
    "moons": ((2,), 2),
    "circles": ((2,), 2),
    "spirals": ((2,), 2),
    "xor": ((2,), 2),
}


def test_builtins_table_lists_every_builtin_with_a_description():
    assert set(BUILTINS) == set(EXPECTED) | {"adding"}
    assert all(isinstance(text, str) and text and "\n" not in text for text in BUILTINS.values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_classification_sets_load_with_their_shapes_and_classes(name):
    shape, classes = EXPECTED[name]
    data = load_data({"source": f"builtin:{name}"})
    assert data.task == "classification"
    assert data.input_shape == shape
    assert data.x_train.shape[1:] == shape and data.x_val.shape[1:] == shape
    assert data.num_classes == classes == len(data.class_names)
    assert set(np.unique(data.y_train)) == set(range(classes))
    assert data.x_train.dtype == np.float32 and data.y_train.dtype.kind == "i"
    total = len(data.x_train) + len(data.x_val)
    assert len(data.x_val) == round(total * 0.2)
    assert data.x_test is None and data.y_test is None


def test_builtin_digits_are_pixels_in_0_1_and_rows_are_the_same_images():
    images = load_data({"source": "builtin:digits"})
    rows = load_data({"source": "builtin:digits-rows"})
    assert images.mean is None  # images are not standardised by default
    assert images.x_train.min() == 0.0 and images.x_train.max() == 1.0
    np.testing.assert_array_equal(images.x_train[..., 0], rows.x_train)
    np.testing.assert_array_equal(images.y_train, rows.y_train)


def test_builtin_adding_problem_targets_are_the_sum_of_the_two_marked_values():
    data = load_data({"source": "builtin:adding", "length": 12, "samples": 60})
    assert data.task == "regression" and data.num_classes == 0
    assert data.input_shape == (12, 2)
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    assert len(x) == 60 and y.shape == (60, 1)
    markers = x[:, :, 1]
    assert np.all(markers.sum(axis=1) == 2) and set(np.unique(markers)) == {0.0, 1.0}
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * markers).sum(axis=1), rtol=1e-5)
    assert load_data({"source": "builtin:adding"}).input_shape == (50, 2)


def test_builtin_xor_class_is_whether_the_coordinates_differ_in_sign():
    data = load_data({"source": "builtin:xor", "standardize": False})
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] < 0).astype(int))
    assert 0.35 < y.mean() < 0.65


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtins_are_reproducible_for_a_seed_and_change_with_it(name):
    a = load_data({"source": f"builtin:{name}", "seed": 3})
    b = load_data({"source": f"builtin:{name}", "seed": 3})
    c = load_data({"source": f"builtin:{name}", "seed": 4})
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.x_val, c.x_val)


def test_generated_sets_take_samples_and_noise_keys():
    data = load_data({"source": "builtin:moons", "samples": 50, "noise": 0.0, "standardize": False})
    x = np.concatenate([data.x_train, data.x_val])
    assert len(x) == 50
    upper = np.concatenate([data.y_train, data.y_val]) == 0
    np.testing.assert_allclose(np.hypot(x[upper, 0], x[upper, 1]), 1.0, atol=1e-6)


def test_unknown_builtin_lists_the_valid_names():
    with pytest.raises(DataError) as err:
        load_data({"source": "builtin:mnist"})
    message = str(err.value)
    assert "builtin:mnist" in message
    assert all(f"builtin:{name}" in message for name in BUILTINS)


def test_unknown_source_and_missing_source_are_named():
    with pytest.raises(DataError, match="'parquet'.*csv, npz, images"):
        load_data({"source": "parquet"})
    with pytest.raises(DataError, match='"source" is missing'):
        load_data({"validation_split": 0.2})


# --------------------------------------------------------------------------- splits


@pytest.mark.parametrize(
    "keys, fragment",
    [
        ({"validation_split": 1.5}, "validation_split.*1.5"),
        ({"validation_split": -0.1}, "validation_split.*-0.1"),
        ({"validation_split": "0.2"}, "validation_split.*'0.2'"),
        ({"test_split": 1}, "test_split.*1"),
        ({"validation_split": 0.6, "test_split": 0.4}, "0.6.*0.4.*no training data"),
        ({"seed": -1}, '"seed".*-1'),
        ({"standardize": "yes"}, '"standardize".*yes'),
    ],
)
def test_bad_split_and_section_values_name_the_key_and_value(keys, fragment):
    with pytest.raises(DataError, match=fragment):
        load_data({"source": "builtin:iris", **keys})


def test_stratified_split_keeps_class_proportions(tmp_path):
    y = np.array([0] * 80 + [1] * 20 + [2] * 40)
    x = np.arange(len(y), dtype=np.float32)[:, None]
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = load_data(
        {
            "source": "npz",
            "path": str(tmp_path / "d.npz"),
            "validation_split": 0.25,
            "test_split": 0.25,
            "seed": 1,
        }
    )
    for part in (data.y_train, data.y_val, data.y_test):
        np.testing.assert_allclose(
            np.bincount(part, minlength=3) / len(part), [80 / 140, 20 / 140, 40 / 140], atol=0.02
        )
    assert (len(data.y_val), len(data.y_test)) == (35, 35)
    ids = np.concatenate([data.x_train, data.x_val, data.x_test])
    ids = ids * data.std + data.mean  # back to the raw row ids
    assert sorted(np.round(ids[:, 0]).astype(int)) == list(range(140))  # no overlap, none lost


def test_split_keeps_a_training_sample_of_every_class(tmp_path):
    y = np.array([0] * 30 + [1] * 30 + [2] * 2)
    np.savez(tmp_path / "d.npz", x=np.arange(62.0)[:, None], y=y)
    for seed in range(5):
        data = load_data(
            {
                "source": "npz",
                "path": str(tmp_path / "d.npz"),
                "seed": seed,
                "validation_split": 0.4,
                "test_split": 0.3,
            }
        )
        assert set(data.y_train) == {0, 1, 2}
        assert len(data.y_val) + len(data.y_test) == round(62 * 0.4) + round(62 * 0.3)


def test_split_too_small_for_a_validation_sample_says_so(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 3)), y=np.array([0, 1]))
    with pytest.raises(DataError, match="validation_split 0.2 of 2 samples"):
        load_data({"source": "npz", "path": str(tmp_path / "d.npz")})


def test_standardization_is_fitted_on_the_training_split_only(tmp_path):
    rng = np.random.default_rng(0)
    raw = np.concatenate(
        [
            np.arange(200)[:, None],  # row id, to find the raw rows again
            rng.normal(5.0, 3.0, (200, 1)) * np.linspace(1, 4, 200)[:, None],
        ],
        axis=1,
    ).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=raw, y=rng.normal(size=200))
    data = load_data({"source": "npz", "path": str(tmp_path / "d.npz"), "seed": 2})
    assert data.task == "regression"
    train_ids = np.round(data.x_train * data.std + data.mean)[:, 0].astype(int)
    train_raw = raw[train_ids]
    np.testing.assert_allclose(data.mean, train_raw.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(data.std, train_raw.std(axis=0), rtol=1e-5)
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-4)
    assert abs(data.x_val.mean(axis=0)).max() > 1e-3  # validation data was not used to fit
    val_ids = np.round(data.x_val * data.std + data.mean)[:, 0].astype(int)
    np.testing.assert_allclose(data.transform(raw[val_ids]), data.x_val, atol=1e-5)


def test_standardize_key_switches_it_off_and_on():
    assert load_data({"source": "builtin:iris", "standardize": False}).mean is None
    on = load_data({"source": "builtin:digits", "standardize": True})
    assert on.mean is not None and on.mean.shape == (8, 8, 1)


def test_summary_reports_samples_classes_and_shapes():
    summary = load_data({"source": "builtin:wine", "test_split": 0.1}).summary()
    assert summary["train"] + summary["validation"] + summary["test"] == 178
    assert summary["test"] == round(178 * 0.1)
    assert summary["input_shape"] == [13] and summary["num_classes"] == 3
    assert sum(summary["class_counts"]["train"]) == summary["train"]
    assert summary["standardized"] is True and len(summary["feature_names"]) == 13


# --------------------------------------------------------------------------- CSV

CSV = """\
age,height,color,species
1,10.5,red,cat
2,11.0,blue,dog
3,12.5,red,cat
4,13.0,green,dog
5,14.5,blue,cat
6,15.0,red,dog
7,16.5,green,cat
8,17.0,blue,dog
"""


def test_csv_with_a_categorical_column_is_one_hot_encoded(tmp_path):
    path = write(tmp_path / "pets.csv", CSV)
    data = load_data(csv_section(path, target="species", categorical=["color"]))
    assert data.task == "classification"
    assert data.class_names == ["cat", "dog"] and data.num_classes == 2
    assert data.feature_names == ["age", "height", "color=blue", "color=green", "color=red"]
    assert data.input_shape == (5,)
    x = np.concatenate([data.x_train, data.x_val])
    np.testing.assert_array_equal(x[:, 2:].sum(axis=1), 1.0)  # one-hot left unstandardised
    assert set(np.unique(x[:, 2:])) == {0.0, 1.0}
    assert len(data.x_train) + len(data.x_val) == 8


def test_csv_features_choose_the_columns_and_target_defaults_to_the_last(tmp_path):
    path = write(tmp_path / "pets.csv", CSV)
    data = load_data(csv_section(path, features=["height"], standardize=False))
    assert data.feature_names == ["height"] and data.class_names == ["cat", "dog"]
    x = np.sort(np.concatenate([data.x_train, data.x_val])[:, 0])
    np.testing.assert_allclose(x, [10.5, 11, 12.5, 13, 14.5, 15, 16.5, 17])


def test_csv_numeric_targets_are_classes_or_regression(tmp_path):
    path = write(
        tmp_path / "n.csv",
        "a,label,value\n" + "".join(f"{i},{i % 3},{i * 0.37}\n" for i in range(12)),
    )
    classes = load_data(csv_section(path, target="label", features=["a"]))
    assert classes.task == "classification" and classes.class_names == ["0", "1", "2"]
    values = load_data(csv_section(path, target="value", features=["a"]))
    assert values.task == "regression" and values.num_classes == 0
    assert values.y_train.shape[1:] == (1,) and values.y_train.dtype == np.float32
    forced = load_data(csv_section(path, target="label", features=["a"], task="regression"))
    assert forced.task == "regression"


def test_csv_semicolons_and_quoted_cells_are_read(tmp_path):
    path = write(tmp_path / "eu.csv", 'size;"name; long";kind\n1;"a; b";x\n2;c;y\n3;"d";x\n4;e;y\n')
    data = load_data(csv_section(path, categorical=["name; long"], validation_split=0.5))
    assert data.feature_names == [
        "size",
        "name; long=a; b",
        "name; long=c",
        "name; long=d",
        "name; long=e",
    ]
    assert data.class_names == ["x", "y"]


def test_csv_text_target_cannot_be_regression(tmp_path):
    path = write(tmp_path / "pets.csv", CSV)
    with pytest.raises(DataError, match=r"pets\.csv, column 'species'.*text.*regression"):
        load_data(csv_section(path, categorical=["color"], task="regression"))


def test_csv_relative_path_resolves_against_base_dir(tmp_path):
    write(tmp_path / "pets.csv", CSV)
    data = load_data(
        {
            "source": "csv",
            "path": "pets.csv",
            "target": "species",
            "categorical": ["color"],
            "validation_split": 0.25,
        },
        base_dir=tmp_path,
    )
    assert len(data.x_train) == 6


@pytest.mark.parametrize(
    "text, keys, fragments",
    [
        ("a,b,y\n1,2,0\n3,4\n5,6,1\n", {}, ["line 3", "2 values", "3 columns"]),
        ("a,b,y\n1,2,0\n3,,1\n5,6,1\n", {}, ["line 3", "column 'b'", "missing value"]),
        ("a,b,y\n1,2,0\n3,4,1\n5,NaN,1\n", {}, ["line 4", "column 'b'", "missing"]),
        ("a,b,y\n1,2,0\n3,4,\n5,6,1\n", {}, ["line 3", "column 'y'", "missing"]),
        ("a,b,y\n1,2,0\n3,x,1\n5,6,1\n", {}, ["line 3", "column 'b'", "'x'", "categorical"]),
        ("a,b,y\n1,2,0\n3,4,1\n", {"target": "label"}, ["'label'", "columns: a, b, y"]),
        ("a,b,y\n1,2,0\n3,4,1\n", {"features": ["a", "c"]}, ["'c'", "columns: a, b, y"]),
        ("a,a,y\n1,2,0\n3,4,1\n", {}, ["line 1", "'a'", "twice"]),
        ("a,b,y\n", {}, ["no data rows"]),
        ("", {}, ["empty"]),
    ],
)
def test_malformed_csv_names_the_file_line_and_column(tmp_path, text, keys, fragments):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError) as err:
        load_data({"source": "csv", "path": str(path), **keys})
    message = str(err.value)
    assert "bad.csv" in message
    for fragment in fragments:
        assert fragment in message


def test_csv_that_is_not_text_or_missing_is_named(tmp_path):
    binary = tmp_path / "picture.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(DataError, match=r"picture\.csv is not a CSV"):
        load_data({"source": "csv", "path": str(binary)})
    with pytest.raises(DataError, match=r"not found: .*nothere\.csv"):
        load_data({"source": "csv", "path": "nothere.csv"}, base_dir=tmp_path)
    with pytest.raises(DataError, match='needs "path"'):
        load_data({"source": "csv"})


# --------------------------------------------------------------------------- NPZ


def test_npz_loads_named_arrays_and_one_hot_targets_become_classes(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 6, 3)).astype(np.float32)
    y = np.eye(4)[np.arange(40) % 4]
    np.savez(tmp_path / "seq.npz", inputs=x, labels=y)
    data = load_data(
        {"source": "npz", "path": str(tmp_path / "seq.npz"), "x": "inputs", "y": "labels"}
    )
    assert data.input_shape == (6, 3) and data.num_classes == 4
    assert data.task == "classification" and data.mean is None  # not tabular: kept raw
    rows = {tuple(np.round(r.ravel(), 5)) for r in x}
    assert all(tuple(np.round(r.ravel(), 5)) in rows for r in data.x_val)


def test_npz_without_the_named_array_lists_the_arrays_it_has(tmp_path):
    np.savez(tmp_path / "d.npz", features=np.zeros((4, 2)), target=np.zeros(4))
    with pytest.raises(DataError) as err:
        load_data({"source": "npz", "path": str(tmp_path / "d.npz")})
    assert "d.npz" in str(err.value) and "'x'" in str(err.value)
    assert "features, target" in str(err.value)


def test_npz_mismatched_lengths_nan_and_non_npz_are_refused(tmp_path):
    np.savez(tmp_path / "len.npz", x=np.zeros((5, 2)), y=np.zeros(4))
    with pytest.raises(DataError, match=r"len\.npz.*5 samples.*4"):
        load_data({"source": "npz", "path": str(tmp_path / "len.npz")})
    x = np.zeros((5, 2))
    x[3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=np.zeros(5))
    with pytest.raises(DataError, match=r"nan\.npz.*'x'.*NaN.*sample 3"):
        load_data({"source": "npz", "path": str(tmp_path / "nan.npz")})
    write(tmp_path / "text.npz", "hello")
    with pytest.raises(DataError, match=r"text\.npz is not a readable \.npz"):
        load_data({"source": "npz", "path": str(tmp_path / "text.npz")})


# --------------------------------------------------------------------------- image folders


def test_image_folder_classes_resizing_and_color_modes(tmp_path, tf):
    rng = np.random.default_rng(0)
    for cls, count in (("cats", 5), ("dogs", 5)):
        for i in range(count):
            size = (12, 10) if i % 2 else (6, 8)
            write_png(tf, tmp_path / "pics" / cls / f"{i}.png", rng.integers(0, 256, (*size, 3)))
    (tmp_path / "pics" / "dogs" / "notes.txt").write_text("not an image")
    section = {"source": "images", "path": "pics", "image_size": [4, 5], "validation_split": 0.2}
    rgb = load_data(section, base_dir=tmp_path)
    assert rgb.class_names == ["cats", "dogs"] and rgb.num_classes == 2
    assert rgb.input_shape == (4, 5, 3) and rgb.mean is None
    assert 0.0 <= rgb.x_train.min() and rgb.x_train.max() <= 1.0 and rgb.x_train.max() > 0.5
    assert np.bincount(rgb.y_val).tolist() == [1, 1]
    gray = load_data({**section, "color_mode": "grayscale"}, base_dir=tmp_path)
    assert gray.input_shape == (4, 5, 1)
    model_sized = load_data(section, base_dir=tmp_path, input_shape=(7, 9, 1))
    assert model_sized.input_shape == (7, 9, 1)
    flat_model = load_data(section, base_dir=tmp_path, input_shape=(60,))
    assert flat_model.input_shape == (4, 5, 3)  # not an image input: check_fit reports it
    assert check_fit(flat_model, (60,), (2,), "sparse_categorical_crossentropy") == [
        "the model's input expects (60,); the data gives (4, 5, 3) (same number of values: "
        "a Reshape or Flatten layer would fit them)"
    ]


def test_image_folder_keeps_pixel_values_when_no_resize_is_needed(tmp_path, tf):
    pixels = np.full((3, 3), 51, dtype=np.uint8)[..., None]
    for cls in ("a", "b"):
        for i in range(5):
            write_png(tf, tmp_path / cls / f"{i}.png", pixels)
    data = load_data({"source": "images", "path": str(tmp_path), "color_mode": "grayscale"})
    assert data.input_shape == (3, 3, 1)
    np.testing.assert_allclose(data.x_train, 0.2, atol=1e-6)
    rgb = load_data({"source": "images", "path": str(tmp_path)})
    assert rgb.input_shape == (3, 3, 3)


def test_image_folder_errors_name_the_folder_or_file(tmp_path, tf):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty has no class sub-folders"):
        load_data({"source": "images", "path": str(tmp_path / "empty")})
    write_png(tf, tmp_path / "set" / "a" / "ok.png", np.zeros((4, 4, 3)))
    (tmp_path / "set" / "b").mkdir()
    (tmp_path / "set" / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    with pytest.raises(DataError, match=r"cannot read image .*broken\.png"):
        # indexing reads no image: decoding the split (x_train) finds the broken one
        load_data(
            {"source": "images", "path": str(tmp_path / "set"), "validation_split": 0}
        ).inputs("train")
    with pytest.raises(DataError, match=r"not found: .*nowhere"):
        load_data({"source": "images", "path": str(tmp_path / "nowhere")})
    with pytest.raises(DataError, match=r"set .*: 2 images at 512x512x3 need 6 MB.*limit of 5 MB"):
        load_data(
            {
                "source": "images",
                "path": str(tmp_path / "set"),
                "image_size": [512, 512],
                "max_memory_mb": 5,
                "validation_split": 0,
            }
        ).inputs("train")
    with pytest.raises(DataError, match="image_size.*height, width.*'big'"):
        load_data({"source": "images", "path": str(tmp_path / "set"), "image_size": "big"})


# --------------------------------------------------------------------------- labels and tf.data


def test_labels_for_loss_one_hot_only_for_categorical_crossentropy():
    y = np.array([2, 0, 1])
    onehot = labels_for_loss(y, "categorical_crossentropy", 3)
    np.testing.assert_array_equal(onehot, np.eye(3)[[2, 0, 1]])
    np.testing.assert_array_equal(labels_for_loss(y, "CategoricalCrossentropy", 3), onehot)
    np.testing.assert_array_equal(labels_for_loss(y, "sparse_categorical_crossentropy", 3), y)
    np.testing.assert_array_equal(labels_for_loss(y, "binary_crossentropy", 3), y)


def test_make_tf_dataset_batches_shuffles_with_seed(tf):
    data = load_data({"source": "builtin:digits"})
    ds = make_tf_dataset(data.x_train, data.y_train, batch_size=32, shuffle=True, seed=5)
    batches = list(ds.as_numpy_iterator())
    assert batches[0][0].shape == (32, 8, 8, 1) and batches[0][1].shape == (32,)
    assert sum(len(b[1]) for b in batches) == len(data.x_train)
    again = next(make_tf_dataset(data.x_train, data.y_train, 32, True, seed=5).as_numpy_iterator())
    np.testing.assert_array_equal(again[1], batches[0][1])
    assert not np.array_equal(batches[0][1], data.y_train[:32])  # shuffled
    plain = next(make_tf_dataset(data.x_val, None, 8, shuffle=False).as_numpy_iterator())
    np.testing.assert_array_equal(plain, data.x_val[:8])


# --------------------------------------------------------------------------- check_fit


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_data({"source": "builtin:digits"})


def test_check_fit_is_empty_when_model_and_loss_fit(digits):
    assert check_fit(digits, (8, 8, 1), (10,), "sparse_categorical_crossentropy") == []
    assert check_fit(digits, (None, None, 1), (10,), "categorical_crossentropy") == []
    adding = load_data({"source": "builtin:adding", "samples": 20, "length": 5})
    assert check_fit(adding, (5, 2), (1,), "mse") == []
    assert check_fit(adding, (None, 2), (1,), "mean_absolute_error") == []


def test_check_fit_states_both_sides_of_a_mismatch(digits):
    [message] = check_fit(digits, (64,), (10,), "sparse_categorical_crossentropy")
    assert message.startswith("the model's input expects (64,); the data gives (8, 8, 1)")
    [message] = check_fit(digits, (8, 8, 1), (3,), "sparse_categorical_crossentropy")
    assert "the model's output has 3 units but the data has 10 classes" in message
    [message] = check_fit(digits, (8, 8, 1), (3,), "categorical_crossentropy")
    assert "'categorical_crossentropy' needs one output unit per class" in message
    assert "3 units" in message and "10 classes" in message
    [message] = check_fit(digits, (8, 8, 1), (8, 8, 10), "sparse_categorical_crossentropy")
    assert "(8, 8, 10)" in message and "Flatten" in message
    [message] = check_fit(digits, (8, 8, 1), (1,), "mse")
    assert "'mse' is a regression loss" in message and "10 classes" in message
    [message] = check_fit(digits, (8, 8, 1), (1,), "binary_crossentropy")
    assert "10 classes" in message


def test_check_fit_binary_and_regression_messages():
    cancer = load_data({"source": "builtin:breast_cancer"})
    assert check_fit(cancer, (30,), (1,), "binary_crossentropy") == []
    [message] = check_fit(cancer, (30,), (2,), "binary_crossentropy")
    assert message.startswith("binary_crossentropy needs 1 output unit for 2 classes")
    assert "2 units" in message
    adding = load_data({"source": "builtin:adding", "samples": 20, "length": 5})
    problems = check_fit(adding, (5, 2), (10,), "sparse_categorical_crossentropy")
    assert any("for classification but the data is regression" in p for p in problems)
    assert any("(10,)" in p and "(1,)" in p for p in problems)


def test_import_engine_data_does_not_import_tensorflow():
    code = "import sys, engine.data.dataset; assert 'tensorflow' not in sys.modules, 'tf imported'"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr


def test_check_fit_accepts_a_built_keras_model(tf):
    import keras

    cancer = load_data({"source": "builtin:breast_cancer"})
    model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(1, activation="sigmoid")])
    assert check_fit(cancer, model, "binary_crossentropy") == []
    [message] = check_fit(cancer, model, "categorical_crossentropy")
    assert "the model's output has 1 unit but the data has 2 classes" in message


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


HOSTILE = [  # (name, writer(folder) -> data section, words the message must hold)
    (
        "truncated.npz",
        lambda d: {"source": "npz", "path": str(_write_bytes(d / "t.npz", _npz_bytes()[:100]))},
        "t.npz is not a readable .npz",
    ),
    (
        "no samples",
        lambda d: {
            "source": "npz",
            "path": str(_npz(d / "e.npz", x=np.zeros((0, 2)), y=np.zeros(0))),
        },
        "holds no values",
    ),
    (
        "0-d y",
        lambda d: {
            "source": "npz",
            "path": str(_npz(d / "z.npz", x=np.ones((4, 2)), y=np.array(1))),
        },
        "'y' has 1",
    ),
    (
        "inf seed",
        lambda d: {"source": "builtin:moons", "seed": float("inf")},
        '"seed" must be a whole number',
    ),
    ("unknown user", lambda d: {"source": "csv", "path": "~nosuchuser_ll/x.csv"}, "cannot be used"),
    (
        "typo in a numeric target",
        lambda d: {
            "source": "csv",
            "path": str(
                write(
                    d / "typo.csv",
                    "a,y\n" + "".join(f"{i},{i / 2}\n" for i in range(30)) + "3,n.a\n",
                )
            ),
        },
        "typo.csv line 32, column 'y': 'n.a' is not a finite number",
    ),
    (
        "beyond float32",
        lambda d: {
            "source": "csv",
            "path": str(write(d / "big.csv", "a,y\n1e300,0\n2,1\n3,0\n4,1\n")),
        },
        "line 2, column 'a': '1e300'",
    ),
    (
        "one class",
        lambda d: {"source": "csv", "path": str(write(d / "one.csv", "a,y\n1,1\n2,1\n3,1\n4,1\n"))},
        "every target is '1'",
    ),
    (
        "one sample per class",
        lambda d: {
            "source": "csv",
            "validation_split": 0.2,
            "path": str(write(d / "few.csv", "a,y\n1,a\n2,b\n3,c\n4,d\n5,e\n")),
        },
        "validation_split 0.2: no class has a sample to spare",
    ),
]


def _npz_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, x=np.ones((4, 2)), y=np.arange(4))
    return buffer.getvalue()


def _write_bytes(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("name", "section", "words"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_data_is_refused_with_the_place_named(tmp_path, name, section, words):
    with pytest.raises(DataError) as info:
        load_data(section(tmp_path))
    assert words in str(info.value)


def test_labels_shaped_n_by_1_are_classes(tmp_path):
    path = _npz(
        tmp_path / "cifar-like.npz", x=np.ones((30, 2)), y=(np.arange(30) % 3).reshape(-1, 1)
    )
    data = load_data({"source": "npz", "path": str(path)})
    assert data.task == "classification" and data.num_classes == 3


def test_csv_delimiter_is_read_from_the_first_non_blank_line(tmp_path):
    body = "".join(f"{i}|{i * 2}|{i % 2}\n" for i in range(20))
    path = write(tmp_path / "pipes.csv", "\n\na|b|y\n" + body)
    data = load_data({"source": "csv", "path": str(path)})
    assert data.feature_names == ["a", "b"] and data.num_classes == 2
