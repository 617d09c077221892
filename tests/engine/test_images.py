"""Image sources that stream (issue 13): indexing without decoding, the tf.data pipeline,
resize modes, corrupt files mid-epoch, image lists, resume, and streamed training.

Tiny generated folders; TensorFlow starts once for the module.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from engine.data.dataset import load_data
from engine.data.sources import DataError
from engine.train.fit import run_training


@pytest.fixture(scope="module")
def tf():
    import tensorflow as tf

    return tf


def write_png(tf, path: Path, pixels) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(np.asarray(pixels, dtype=np.uint8)).numpy())
    return path


def write_jpeg(tf, path: Path, pixels) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_jpeg(np.asarray(pixels, dtype=np.uint8)).numpy())
    return path


def corrupt_png(path: Path) -> Path:
    """A file whose PNG header is fine but whose pixels are garbage (found only by decoding)."""
    header = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (8).to_bytes(4, "big") * 2
    path.write_bytes(header + b"\x08\x02\x00\x00\x00" + b"garbage" * 20)
    return path


def folder(tf, root: Path, per_class: int = 8, side: int = 8, classes=("a", "b")) -> Path:
    """Class a: dark images, class b: bright ones (learnable in an epoch or two)."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        for i in range(per_class):
            base = 40 if c == 0 else 210
            pixels = np.clip(base + rng.integers(-30, 30, (side, side, 3)), 0, 255)
            writer = write_jpeg if i % 3 == 2 else write_png
            writer(tf, root / name / f"{i:03d}.{'jpg' if i % 3 == 2 else 'png'}", pixels)
    return root


def cnn_project(data: dict, side: int = 8, **training) -> dict:
    return {
        "format": "layerlab",
        "version": 1,
        "name": "tiny cnn",
        "graph": {
            "nodes": [
                {"id": "x", "type": "Input", "params": {"shape": [side, side, 3]}},
                {"id": "c", "type": "Conv2D", "params": {"filters": 4, "kernel_size": 3}},
                {"id": "p", "type": "GlobalAveragePooling2D", "params": {}},
                {"id": "out", "type": "Dense", "params": {"units": 2, "activation": "softmax"}},
            ],
            "edges": [
                {"source": "x", "target": "c", "port": 0},
                {"source": "c", "target": "p", "port": 0},
                {"source": "p", "target": "out", "port": 0},
            ],
        },
        "data": data,
        "training": {
            "optimizer": {"type": "Adam", "learning_rate": 0.05},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "batch_size": 4,
            "epochs": 1,
            "seed": 0,
            "tensorboard": False,
            **training,
        },
    }


def train(project: dict, run_dir: Path, **kwargs) -> tuple[dict, list[dict]]:
    events: list[dict] = []
    final = run_training(project, run_dir, emit=events.append, **kwargs)
    return final, events


# --------------------------------------------------------------------------- indexing


def test_loading_a_folder_indexes_it_without_decoding_a_single_image(tmp_path, tf):
    root = folder(tf, tmp_path / "set")
    corrupt_png(root / "b" / "999.png")  # only a decode could find it
    data = load_data({"source": "images", "path": str(root), "validation_split": 0.25})
    summary = data.summary()
    assert summary["files"] == 17 and summary["train"] + summary["validation"] == 17
    assert summary["class_counts"]["train"] == [6, 7] and data.streamed
    assert data.input_shape == (8, 8, 3)  # read from the first image's header


def test_an_8000_file_folder_summarises_in_well_under_a_second(tmp_path, tf):
    # (bench/data_pipeline.py measures a 100,000-file folder: docs/benchmarks.md)
    root = tmp_path / "big"
    png = tf.io.encode_png(np.zeros((4, 4, 3), np.uint8)).numpy()
    for c in range(4):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(2000):
            (root / f"c{c}" / f"{i}.png").write_bytes(png)
    start = time.perf_counter()
    data = load_data({"source": "images", "path": str(root), "validation_split": 0.1})
    summary = data.summary()
    took = time.perf_counter() - start
    assert took < 1.0, took
    assert summary["train"] == 7200 and summary["class_counts"]["validation"] == [200] * 4


# --------------------------------------------------------------------------- resize modes


