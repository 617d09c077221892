"""Cluster runs on streamed data: each worker reads only its shard of the split.

The shard plan is a pure function (tested directly); one real 2-worker cluster on
loopback ports trains a tiny image folder, and each worker's decoded files are its
planned shard: disjoint, and together the whole training split.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from engine.data.dataset import load_data
from engine.train.cluster import free_ports, shard_plan, worker_batch


@pytest.mark.parametrize(
    ("n", "workers", "batch"), [(0, 2, 4), (1, 3, 4), (17, 3, 5), (100, 4, 8), (37, 2, 6)]
)
def test_the_shard_plan_splits_every_epoch_into_disjoint_shards_that_cover_it(n, workers, batch):
    for epoch in range(3):
        plan = shard_plan(n, workers, batch, seed=7 + epoch)
        assert len(plan) == workers
        every = np.concatenate(plan)
        assert len(every) == n and sorted(every.tolist()) == list(range(n))
        assert shard_plan(n, workers, batch, seed=7 + epoch)[0].tolist() == plan[0].tolist()


def test_each_step_gives_every_worker_its_share_of_one_global_batch():
    order = np.random.default_rng(3).permutation(40)
    plan = shard_plan(40, 2, 8, seed=3)
    assert worker_batch(8, 2) == 4
    for step in range(5):  # worker i reads the i-th half of global batch `step`
        batch = order[step * 8 : (step + 1) * 8]
        assert plan[0][step * 4 : (step + 1) * 4].tolist() == batch[:4].tolist()
        assert plan[1][step * 4 : (step + 1) * 4].tolist() == batch[4:].tolist()
    # every epoch reshuffles; without a seed the split is read in order
    assert shard_plan(40, 2, 8, seed=4)[0].tolist() != plan[0].tolist()
    assert shard_plan(10, 2, 4, seed=None)[0].tolist() == [0, 1, 4, 5, 8, 9]


def write_folder(root: Path, per_class: int = 10) -> Path:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for c, name in enumerate(("dark", "bright")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(40 + 170 * c + rng.integers(-30, 30, (8, 8, 3)), 0, 255)
            png = tf.io.encode_png(pixels.astype(np.uint8)).numpy()
            (root / name / f"{i:02d}.png").write_bytes(png)
    return root


def test_a_two_worker_cluster_on_an_image_folder_reads_disjoint_shards(tmp_path):
    from engine.train.distributed.run import start_cluster_training

    root = write_folder(tmp_path / "set")
    # a PNG whose header is fine but whose pixels are garbage: found only by decoding
    header = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (8).to_bytes(4, "big") * 2
    bad = root / "dark" / "99.png"
    bad.write_bytes(header + b"\x08\x02\x00\x00\x00" + b"garbage" * 20)
    data = {
        "source": "images",
        "path": str(root),
        "validation_split": 0.2,
        "seed": 0,
        "cache": "memory",
    }
    project = {
        "format": "layerlab",
        "version": 1,
        "name": "sharded",
        "graph": {
            "nodes": [
                {"id": "x", "type": "Input", "params": {"shape": [8, 8, 3]}},
                {"id": "f", "type": "Flatten", "params": {}},
                {"id": "out", "type": "Dense", "params": {"units": 2, "activation": "softmax"}},
            ],
            "edges": [
                {"source": "x", "target": "f", "port": 0},
                {"source": "f", "target": "out", "port": 0},
            ],
        },
        "data": data,
        "training": {
            "optimizer": {"type": "Adam", "learning_rate": 0.01},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "epochs": 1,
            "seed": 5,
            "tensorboard": False,
            "cluster": {"global_batch_size": 4, "timeout_s": 30},
        },
    }
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    other = start_cluster_training(project, None, workers, 1)
    chief = start_cluster_training(project, tmp_path / "run", workers, 0)
    try:
        final = chief.wait(240)
        final_other = other.wait(60)
    finally:
        for run in (chief, other):
            run.kill()
    assert final and final["event"] == "done", final
    warnings = [e["message"] for e in chief.events() if e["event"] == "warning"]
    assert any('"cache": "memory" is not used in a cluster run' in w for w in warnings)
    # named by the worker that met it (the chief here), else counted "on the other workers"
    assert any("1 image could not be read and was skipped" in w for w in warnings), warnings
    assert final_other and final_other["event"] == "done", final_other
    assert final["history"]["loss"] and np.isfinite(final["history"]["loss"][0])
    assert "val_loss" in final["history"] and final["evaluation"]

    loaded = load_data(data)
    parts = loaded.parts["train"]  # the files of the training split
    assert len(parts) == 17  # 11 dark (one corrupt) and 10 bright files: 80 %
    plan = shard_plan(len(parts), 2, 4, seed=5 + 0)  # epoch 1: seed + 0
    shards = [np.sort(parts[p]).astype(np.int64) for p in plan]
    assert not set(shards[0].tolist()) & set(shards[1].tolist())
    assert sorted(np.concatenate(shards).tolist()) == parts.tolist()
    corrupt = loaded.images.paths.index(str(bad))
    for event, shard in zip((final, final_other), shards):
        read = shard[shard != corrupt]  # the one file that cannot be decoded is skipped
        assert event["train_files_read"] == len(read)
        assert event["train_files_sha256"] == hashlib.sha256(read.tobytes()).hexdigest()
    # counted once over the cluster, in the chief's summary
    assert final["skipped_files"]["count"] == 1, final.get("skipped_files")


def test_a_memory_mapped_npy_shard_is_read_row_by_row_and_padded_to_the_step_count(
    tmp_path, monkeypatch
):
    import tensorflow as tf

    from engine.train.distributed.loop import _shard_batches
    from engine.train.distributed.steps import local_shard

    monkeypatch.setenv("LAYERLAB_CACHE_DIR", str(tmp_path / "cache"))
    x = np.arange(60, dtype=np.float32).reshape(20, 3)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.arange(20) % 2)
    ds = load_data(
        {
            "source": "npz",
            "path": "x.npy",
            "y": "y.npy",
            "validation_split": 0.0,
            "standardize": False,
        },
        base_dir=tmp_path,
    )
    assert ds.streamed and isinstance(ds.x, np.memmap)
    plan = shard_plan(20, 3, 6, seed=1)  # 4 steps; workers 1 and 2 read 2+2+2+0 rows
    got = []
    for positions in plan:
        data = local_shard(
            tf.distribute.get_strategy(),
            lambda b, p=positions: _shard_batches(ds, "train", p, ds.y_train, b, None),
            worker_batch(6, 3),
            4,
        )
        batches = [(np.asarray(xb), np.asarray(yb)) for xb, yb in data]
        assert len(batches) == 4  # every worker joins every step
        rows = np.concatenate([xb for xb, _ in batches])
        want = ds.parts["train"][positions]
        assert sorted(rows[:, 0].tolist()) == sorted((want * 3).tolist())
        labels = np.concatenate([yb for _, yb in batches])
        assert sorted(labels.tolist()) == sorted(ds.y[want].tolist())
        got.extend(rows[:, 0].tolist())
    assert sorted(got) == [3.0 * i for i in range(20)]
    assert not ds._made  # no split was copied into memory
