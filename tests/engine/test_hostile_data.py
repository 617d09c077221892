"""Hostile data and model files: refused by name, within a memory bound, never hanging.

Memory bounds run in a subprocess under ``resource.setrlimit(RLIMIT_AS, ...)``: the
refusal must come before the file is decoded or unpacked. None of these tests starts
TensorFlow (the refusals happen before anything imports it), except the CLI one.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import threading
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from engine.data.dataset import load_data
from engine.data.image_size import ImageHeaderError, image_size
from engine.data.sources import DataError
from engine.io.importing.read import UnreadableModelError, read_config

ROOT = Path(__file__).resolve().parents[2]
MB = 10**6


def run_limited(code: str, limit_mb: int, env: dict | None = None, timeout: float = 60) -> str:
    """Run ``code`` in a fresh interpreter whose address space is capped at ``limit_mb``;
    return what it printed (stdout + stderr)."""
    prelude = (
        "import resource\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({limit_mb * MB}, {limit_mb * MB}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", prelude + code],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "OPENBLAS_NUM_THREADS": "1",
            **(env or {}),
        },
    )
    return result.stdout + result.stderr


def within(fn, seconds: float = 5.0):
    """``fn()``'s result or exception, failing the test if it takes longer (a hang)."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: it hangs"
    if "error" in box:
        raise box["error"]
    return box.get("value")


# --------------------------------------------------------------------------- images


