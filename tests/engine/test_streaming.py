"""Streamed arrays (issue 13): a memory-mapped ``RawData.x`` is split, standardised and
served batch by batch without ever being copied whole."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from engine.data.dataset import dataset_from_raw
from engine.data.sources import RawData

ROOT = Path(__file__).resolve().parents[2]


def test_a_200_mb_memmap_splits_and_standardises_under_a_limit_that_forbids_a_copy(tmp_path):
    rows, cols = 50_000, 1_000  # 200 MB of float32
    path = tmp_path / "x.f32"
    x = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols))
    for start in range(0, rows, 5_000):
        block = np.arange(start, start + 5_000, dtype=np.float32)[:, None]
        x[start : start + 5_000] = block + np.arange(cols, dtype=np.float32)
    x.flush()
    del x
    np.save(tmp_path / "y.npy", (np.arange(rows) % 3).astype(np.int64))
    code = f"""
import resource, re
import numpy as np
from engine.data.dataset import dataset_from_raw
from engine.data.sources import RawData
x = np.load({str(path)!r}, mmap_mode="r")
y = np.load({str(tmp_path / "y.npy")!r})
size = int(re.search(r"VmSize:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
limit = size + 120 * 2**20  # room for chunks, never for a 160 MB training split
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
data = dataset_from_raw(RawData(x, y, "classification", ["a", "b", "c"], standardize=True),
                        0.2, 0.0, 0)
assert isinstance(data.x, np.memmap) and data.streamed
assert data.count("train") == 40_000 and data.summary()["class_counts"]["train"][0] > 13_000
print("MEAN", float(data.mean[0]), float(data.mean[999]), float(data.std[0]))
head, labels = data.take("train", 8), data.y[data.parts["train"][:8]]
print("HEAD", head.shape, labels.tolist())
try:
    np.array(x[data.parts["train"]])
except MemoryError:
    print("COPY REFUSED")
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "COPY REFUSED" in out.stdout  # the limit really forbids a whole copy
    mean0, mean999, std0 = (float(v) for v in out.stdout.split("MEAN")[1].split()[:3])
    assert abs(mean999 - mean0 - 999) < 1e-2  # column j is row + j
    assert 24_000 < mean0 < 26_000 and 14_000 < std0 < 15_000  # ~uniform over 0..50,000
    assert "HEAD (8, 1000)" in out.stdout


def test_memmap_batches_match_the_in_memory_split_and_shuffle_per_epoch(tmp_path):
    x = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(103, 3))
    x[:] = np.random.default_rng(1).normal(5.0, 2.0, (103, 3))
    y = (np.arange(103) % 2).astype(np.int64)
    raw = RawData(x, y, "classification", ["a", "b"], standardize=True)
    data = dataset_from_raw(raw, 0.2, 0.1, 7)
    memory = dataset_from_raw(
        RawData(np.array(x), y, "classification", ["a", "b"], standardize=True), 0.2, 0.1, 7
    )
    assert data.streamed and not memory.streamed
    np.testing.assert_allclose(data.mean, memory.mean, rtol=1e-5)
    np.testing.assert_allclose(data.std, memory.std, rtol=1e-5)
    batches = list(data.batches("validation", 8).as_numpy_iterator())
    xs = np.concatenate([b[0] for b in batches])
    np.testing.assert_allclose(xs, memory.x_val, rtol=1e-5, atol=1e-6)
    assert np.concatenate([b[1] for b in batches]).tolist() == memory.y_val.tolist()
    stream = data.batches("train", 16, shuffle=True, seed=3)
    first = np.concatenate([b[1] for b in stream.as_numpy_iterator()])
    again = np.concatenate([b[1] for b in stream.as_numpy_iterator()])
    assert sorted(first.tolist()) == sorted(memory.y_train.tolist())
    assert len(first) == data.count("train") == 72
    xs = np.concatenate([b[0] for b in stream.as_numpy_iterator()])
    np.testing.assert_allclose(np.sort(xs[:, 0]), np.sort(memory.x_train[:, 0]), atol=1e-5)
    assert first.tolist() != again.tolist()  # reshuffled each epoch