def test_every_resize_mode_in_the_pipeline_and_the_strict_decoder(tmp_path, tf):
    # 8 high, 16 wide: white outer quarters, a gray middle half
    pixels = np.full((8, 16, 3), 128, np.uint8)
    pixels[:, :4] = pixels[:, 12:] = 255
    for cls in ("a", "b"):
        for i in range(2):
            write_png(tf, tmp_path / "set" / cls / f"{i}.png", pixels)
    got = {}
    for mode in ("stretch", "crop", "pad"):
        section = {
            "source": "images",
            "path": str(tmp_path / "set"),
            "image_size": [8, 8],
            "resize": mode,
            "validation_split": 0.5,
        }
        data = load_data(section)
        strict = data.x_train
        streamed = np.concatenate([x for x, _ in data.batches("train", 8).as_numpy_iterator()])
        np.testing.assert_allclose(streamed, strict, atol=1e-6)
        got[mode] = strict[0, ..., 0]
    gray = 128 / 255
    np.testing.assert_allclose(got["crop"], gray, atol=1e-3)  # the centre 8x8 only
    assert got["stretch"][:, 0].min() > 0.9 and abs(got["stretch"][0, 4] - gray) < 0.05
    assert got["pad"][0].max() < 0.05 and got["pad"][-1].max() < 0.05  # black bars
    assert got["pad"][3:5].min() > 0.4
    with pytest.raises(DataError, match=r'"resize" must be one of stretch, crop, pad'):
        load_data({**section, "resize": "squash"})


def test_a_read_group_mixing_sizes_fits_each_image_as_the_strict_decoder_does(tmp_path, tf):
    rng = np.random.default_rng(0)
    originals = {}
    for cls in ("a", "b"):
        for i, (h, w) in enumerate([(8, 8), (8, 16), (12, 8), (8, 8), (3, 5)]):
            pixels = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
            write_png(tf, tmp_path / "set" / cls / f"{i}.png", pixels)
            originals[str(tmp_path / "set" / cls / f"{i}.png")] = pixels
    for mode, resize in (("rgb", "stretch"), ("grayscale", "crop"), ("rgb", "pad")):
        section = {"source": "images", "path": str(tmp_path / "set"), "image_size": [8, 8]}
        section.update({"color_mode": mode, "resize": resize, "validation_split": 0.0})
        data = load_data(section)
        strict = data.x_train  # one image at a time
        batches = data.batches("train", 4)
        assert batches.element_spec[1].shape.as_list() == [None]  # Keras needs the ranks
        streamed = np.concatenate([x for x, _ in batches.as_numpy_iterator()])
        np.testing.assert_allclose(streamed, strict, atol=1e-6)
        assert streamed.shape == (10, 8, 8, 1 if mode == "grayscale" else 3)
        if mode == "rgb":  # an image already 8x8 comes through unchanged in its mixed group
            paths = [data.images.paths[i] for i in data.parts["train"]]
            for k in (k for k, p in enumerate(paths) if originals[p].shape == (8, 8, 3)):
                np.testing.assert_array_equal(np.round(streamed[k] * 255), originals[paths[k]])


def test_large_images_are_read_in_smaller_groups_so_memory_stays_bounded(tmp_path, tf):
    from engine.data import image_stream

    for cls in ("a", "b"):
        for i in range(3):  # 1,500 x 1,500: 6.4 MB each once decoded
            write_png(tf, tmp_path / "big" / cls / f"{i}.png", np.zeros((1500, 1500, 3)))
    data = load_data(
        {"source": "images", "path": str(tmp_path / "big"), "image_size": [8, 8]}
        | {"validation_split": 0.0}
    )
    group = image_stream._group_size(data.images, data.parts["train"])
    assert group == image_stream.GROUP_MB * 2**20 // (1500 * 1500 * 3) == 2
    seen = sum(len(x) for x, _ in data.batches("train", 4, shuffle=True).as_numpy_iterator())
    assert seen == 6
    small = load_data({"source": "images", "path": str(folder(tf, tmp_path / "set"))})
    assert image_stream._group_size(small.images, small.parts["train"]) == image_stream.READ_GROUP


# --------------------------------------------------------------------------- corrupt files


def test_a_corrupt_file_mid_epoch_is_skipped_counted_and_reported(tmp_path, tf):
    root = folder(tf, tmp_path / "set")
    corrupt_png(root / "a" / "004b.png")
    data = {"source": "images", "path": str(root), "validation_split": 0.2, "cache": "none"}
    final, events = train(cnn_project(data, epochs=2), tmp_path / "run")
    assert final["event"] == "done", final
    assert final["skipped_files"]["count"] == 1
    assert final["skipped_files"]["files"][0].endswith("004b.png")
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    skipped = [w for w in warnings if "004b.png" in w]
    assert len(skipped) == 1 and skipped[0].startswith("1 image could not be read and was skipped")
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["skipped_files"]["count"] == 1
    assert "004b.png" in (tmp_path / "run" / "events.jsonl").read_text()