def png_bomb(path: Path, side: int = 20000) -> Path:
    """A real grayscale PNG of side x side black pixels: ~400 KB on disk, 400 MB decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    packer = zlib.compressobj(9)
    row = b"\0" * (side + 1)  # filter byte + pixels
    parts = [packer.compress(row * 500) for _ in range(side // 500)]
    parts.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )
    return path


def test_a_20000x20000_png_is_refused_from_its_header_using_little_memory(tmp_path):
    folder = tmp_path / "set"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    png_bomb(folder / "a" / "bomb.png")
    png_bomb(folder / "b" / "small.png", side=500)
    assert (folder / "a" / "bomb.png").stat().st_size < 500_000
    out = run_limited(
        "from engine.data.dataset import load_data\n"
        "from engine.data.sources import DataError\n"
        "try:\n"
        f"    load_data({{'source': 'images', 'path': {str(folder)!r}, 'image_size': [8, 8],"
        " 'validation_split': 0}).inputs('train')\n"
        "except DataError as exc:\n"
        "    print('REFUSED', exc)\n",
        limit_mb=500,
    )
    assert "REFUSED" in out, out
    assert "bomb.png" in out and "20,000x20,000 pixels" in out
    assert "limit of 100 megapixels" in out and "LAYERLAB_MAX_IMAGE_MEGAPIXELS" in out


def test_the_pixel_limit_can_be_raised(tmp_path, monkeypatch):
    path = tmp_path / "set" / "a" / "wide.png"
    path.parent.mkdir(parents=True)
    png_bomb(path, side=2000)  # 4 megapixels
    (tmp_path / "set" / "b").mkdir()
    png_bomb(tmp_path / "set" / "b" / "small.png", side=500)
    monkeypatch.setenv("LAYERLAB_MAX_IMAGE_MEGAPIXELS", "3")
    with pytest.raises(DataError, match=r"wide\.png is 2,000x2,000 pixels.*limit of 3 megapixels"):
        load_data(
            {"source": "images", "path": str(tmp_path / "set"), "image_size": [8, 8]}
            | {"validation_split": 0}  # indexing reads no header: decoding the split does
        ).inputs("train")


def test_image_sizes_are_read_from_png_jpeg_gif_and_bmp_headers():
    png = b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + struct.pack(">II", 640, 480) + b"\x08\x02\0\0\0"
    assert image_size(png) == (640, 480, 1)
    jpeg = (
        b"\xff\xd8"
        + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + b"\xff\xc2\x00\x11\x08"
        + struct.pack(">HH", 300, 200)
        + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    )
    assert image_size(jpeg) == (200, 300, 1)
    frame = b"\x2c" + struct.pack("<HHHH", 0, 0, 10, 10) + b"\x00" + b"\x02\x02\x4c\x01\x00"
    gif = b"GIF89a" + struct.pack("<HH", 10, 10) + b"\x80\x00\x00" + b"\0" * 6
    gif += b"\x21\xf9\x04\x00\x00\x00\x00\x00" + frame * 3 + b"\x3b"
    assert image_size(gif) == (10, 10, 3)  # every frame is decoded, so frames count
    bmp = b"BM" + b"\0" * 12 + struct.pack("<Iii", 40, 50, -70)
    assert image_size(bmp) == (50, 70, 1)
    with pytest.raises(ImageHeaderError, match="not a PNG, JPEG, GIF or BMP"):
        image_size(b"RIFF....WEBP")
    with pytest.raises(ImageHeaderError, match="cut short"):
        image_size(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0")


def test_an_animated_gif_counts_every_frame(tmp_path, monkeypatch):
    frame = b"\x2c" + struct.pack("<HHHH", 0, 0, 1000, 1000) + b"\x00" + b"\x02\x02\x4c\x01\x00"
    gif = b"GIF89a" + struct.pack("<HH", 1000, 1000) + b"\x00\x00\x00" + frame * 200 + b"\x3b"
    folder = tmp_path / "set"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    (folder / "a" / "many.gif").write_bytes(gif)
    (folder / "b" / "many.gif").write_bytes(gif)
    with pytest.raises(DataError, match=r"many\.gif is 1,000x1,000 pixels in 200 frames"):
        load_data(
            {"source": "images", "path": str(folder), "image_size": [8, 8], "validation_split": 0}
        ).inputs("train")


def test_image_folders_skip_fifos_and_refuse_a_fifo_as_the_folder(tmp_path):
    folder = tmp_path / "set"
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        os.mkfifo(folder / name / "pipe.png")
    # the FIFOs are not images: each class folder holds none, and nothing hangs
    with pytest.raises(DataError, match="holds no images"):
        within(lambda: load_data({"source": "images", "path": str(folder)}))
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(DataError, match="is not a folder"):
        within(lambda: load_data({"source": "images", "path": str(tmp_path / "pipe")}))


# --------------------------------------------------------------------------- FIFOs


@pytest.mark.parametrize("source", ["csv", "npz"])
def test_a_fifo_as_the_data_file_is_refused_at_once(tmp_path, source):
    fifo = tmp_path / f"data.{source}"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match=r"data\.\w+ is not a regular file \(a FIFO"):
        within(lambda: load_data({"source": source, "path": str(fifo)}))
    with pytest.raises(DataError, match=r"is not a regular file \(a character device"):
        within(lambda: load_data({"source": source, "path": "/dev/zero"}))


def test_a_fifo_as_the_model_file_is_refused_at_once(tmp_path):
    fifo = tmp_path / "model.keras"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableModelError, match=r"model\.keras is not a regular file"):
        within(lambda: read_config(fifo))


# --------------------------------------------------------------------------- CSV


def test_a_csv_file_beyond_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:
        f.truncate(3 * 10**9)  # sparse: no disk used, 3 GB to a reader
    out = run_limited(
        "from engine.data.dataset import load_data\n"
        "from engine.data.sources import DataError\n"
        "try:\n"
        f"    load_data({{'source': 'csv', 'path': {str(path)!r}}})\n"
        "except DataError as exc:\n"
        "    print('REFUSED', exc)\n",
        limit_mb=400,
    )
    assert "REFUSED" in out, out
    assert "huge.csv" in out and "3,000.0 MB" in out and "LAYERLAB_MAX_CSV_MB" in out


def test_a_csv_line_beyond_the_limit_is_refused_by_line_number_using_little_memory(tmp_path):
    path = tmp_path / "long.csv"
    with path.open("w") as f:
        f.write("a,b,y\n1,2,0\n3,4,1\n")
        f.write("5," + "6" * 300 * MB + ",0\n")  # a 300 MB line
    out = run_limited(
        "from engine.data.dataset import load_data\n"
        "from engine.data.sources import DataError\n"
        "try:\n"
        f"    load_data({{'source': 'csv', 'path': {str(path)!r}}})\n"
        "except DataError as exc:\n"
        "    print('REFUSED', exc)\n",
        limit_mb=400,
        env={"LAYERLAB_MAX_CSV_MB": "1000"},
    )
    assert "REFUSED" in out, out
    assert "long.csv line 4" in out and "1,024 KB" in out and "LAYERLAB_MAX_CSV_LINE_KB" in out


def test_a_csv_header_line_beyond_the_limit_is_refused_not_a_memory_error(tmp_path, monkeypatch):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(400_000)) + "\n" + "1," * 399_999 + "1\n")
    with pytest.raises(DataError, match=r"wide\.csv line 1: the line is longer than 1,024 KB"):
        load_data({"source": "csv", "path": str(path)})
    monkeypatch.setenv("LAYERLAB_MAX_CSV_LINE_KB", "10")
    small = tmp_path / "small.csv"
    small.write_text("a,b,y\n" + "1,2,0\n" * 5 + "1," + "2" * 20_000 + ",1\n")
    with pytest.raises(DataError, match=r"small\.csv line 7: .*limit of 10 KB|small\.csv line 7"):
        load_data({"source": "csv", "path": str(small)})


def test_a_csv_field_beyond_the_limit_is_refused_by_line(tmp_path, monkeypatch):
    path = tmp_path / "field.csv"
    path.write_text('a,b,y\n1,2,0\n3,"' + "x" * 200_000 + '",1\n')
    with pytest.raises(
        DataError,
        match=r"field\.csv line 3: a field is longer than 128 KB.*LAYERLAB_MAX_CSV_FIELD_KB",
    ):
        load_data({"source": "csv", "path": str(path)})
    monkeypatch.setenv("LAYERLAB_MAX_CSV_FIELD_KB", "1000")
    with pytest.raises(DataError, match=r"column 'b'"):  # past the bound: an ordinary complaint
        load_data({"source": "csv", "path": str(path)})


def test_csv_line_numbers_and_old_mac_line_ends_still_work(tmp_path):
    body = "".join(f"{i},{i * 2},{i % 2}\r" for i in range(20))
    path = tmp_path / "mac.csv"
    path.write_bytes(("a,b,y\r" + body).encode())
    data = load_data({"source": "csv", "path": str(path)})
    assert data.feature_names == ["a", "b"] and data.num_classes == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("\n\na,b,y\n1,2,0\n1,x,1\n" + "1,2,0\n" * 10)
    with pytest.raises(DataError, match=r"bad\.csv line 5, column 'b'"):
        load_data({"source": "csv", "path": str(bad)})


# --------------------------------------------------------------------------- NPZ


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array)
    return buf.getvalue()


def test_an_npz_member_that_inflates_beyond_the_limit_is_refused_before_unpacking(tmp_path):
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("x.npy", "w", force_zip64=True) as f:
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {"descr": "<f4", "fortran_order": False, "shape": (500_000, 1000)}
            )
            f.write(header.getvalue())
            block = b"\0" * (10 * MB)
            for _ in range(200):
                f.write(block)
        z.writestr("y.npy", npy_bytes(np.zeros(500_000)))
    assert path.stat().st_size < 5 * MB
    out = run_limited(
        "from engine.data.dataset import load_data\n"
        "from engine.data.sources import DataError\n"
        "try:\n"
        f"    load_data({{'source': 'npz', 'path': {str(path)!r}}})\n"
        "except DataError as exc:\n"
        "    print('REFUSED', exc)\n",
        limit_mb=500,
    )
    assert "REFUSED" in out, out
    assert "bomb.npz" in out and "x.npy unpacks to" in out and "LAYERLAB_MAX_ZIP_RATIO" in out


def test_an_npz_beyond_the_size_limit_names_the_variable(tmp_path, monkeypatch):
    path = tmp_path / "big.npz"
    np.savez(path, x=np.random.default_rng(0).random((1000, 500)), y=np.arange(1000) % 2)
    monkeypatch.setenv("LAYERLAB_MAX_NPZ_MB", "1")
    with pytest.raises(
        DataError, match=r"big\.npz: x\.npy unpacked is 4\.0 MB.*LAYERLAB_MAX_NPZ_MB"
    ):
        load_data({"source": "npz", "path": str(path)})


def test_an_npz_array_whose_header_lies_about_its_shape_is_refused(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**8, 10**4)}
    )
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", header.getvalue() + b"\0" * 800)
        z.writestr("y.npy", npy_bytes(np.arange(10)))
    out = run_limited(
        "from engine.data.dataset import load_data\n"
        "from engine.data.sources import DataError\n"
        "try:\n"
        f"    load_data({{'source': 'npz', 'path': {str(path)!r}}})\n"
        "except DataError as exc:\n"
        "    print('REFUSED', exc)\n",
        limit_mb=500,
    )
    assert "REFUSED" in out and "liar.npz: array 'x' declares shape" in out, out


def test_npz_files_still_load_and_explain_their_mistakes(tmp_path):
    good = tmp_path / "good.npz"
    np.savez_compressed(good, x=np.arange(40, dtype=np.float32).reshape(20, 2), y=np.arange(20) % 2)
    data = load_data({"source": "npz", "path": str(good)})
    assert data.input_shape == (2,) and data.num_classes == 2
    single = tmp_path / "single.npz"
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npy").rename(single)
    with pytest.raises(DataError, match="single .npy array"):
        load_data({"source": "npz", "path": str(single)})
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x=np.array([{"a": 1}] * 4, dtype=object), y=np.arange(4) % 2)
    with pytest.raises(DataError, match="holds Python objects"):
        load_data({"source": "npz", "path": str(pickled)})
    with pytest.raises(DataError, match="has no array 'z'"):
        load_data({"source": "npz", "path": str(good), "x": "z"})


# --------------------------------------------------------------------------- model files


def keras_zip(path: Path, config: bytes, compress: bool = True) -> Path:
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3"}))
        z.writestr("config.json", config)
    return path


def test_a_keras_config_that_inflates_to_gigabytes_is_refused_using_little_memory(tmp_path):
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", "{}")
        with z.open("config.json", "w", force_zip64=True) as f:
            f.write(b'{"class_name": "Functional", "config": {"layers": []}, "pad": "')
            block = b" " * (10 * MB)
            for _ in range(100):  # 1 GB of text
                f.write(block)
            f.write(b'"}')
    assert path.stat().st_size < 10 * MB
    out = run_limited(
        "from engine.io.importing.read import read_config, UnreadableModelError\n"
        "try:\n"
        f"    read_config({str(path)!r})\n"
        "except UnreadableModelError as exc:\n"
        "    print('REFUSED', exc)\n",
        limit_mb=500,
    )
    assert "REFUSED" in out, out
    assert "bomb.keras" in out and "config.json unpacked is 1,000.0 MB" in out
    assert "LAYERLAB_MAX_MODEL_CONFIG_MB" in out


def test_a_keras_member_whose_header_lies_is_cut_at_the_declared_size(tmp_path):
    path = keras_zip(tmp_path / "liar.keras", b" " * (50 * MB) + b"{}")
    data = bytearray(path.read_bytes())
    # make both headers claim config.json unpacks to 100 bytes
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (i := data.find(sig, start)) >= 0:
            name_at = i + (30 if sig == b"PK\x03\x04" else 46)
            if data[name_at : name_at + 11] == b"config.json":
                data[i + offset : i + offset + 4] = struct.pack("<I", 100)
            start = i + 4
    path.write_bytes(bytes(data))
    out = run_limited(
        "from engine.io.importing.read import read_config, UnreadableModelError\n"
        "try:\n"
        f"    read_config({str(path)!r})\n"
        "except UnreadableModelError as exc:\n"
        "    print('REFUSED', exc)\n",
        limit_mb=300,
    )
    assert "REFUSED" in out and "liar.keras: cannot be read as a .keras model" in out, out


def test_a_keras_config_beyond_the_limit_names_the_variable(tmp_path, monkeypatch):
    config = json.dumps({"class_name": "Functional", "config": {"layers": []}, "pad": "x" * MB})
    path = keras_zip(tmp_path / "big.keras", config.encode(), compress=False)
    monkeypatch.setenv("LAYERLAB_MAX_MODEL_CONFIG_MB", "1")
    with pytest.raises(
        UnreadableModelError, match=r"big\.keras: config\.json unpacked is 1\.0 MB.*MODEL_CONFIG_MB"
    ):
        read_config(path)


def test_a_deep_or_duplicated_model_config_is_refused_by_limit(tmp_path):
    deep = keras_zip(tmp_path / "deep.keras", b"[" * 5000 + b"]" * 5000)
    with pytest.raises(UnreadableModelError, match=r"deep\.keras: .*LAYERLAB_MAX_JSON_DEPTH"):
        read_config(deep)
    huge_int = tmp_path / "int.json"
    huge_int.write_text('{"class_name": "Functional", "config": {"n": ' + "9" * 5000 + "}}")
    with pytest.raises(UnreadableModelError, match=r"int\.json: .*LAYERLAB_MAX_INT_DIGITS"):
        read_config(huge_int)
    twice = keras_zip(tmp_path / "twice.keras", b'{"class_name": "A", "class_name": "B"}')
    with pytest.raises(UnreadableModelError, match=r'twice\.keras: the key "class_name"'):
        read_config(twice)


def test_an_h5_model_config_beyond_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "big.h5"
    with h5py.File(path, "w", libver="latest") as f:  # dense storage: large attributes
        f.attrs["model_config"] = np.bytes_(b'{"pad": "' + b"x" * (2 * MB) + b'"}')
    monkeypatch.setenv("LAYERLAB_MAX_MODEL_CONFIG_MB", "1")
    with pytest.raises(UnreadableModelError, match=r"big\.h5: the model config is 2\.0 MB"):
        read_config(path)


def test_layerlab_import_of_a_bomb_exits_2_without_a_traceback(tmp_path, capsys):
    from engine.cli.main import main  # the command's code in this process: no TF start

    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", b" " * (100 * MB))
    assert main(["import", str(path), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "bomb.keras" in err and "LAYERLAB_MAX_MODEL_CONFIG_MB" in err
    assert not (tmp_path / "p.json").exists()


# --------------------------------------------------------------------------- exports


def _tiny_project():
    from engine.model.graph import Edge, Node
    from engine.model.project import Project

    project = Project(name="tiny")
    project.graph.nodes["x"] = Node("x", "Input", {"shape": [4]})
    project.graph.nodes["y"] = Node("y", "Dense", {"units": 2})
    project.graph.edges.append(Edge("x", "y"))
    return project


@pytest.mark.parametrize(("fmt", "name"), [("keras", "m.keras"), ("tflite", "m.tflite")])
def test_a_failed_export_leaves_the_old_file_and_no_partial_or_temp_file(
    tmp_path, monkeypatch, fmt, name
):
    keras = pytest.importorskip("keras")
    from engine.io.export import ExportError, export

    def half_written(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half a model")
        raise RuntimeError("disk full")

    monkeypatch.setattr(keras.Model, "save", half_written)
    monkeypatch.setattr(keras.Model, "export", half_written)
    out = tmp_path / name
    with pytest.raises(ExportError):
        export(_tiny_project(), fmt, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half-written
    out.write_bytes(b"the previous export")
    with pytest.raises(ExportError):
        export(_tiny_project(), fmt, out)
    assert out.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_failed_savedmodel_export_keeps_the_old_folder(tmp_path, monkeypatch):
    pytest.importorskip("keras")
    from engine.io.export import ExportError, export

    out = tmp_path / "served"
    out.mkdir()
    (out / "saved_model.pb").write_bytes(b"the previous export")

    def half_written(self, path, *args, **kwargs):
        Path(path).mkdir()
        (Path(path) / "saved_model.pb").write_bytes(b"half")
        raise RuntimeError("disk full")

    class Half:
        export = half_written

    monkeypatch.setattr("engine.io.export._inference", lambda model, xs: Half())
    with pytest.raises(ExportError):
        export(_tiny_project(), "savedmodel", out)
    assert (out / "saved_model.pb").read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]


def test_layerlab_train_with_a_fifo_as_its_data_exits_2_naming_it(tmp_path):
    from engine.model.project import save_project

    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    project = _tiny_project()
    project.data = {"source": "csv", "path": "data.csv"}
    save_project(project, tmp_path / "p.json")
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", "train", str(tmp_path / "p.json")]
        + ["--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 2, result.stderr
    assert "data.csv is not a regular file (a FIFO" in result.stderr
    assert "Traceback" not in result.stderr
