"""Training health and the live decision boundary in a cluster run (issue 19).

One real 2-worker cluster on loopback ports trains a tiny MLP on ``builtin:xor``; the
chief probes a replica of the model outside the strategy at epoch ends and writes
``health.jsonl`` and sends ``health`` / ``boundary`` events as a single-process run does.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.train.boundary import decode
from engine.train.cluster import free_ports
from engine.train.health import HEALTH_FILE, SHARE_ENV, read_health

EPOCHS = 12


def xor_project() -> dict:
    def dense(node_id: str, units: int, activation: str) -> dict:
        params = {"units": units, "activation": activation}
        return {"id": node_id, "type": "Dense", "params": params}

    return {
        "format": "layerlab",
        "version": 1,
        "name": "xor cluster",
        "graph": {
            "nodes": [
                {"id": "x", "type": "Input", "params": {"shape": [2]}},
                dense("h1", 16, "tanh"),
                dense("h2", 16, "relu"),
                dense("out", 2, "softmax"),
            ],
            "edges": [
                {"source": "x", "target": "h1", "port": 0},
                {"source": "h1", "target": "h2", "port": 0},
                {"source": "h2", "target": "out", "port": 0},
            ],
        },
        "data": {"source": "builtin:xor", "samples": 400, "validation_split": 0.2, "seed": 0},
        "training": {
            "optimizer": {"type": "Adam", "learning_rate": 0.03},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "epochs": EPOCHS,
            "seed": 3,
            "tensorboard": False,
            "cluster": {"global_batch_size": 32, "timeout_s": 30},
        },
    }


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    from engine.train.distributed.run import start_cluster_training

    root = tmp_path_factory.mktemp("cluster_inside")
    mp = pytest.MonkeyPatch()
    mp.setenv(SHARE_ENV, "1")  # probe every epoch: tiny epochs would be probed rarely
    try:
        workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
        other = start_cluster_training(xor_project(), None, workers, 1)
        chief = start_cluster_training(xor_project(), root / "run", workers, 0)
        try:
            final = chief.wait(240)
            final_other = other.wait(60)
        finally:
            for run in (chief, other):
                run.kill()
    finally:
        mp.undo()
    assert final and final["event"] == "done", final
    assert final_other and final_other["event"] == "done", final_other
    return root / "run", list(chief.events()), final


def test_the_chief_writes_one_health_row_per_epoch_for_every_layer_with_weights(cluster_run):
    run_dir, events, final = cluster_run
    records = read_health(run_dir)
    assert [r["epoch"] for r in records] == list(range(1, EPOCHS + 1))
    for record in records:
        rows = {r["name"]: r for r in record["layers"]}
        weighted = [r for r in rows.values() if r["weight_hist"] is not None]
        assert len(weighted) == 3  # h1, h2, out: every layer with weights
        for row in weighted:
            assert sum(row["weight_hist"]["counts"]) > 0 and row["weight_norm"] > 0
            assert row["gradient_norm"] is not None and np.isfinite(row["gradient_norm"])
        relu = [r for r in rows.values() if r["dead_fraction"] is not None]
        assert len(relu) == 1 and 0.0 <= relu[0]["dead_fraction"] <= 1.0
    # the same records reach the window as events, and events.jsonl keeps them
    sent = [e for e in events if e["event"] == "health"]
    assert [e["epoch"] for e in sent] == list(range(1, EPOCHS + 1))
    assert "weight_hist" not in sent[-1]["layers"][0]
    logged = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "health" for e in logged) == EPOCHS
    assert not any(e["event"] == "boundary" for e in logged)  # pictures are not logged
    assert not any(e["event"] == "warning" and "training health" in e["message"] for e in events), (
        "the probe was turned off"
    )
    assert (run_dir / HEALTH_FILE).exists() and final["epochs_done"] == EPOCHS


def test_the_last_boundary_field_of_a_cluster_run_gets_the_four_xor_quadrants_right(
    cluster_run,
):
    _, events, final = cluster_run
    fields = [e for e in events if e["event"] == "boundary"]
    assert fields and fields[-1]["epoch"] == EPOCHS and fields[-1]["step"] is None
    points = np.asarray(fields[0]["points"])
    labels = np.asarray(fields[0]["labels"])
    last = fields[-1]
    grid = last["grid"]
    classes = decode(last["classes"], grid)
    (x0, x1), (y0, y1) = last["x"], last["y"]
    centre = np.median(points, 0)
    for sx in (-1, 1):
        for sy in (-1, 1):
            inside = (np.sign(points[:, 0] - centre[0]) == sx) & (
                np.sign(points[:, 1] - centre[1]) == sy
            )
            px, py = points[inside].mean(0)
            want = np.bincount(labels[inside]).argmax()
            col = int(round((px - x0) / (x1 - x0) * (grid - 1)))
            row = int(round((py - y0) / (y1 - y0) * (grid - 1)))
            assert classes[row, col] == want, (sx, sy, classes[row, col], want)
    assert final["history"]["loss"][-1] < final["history"]["loss"][0]


def test_the_chief_redraws_the_boundary_within_an_epoch_from_the_weights_of_that_moment(
    tmp_path, monkeypatch
):
    """Between epoch ends the chief sends a field whenever the boundary probe says
    one is due, after copying its current weights into the replica."""
    from engine.data.dataset import load_data
    from engine.train import boundary
    from engine.train.distributed.probes import ChiefProbes
    from engine.train.fit import build_snapshot_model

    monkeypatch.setattr(boundary, "MIN_INTERVAL", 0.0)
    monkeypatch.setattr(boundary, "MAX_SHARE", 1e9)
    project = xor_project()
    section = {**project["training"], "health": False}
    ds = load_data(project["data"], None, (2,))
    events: list[dict] = []
    loss = "sparse_categorical_crossentropy"
    probes = ChiefProbes(project, section, None, ds, loss, tmp_path, events.append, 0)
    model = build_snapshot_model(project)
    probes.epoch_begin(0)
    fields = []
    for step, favoured in ((1, 0), (2, 1)):
        weights = model.get_weights()
        weights[-1][:] = [10.0, -10.0] if favoured == 0 else [-10.0, 10.0]  # output bias
        weights[-2][:] = 0.0  # output kernel: the bias alone decides
        model.set_weights(weights)
        probes.step(step, model)
        fields.append(events[-1])
        classes = decode(events[-1]["classes"], events[-1]["grid"])
        assert (classes == favoured).all(), (step, np.bincount(classes.ravel()))
    assert [(f["event"], f["epoch"], f["step"]) for f in fields] == [
        ("boundary", 1, 1),
        ("boundary", 1, 2),
    ]