def test_a_file_deleted_after_indexing_is_skipped_alone_not_a_crash(tmp_path, tf):
    from engine.data.image_stream import SkipTracker

    root = folder(tf, tmp_path / "set", per_class=20)
    data = load_data({"source": "images", "path": str(root), "validation_split": 0.0})
    gone = root / "b" / "007.png"
    gone.unlink()
    tracker = SkipTracker(data.images)
    batches = data.batches("train", 8, tracker=tracker)
    seen = sum(len(x) for x, _ in batches.as_numpy_iterator())
    assert sum(len(x) for x, _ in batches.as_numpy_iterator()) == seen  # and every epoch
    indices = tracker.skipped()
    skipped = [data.images.paths[i] for i in indices]
    # its read group failed; the group's other files were retried one by one
    assert skipped == [str(gone)] and seen == 39
    assert "007.png" in tracker.describe(indices)


def test_a_few_first_images_are_decoded_without_a_pipeline_as_the_pipeline_would(
    tmp_path, tf, monkeypatch
):
    import engine.data.dataset as dataset

    root = folder(tf, tmp_path / "set", per_class=10, side=12)
    data = load_data(
        {"source": "images", "path": str(root), "validation_split": 0.0}, None, (8, 8, 3)
    )
    streamed_x, streamed_y = next(data.batches("train", 6).as_numpy_iterator())
    started = []
    pipeline = dataset.image_pipeline
    monkeypatch.setattr(
        dataset, "image_pipeline", lambda *a, **k: started.append(1) or pipeline(*a, **k)
    )
    x, y = data.head("train", 6)
    assert not started
    np.testing.assert_allclose(x, streamed_x, atol=1e-6)
    np.testing.assert_array_equal(y, streamed_y)
    # a bad file among them: left out with its label, as training leaves it out
    first = Path(data.images.paths[data.parts["train"][1]])
    corrupt_png(first)
    x, y = data.head("train", 6)
    assert started and len(x) == len(y) == 6
    np.testing.assert_allclose(x[0], streamed_x[0], atol=1e-6)
    np.testing.assert_allclose(x[1:5], streamed_x[2:6], atol=1e-6)
    np.testing.assert_array_equal(y[1:5], streamed_y[2:6])


def test_corrupt_files_error_ends_the_run_naming_the_file(tmp_path, tf):
    root = folder(tf, tmp_path / "set")
    corrupt_png(root / "b" / "004b.png")
    data = {"source": "images", "path": str(root), "corrupt_files": "error"}
    final, _ = train(cnn_project(data), tmp_path / "run")
    assert final["event"] == "error" and final["kind"] == "data"
    assert "004b.png" in final["message"] and "could not be read" in final["message"]
    assert "skip" in final["hint"]


# --------------------------------------------------------------------------- image lists


def test_an_image_list_csv_streams_like_a_folder(tmp_path, tf):
    root = folder(tf, tmp_path / "set")
    rows = ["path,label"] + [
        f"set/{p.parent.name}/{p.name},{'dark' if p.parent.name == 'a' else 'bright'}"
        for p in sorted(root.glob("*/*"))
    ]
    rows.insert(3, "set/a/gone.png,dark")  # listed, not there: left out and reported
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    section = {"source": "image_list", "path": "list.csv", "validation_split": 0.25}
    data = load_data(section, base_dir=tmp_path)
    assert data.class_names == ["bright", "dark"] and data.count("train") == 12
    assert data.images.missing == [f"{tmp_path / 'set/a/gone.png'} (list.csv line 4)"]
    assert "1 listed image not found, left out" in data.source
    final, events = train(
        cnn_project({**section, "path": str(tmp_path / "list.csv")}), tmp_path / "r"
    )
    assert final["event"] == "done", final
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert any(w.startswith("1 listed image was not found and left out: ") for w in warnings)


