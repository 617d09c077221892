"""NumPy data without copies: .npy files and stored .npz members memory-mapped, big
compressed .npz refused with the advice to save uncompressed, big non-float32 arrays
converted chunk by chunk into a cache file."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.data.dataset import load_data
from engine.data.sources import DataError, load_npz

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("LAYERLAB_CACHE_DIR", str(folder))
    return folder


def test_npy_inputs_and_targets_are_memory_mapped(tmp_path):
    x = np.random.default_rng(0).normal(size=(60, 4, 3)).astype(np.float32)
    y = np.arange(60) % 3
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "labels.npy", y)
    raw = load_npz(tmp_path / "x.npy", {"y": "labels.npy"})
    assert isinstance(raw.x, np.memmap) and str(raw.x.filename) == str(tmp_path / "x.npy")
    np.testing.assert_array_equal(raw.x, x)
    assert raw.y.tolist() == y.tolist() and raw.class_names == ["0", "1", "2"]
    assert raw.description == "npy: x.npy"
    data = load_data(
        {"source": "npz", "path": "x.npy", "y": "labels.npy", "validation_split": 0.25},
        base_dir=tmp_path,
    )
    assert data.input_shape == (4, 3) and len(data.x_train) == 45


def test_npy_without_a_targets_file_says_how_to_name_one(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 2), np.float32))
    with pytest.raises(DataError, match=r'single \.npy array.*the targets\' \.npy file as "y"'):
        load_npz(tmp_path / "x.npy", {})
    with pytest.raises(DataError, match=r"targets file \"y\" .*gone\.npy.* is not there"):
        load_npz(tmp_path / "x.npy", {"y": "gone.npy"})
    np.save(tmp_path / "short.npy", np.arange(3))
    with pytest.raises(DataError, match=r"x\.npy: array 'x\.npy' has 4 samples but"):
        load_npz(tmp_path / "x.npy", {"y": "short.npy"})


def test_an_npy_whose_header_lies_or_holds_objects_is_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((10, 2), np.float32))
    data = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-16])
    np.save(tmp_path / "y.npy", np.arange(10) % 2)
    with pytest.raises(DataError, match=r"cut\.npy: array 'x' declares shape \(10, 2\)"):
        load_npz(tmp_path / "cut.npy", {"y": "y.npy"})
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}] * 10, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="holds Python objects"):
        load_npz(tmp_path / "x.npy", {"y": "obj.npy"})


def test_a_stored_npz_member_is_memory_mapped_at_its_offset(tmp_path):
    x = np.arange(600, dtype=np.float32).reshape(100, 6)
    np.savez(tmp_path / "d.npz", inputs=x, y=np.arange(100) % 2)
    raw = load_npz(tmp_path / "d.npz", {"x": "inputs"})
    assert isinstance(raw.x, np.memmap)
    np.testing.assert_array_equal(raw.x, x)
    # A zip64 member with an extra field before its data is found too.
    path = tmp_path / "z64.npz"
    with zipfile.ZipFile(path, "w") as z:
        for name, array in (("x.npy", x), ("y.npy", np.arange(100) % 2)):
            with z.open(name, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, array)
    raw = load_npz(path, {})
    assert isinstance(raw.x, np.memmap)
    np.testing.assert_array_equal(raw.x, x)


def test_a_fortran_ordered_and_a_float64_member_read_right(tmp_path, monkeypatch):
    x = np.asfortranarray(np.random.default_rng(1).normal(size=(300, 500)))  # float64, 1.2 MB
    np.savez(tmp_path / "f.npz", x=x, y=np.arange(300) % 2)
    small = load_npz(tmp_path / "f.npz", {})
    assert small.x.dtype == np.float32 and not isinstance(small.x, np.memmap)
    np.testing.assert_array_equal(small.x, x.astype(np.float32))
    monkeypatch.setenv("LAYERLAB_DATA_MEMORY_MB", "1")  # as float32 it is 0.6 MB: still small
    np.savez(tmp_path / "g.npz", x=np.concatenate([x, x]), y=np.arange(600) % 2)
    big = load_npz(tmp_path / "g.npz", {})  # 1.2 MB as float32: into a cache file
    assert isinstance(big.x, np.memmap) and big.x.dtype == np.float32
    assert str(big.x.filename).startswith(str(tmp_path / "cache"))
    np.testing.assert_array_equal(big.x, np.concatenate([x, x]).astype(np.float32))


def test_a_compressed_npz_beyond_the_budget_is_refused_with_how_to_save_it(tmp_path, monkeypatch):
    x = np.random.default_rng(0).normal(size=(400, 500)).astype(np.float32)  # 0.8 MB
    np.savez_compressed(tmp_path / "packed.npz", x=x, y=np.arange(400) % 2)
    assert load_npz(tmp_path / "packed.npz", {}).x.shape == (400, 500)  # within the budget
    monkeypatch.setenv("LAYERLAB_DATA_MEMORY_MB", "0")
    with pytest.raises(DataError, match="LAYERLAB_DATA_MEMORY_MB must be a whole number"):
        load_npz(tmp_path / "packed.npz", {})
    np.savez_compressed(tmp_path / "packed.npz", x=np.concatenate([x, x]), y=np.arange(800) % 2)
    monkeypatch.setenv("LAYERLAB_DATA_MEMORY_MB", "1")
    with pytest.raises(DataError) as err:
        load_npz(tmp_path / "packed.npz", {})
    message = str(err.value)
    assert "packed.npz: array 'x' is compressed and unpacks to 1.6 MB" in message
    assert "LAYERLAB_DATA_MEMORY_MB" in message and "numpy.savez(" in message
    assert "savez_compressed" in message and '"path": "x.npy"' in message


def test_a_big_npy_is_not_copied_into_memory(tmp_path):
    """A 200 MB .npy loaded and checked: the process's own memory (not the file's pages,
    which the system can drop) grows by far less than the file."""
    path = tmp_path / "big.npy"
    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(50_000, 1000))
    x[::997] = 1.0
    x.flush()
    del x
    np.save(tmp_path / "y.npy", np.arange(50_000) % 2)
    code = (
        "import numpy as np\n"
        "from pathlib import Path\n"
        "from engine.data.sources import load_npz\n"
        "def anon():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('RssAnon:'):\n"
        "            return int(line.split()[1]) * 1024\n"
        "before = anon()\n"
        f"raw = load_npz(Path({str(path)!r}), {{'y': 'y.npy'}})\n"
        "assert isinstance(raw.x, np.memmap), type(raw.x)\n"
        "assert float(raw.x[997, 5]) == 1.0\n"
        "print('GROWTH', anon() - before)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert "GROWTH" in result.stdout, result.stderr
    growth = int(result.stdout.split("GROWTH")[1].split()[0])
    assert growth < 80 * 2**20, growth  # the file is 200 MB; a copy would be 200 MB


def test_a_memory_map_within_the_data_budget_trains_from_arrays_like_fit(tmp_path, monkeypatch):
    """Fed through tf.data batch by batch (a Python gather each), a run used 6-15 % more
    CPU per sample than model.fit on the same arrays; within the budget it reads the
    memory map whole instead, beyond it it still streams."""
    x = np.zeros((500, 28, 28), np.float32)  # 1.57 MB
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "labels.npy", np.arange(500) % 2)
    section = {"source": "npz", "path": "x.npy", "y": "labels.npy", "validation_split": 0.2}
    data = load_data(section, base_dir=tmp_path)
    assert data.streamed and isinstance(data.x, np.memmap)
    monkeypatch.setenv("LAYERLAB_DATA_MEMORY_MB", "2")
    assert data.fits_in_memory()
    monkeypatch.setenv("LAYERLAB_DATA_MEMORY_MB", "1")
    assert not data.fits_in_memory()