def test_image_list_errors_name_the_csv_and_line(tmp_path, tf):
    folder(tf, tmp_path / "set", per_class=2)
    good = "path,label\nset/a/000.png,x\nset/b/000.png,y\n"

    def refused(text: str, **section) -> str:
        (tmp_path / "list.csv").write_text(text)
        with pytest.raises(DataError) as info:
            load_data({"source": "image_list", "path": str(tmp_path / "list.csv"), **section})
        refused.fix = info.value.fix
        return str(info.value)

    gone = good + "set/a/gone.png,x\n"
    assert "list.csv line 4: image file not found: " in refused(gone, corrupt_files="error")
    assert refused.fix.changes == {"corrupt_files": "skip"}  # the data panel's button
    assert refused(good + "set/a/001.png,\n").endswith(
        "list.csv line 4: the label of 'set/a/001.png' is empty"
    )
    assert "list.csv line 2: 3 values but the header has 2 columns" in refused(
        "path,label\nset/a/000.png,x,extra\n"
    )
    assert "no column 'label'" in refused("path,class\nset/a/000.png,x\n")
    assert "not an image file" in refused(good + "notes.txt,x\n")


# --------------------------------------------------------------------------- training


def test_a_tiny_memory_budget_streams_and_resume_continues(tmp_path, tf):
    root = folder(tf, tmp_path / "set", per_class=10, side=40)
    # 20 images at 40x40x3 float32 are 0.4 MB each split: far over a budget of 0 MB
    # in memory; training streams them (no cache) and never needs them all at once
    data = {"source": "images", "path": str(root), "max_memory_mb": 1, "image_size": [40, 40]}
    big = load_data({**data, "max_memory_mb": 1, "image_size": [200, 200]})
    with pytest.raises(DataError, match=r"need 7 MB in memory, more than the limit of 1 MB"):
        big.x_train  # noqa: B018  (materialising is what the budget refuses)
    project = cnn_project(data, side=40, epochs=1, class_weight="balanced")
    final, events = train(project, tmp_path / "run")
    assert final["event"] == "done", final
    assert [e for e in events if e["event"] == "started"][0]["samples"] == 16
    again, events = train(project, tmp_path / "run", resume=True, epochs=1)
    assert again["event"] == "done", again
    assert again["epochs_done"] == 2
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [2]


def test_class_weights_change_training_on_streamed_images(tmp_path, tf):
    root = folder(tf, tmp_path / "set", per_class=6)
    data = {"source": "images", "path": str(root), "validation_split": 0.0}
    plain, _ = train(cnn_project(data), tmp_path / "plain")
    weighted, _ = train(cnn_project(data, class_weight={"0": 1.0, "1": 20.0}), tmp_path / "w")
    assert plain["event"] == weighted["event"] == "done"
    assert plain["history"]["loss"][0] != pytest.approx(weighted["history"]["loss"][0], rel=0.05)


def test_a_file_cache_lives_in_the_run_directory(tmp_path, tf):
    root = folder(tf, tmp_path / "set")
    data = {"source": "images", "path": str(root), "cache": "file"}
    final, _ = train(cnn_project(data, epochs=2), tmp_path / "run")
    assert final["event"] == "done", final
    assert list((tmp_path / "run").glob("image-cache-train*"))


# --------------------------------------------------------------------------- post-epoch passes


def test_evaluating_a_streamed_test_split_warns_of_nothing(tmp_path, tf):
    """Keras says "Your input ran out of data; interrupting training" when a stream of
    unknown length ends: in the evaluation that is simply the split's end."""
    root = folder(tf, tmp_path / "set", per_class=10)
    data = {"source": "images", "path": str(root), "validation_split": 0.2, "test_split": 0.2}
    final, events = train(cnn_project(data, epochs=1), tmp_path / "run")
    assert final["event"] == "done" and final["evaluation"]["test"]["samples"] == 4, final
    assert not [e["message"] for e in events if e["event"] == "warning"]


def test_the_evaluation_reuses_the_last_validation_instead_of_decoding_it_again(
    tmp_path, tf, monkeypatch
):
    import keras

    from engine.data.dataset import Dataset

    root = folder(tf, tmp_path / "set", per_class=10)
    reads: list[str] = []
    batches = Dataset.batches

    def counting(self, split, *args, **kwargs):
        reads.append(split)
        return batches(self, split, *args, **kwargs)

    monkeypatch.setattr(Dataset, "batches", counting)
    data = {"source": "images", "path": str(root), "validation_split": 0.25, "cache": "none"}
    final, _ = train(cnn_project(data, epochs=2), tmp_path / "run")
    assert final["event"] == "done", final
    # fit's validation each epoch (one pipeline), then the evaluation view's predictions;
    # before: a third read, model.evaluate on the same split with the same weights
    assert reads.count("validation") == 2, reads
    got = final["evaluation"]["validation"]
    assert got["samples"] == 5 and set(got["metrics"]) == {"loss", "accuracy"}
    assert got["metrics"]["loss"] == pytest.approx(final["history"]["val_loss"][-1])
    monkeypatch.setattr(Dataset, "batches", batches)
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    ds = load_data(data, None, (8, 8, 3))
    again = model.evaluate(ds.batches("validation", 4), verbose=0, return_dict=True)
    assert got["metrics"]["loss"] == pytest.approx(again["loss"], rel=1e-4)
    assert got["metrics"]["accuracy"] == pytest.approx(again["accuracy"])


def test_weights_changed_after_the_last_validation_are_evaluated_again(tf):
    import keras

    from engine.train.fit import weights_fingerprint

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    before = weights_fingerprint(model)
    assert weights_fingerprint(model) == before
    model.set_weights([w + 1e-3 for w in model.get_weights()])  # e.g. best weights restored
    assert weights_fingerprint(model) != before


# --------------------------------------------------------------------------- generated script


#: Runs each generated script in the folders given, as ``python train_it.py --epochs 1``
#: would, one after the other in ONE interpreter (one TensorFlow start for both).
RUN_SCRIPTS = """
import os, runpy, sys
for folder in sys.argv[1:]:
    os.chdir(folder)
    sys.argv = ["train_it.py", "--epochs", "1", "--out", os.path.join(folder, "m.keras")]
    print("in " + folder, flush=True)
    runpy.run_path(os.path.join(folder, "train_it.py"), run_name="__main__")
"""


def test_the_generated_script_streams_and_trains_on_a_tiny_folder_and_image_list(tmp_path, tf):
    import subprocess
    import sys

    from engine.codegen.script import generate
    from engine.model.project import Project

    folders = []
    for source in ("images", "image_list"):
        here = tmp_path / source
        root = folder(tf, here / "set")
        if source == "images":
            data = {"source": "images", "path": "set", "resize": "crop", "validation_split": 0.25}
        else:
            rows = ["path,label"] + [
                f"set/{p.parent.name}/{p.name},{p.parent.name}" for p in sorted(root.glob("*/*"))
            ]
            rows.append("set/a/gone.png,a")  # left out by the script as by LayerLab
            (here / "list.csv").write_text("\n".join(rows) + "\n")
            data = {"source": "image_list", "path": "list.csv", "standardize": True}
        project = cnn_project(data, class_weight="balanced", schedule={"type": "cosine"})
        project["training"]["loss"] = "categorical_crossentropy"
        loaded = Project.from_dict(project, source="test")
        loaded.path = here / "project.json"
        text = generate(loaded)
        assert "keras.utils.image_dataset_from_directory" in text or source == "image_list"
        (here / "train_it.py").write_text(text, encoding="utf-8")
        folders.append(str(here))
    out = subprocess.run(
        [sys.executable, "-c", RUN_SCRIPTS, *folders],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stdout[-1000:] + out.stderr[-3000:]
    for here in folders:  # each script said so and wrote its model
        said = out.stdout.split("in " + here, 1)[1].split("\nin ", 1)[0]
        assert "trained 1 epochs" in said, out.stdout
        assert ("1 listed images not found, left out" in said) == here.endswith("image_list")
        assert (Path(here) / "m.keras").is_file(), here


# --------------------------------------------------------------------------- the data panel


def test_the_data_panel_preview_reads_only_its_thumbnails_and_never_tensorflow(tmp_path, tf):
    import subprocess
    import sys

    root = folder(tf, tmp_path / "set", per_class=3)
    corrupt_png(root / "a" / "zzz.png")
    png = (root / "a" / "000.png").read_bytes()
    for c in ("a", "b"):
        for i in range(1500):
            (root / c / f"many{i}.png").write_bytes(png)
    code = f"""
import sys, time
from PySide6.QtGui import QGuiApplication
app = QGuiApplication([])
from gui.training.data_panel import load_preview
start = time.perf_counter()
preview = load_preview({{"source": "images", "path": {str(root)!r}}}, None, (8, 8, 3))
took = time.perf_counter() - start
print("ERROR", preview.error)
print("TOOK", took, "TF", "tensorflow" in sys.modules)
print("COUNTS", sum(preview.summary["class_counts"]["train"]), len(preview.thumbnails))
print("LABELS", sorted({{label for _, label, _ in preview.thumbnails}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert "ERROR \n" in out.stdout, out.stdout + out.stderr[-2000:]
    took = float(out.stdout.split("TOOK ")[1].split()[0])
    assert took < 2.0 and "TF False" in out.stdout, out.stdout
    assert "COUNTS 2406 40" in out.stdout  # 3,007 files, 601 for validation
    assert "LABELS ['a', 'b']" in out.stdout, out.stdout


def test_a_pixel_bomb_is_skipped_by_the_pipeline_from_its_header(tmp_path, tf):
    from engine.data.image_stream import SkipTracker
    from tests.engine.test_hostile_data import png_bomb

    root = folder(tf, tmp_path / "set", per_class=3)
    png_bomb(root / "a" / "bomb.png")  # 20,000 x 20,000: 400 MB if it were decoded
    data = load_data({"source": "images", "path": str(root), "validation_split": 0.0})
    tracker = SkipTracker(data.images)
    start = time.perf_counter()
    seen = sum(len(x) for x, _ in data.batches("train", 4, tracker=tracker).as_numpy_iterator())
    assert time.perf_counter() - start < 10 and seen == 6
    skipped = tracker.skipped()
    assert [data.images.paths[i] for i in skipped] == [str(root / "a" / "bomb.png")]
    text = tracker.describe(skipped)
    assert "bomb.png" in text and "20,000x20,000 pixels" in text and "megapixels" in text


def bmp(width: int, height: int, pixels: bytes | None = None) -> bytes:
    """A 24-bit BMP (``height`` < 0: rows top-down); ``pixels`` None: only the headers."""
    import struct

    stride = (width * 3 + 3) // 4 * 4
    body = pixels if pixels is not None else b""
    header = struct.pack("<2sIHHI", b"BM", 54 + len(body), 0, 0, 54)
    info = struct.pack(
        "<IiiHHIIiiII", 40, width, height, 1, 24, 0, stride * abs(height), 0, 0, 0, 0
    )
    return header + info + body


def test_every_format_beyond_the_pixel_limit_is_skipped_from_its_header(tmp_path, tf):
    from engine.data.image_stream import _TINY_JPEG, SkipTracker

    root = folder(tf, tmp_path / "set", per_class=3)
    # fine images of the formats PNG and JPEG do not cover above: a 2x2 BMP (top-down)
    row = bytes([0, 0, 255, 0, 255, 0]) + b"\0\0"  # red, green; padded to 4 bytes
    (root / "a" / "fine.bmp").write_bytes(bmp(2, -2, row * 2))
    # headers declaring more than 100 megapixels (the files end there: never decodable)
    sof = _TINY_JPEG.index(b"\xff\xc0") + 5  # SOF0: length (2), precision (1), then h, w
    jpeg = _TINY_JPEG[:sof] + (30000).to_bytes(2, "big") * 2 + _TINY_JPEG[sof + 4 :]
    bombs = {
        "bomb.jpg": jpeg,
        "bomb.gif": b"GIF89a" + (65535).to_bytes(2, "little") * 2 + b"\0" * 20,
        "bomb.bmp": bmp(20000, -20000),  # a negative height still counts its size
    }
    for name, data in bombs.items():
        (root / "b" / name).write_bytes(data)
    data = load_data({"source": "images", "path": str(root), "validation_split": 0.0})
    tracker = SkipTracker(data.images)
    seen = sum(len(x) for x, _ in data.batches("train", 4, tracker=tracker).as_numpy_iterator())
    assert seen == 7  # 6 generated + fine.bmp
    skipped = sorted(Path(data.images.paths[i]).name for i in tracker.skipped())
    assert skipped == sorted(bombs)
    strict = data.take("train", 1)
    assert strict.shape == (1, 8, 8, 3)
    # the graph check itself, before any decode: the header decides
    from engine.data.image_stream import _within_limit

    def within(data: bytes) -> bool:
        return bool(_within_limit(tf.constant([data])).numpy()[0])

    assert not any(within(b) for b in bombs.values())
    assert within((root / "a" / "fine.bmp").read_bytes()) and within(_TINY_JPEG)
    assert all(within(p.read_bytes()) for p in sorted(root.glob("a/00*")))  # PNG and JPEG
    assert not within(b"not an image at all") and not within(b"")
    assert within(b"GIF89a" + (10000).to_bytes(2, "little") * 2)  # exactly 100 megapixels
