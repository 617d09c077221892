"""Multi-worker training: real clusters of worker processes on loopback ports.

Each worker is a ``layerlab`` command (a parent watchdog plus a TensorFlow child),
so every cluster test is slow-ish; all of them share one tiny iris project
(2 epochs, global batch 24 -> 5 steps). Every subprocess has a hard time limit.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.train.cluster import (
    ClusterError,
    cluster_problems,
    free_ports,
    from_tf_config,
    parse_cluster,
    resolve_cluster,
    tf_config,
    worker_commands,
)
from engine.train.distributed.settings import ignored_settings

LIMIT_S = 120
ROOT = Path(__file__).resolve().parents[2]


def iris_project(epochs: int = 2, early_stopping: dict | None = None, **cluster) -> dict:
    return {
        "format": "layerlab",
        "version": 1,
        "name": "iris cluster",
        "graph": {
            "nodes": [
                {"id": "x", "type": "Input", "params": {"shape": [4]}, "position": [0, 0]},
                {
                    "id": "hidden",
                    "type": "Dense",
                    "params": {"units": 16, "activation": "relu"},
                    "position": [0, 100],
                },
                {
                    "id": "out",
                    "type": "Dense",
                    "params": {"units": 3, "activation": "softmax"},
                    "position": [0, 200],
                },
            ],
            "edges": [
                {"source": "x", "target": "hidden", "port": 0},
                {"source": "hidden", "target": "out", "port": 0},
            ],
        },
        "data": {"source": "builtin:iris", "validation_split": 0.2},
        "training": {
            "optimizer": {"type": "Adam", "learning_rate": 0.01},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "epochs": epochs,
            "seed": 0,
            "early_stopping": early_stopping,
            "cluster": {"global_batch_size": 24, "timeout_s": 20, **cluster},
        },
    }


def cluster_of(n: int) -> str:
    return ",".join(f"127.0.0.1:{p}" for p in free_ports(n))


def launch(*args: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli.main", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def finish(proc: subprocess.Popen, limit: float = LIMIT_S) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        pytest.fail(f"{proc.args} did not end within {limit} s:\n{out}\n{err[-3000:]}")
    return proc.returncode, out, err


def run_cluster(project: Path, n: int, run_dir: Path, *extra: str) -> dict:
    """Chief plus n-1 workers; the chief's done event and every worker's digest."""
    cluster = cluster_of(n)
    workers = [
        launch("worker", str(project), "--cluster", cluster, "--index", str(i)) for i in range(1, n)
    ]
    chief = launch(
        "train",
        str(project),
        "--cluster",
        cluster,
        "--index",
        "0",
        "--json",
        "--out",
        str(run_dir),
        *extra,
    )
    try:
        code, out, err = finish(chief)
        results = [finish(w) for w in workers]
    finally:
        for p in [chief, *workers]:
            kill_group(p)
    assert code == 0, out + err[-3000:]
    for i, (wcode, wout, werr) in enumerate(results, 1):
        assert wcode == 0, f"worker {i}: {wout}\n{werr[-3000:]}"
    digests = [
        line.rsplit("sha256 ", 1)[1].rstrip(")")
        for _, wout, _ in results
        for line in wout.splitlines()
        if "sha256" in line
    ]
    return {"done": done_event(run_dir), "digests": digests, "stdout": out, "cluster": cluster}


def done_event(run_dir: Path) -> dict:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if '"done"' in line][-1]


# ------------------------------------------------------------------ settings (no TF)


def test_parse_cluster_rejects_bad_addresses_naming_them():
    assert parse_cluster("a:1, b.example.org:2222") == ["a:1", "b.example.org:2222"]
    for bad, named in (
        ("a:1,nohost", "nohost"),
        ("a:99999", "a:99999"),
        ("a:1,a:1", "a:1"),
        ("", "no worker"),
    ):
        with pytest.raises(ClusterError, match=named):
            parse_cluster(bad)


def test_worker_commands_one_per_other_machine():
    cmds = worker_commands("/data/my project.json", ["a:1", "b:2", "c:3"], 0)
    assert cmds == [
        "layerlab worker '/data/my project.json' --cluster a:1,b:2,c:3 --index 1",
        "layerlab worker '/data/my project.json' --cluster a:1,b:2,c:3 --index 2",
    ]
    assert [c.rsplit(" ", 1)[1] for c in worker_commands("p.json", "a:1,b:2,c:3", 1)] == ["0", "2"]


def test_tf_config_round_trips_and_env_wins(monkeypatch):
    config = tf_config(["a:1", "b:2"], 1)
    assert from_tf_config(json.dumps(config)) == (["a:1", "b:2"], 1)
    with_chief = {
        "cluster": {"chief": ["c:1"], "worker": ["w:1", "w:2"]},
        "task": {"type": "worker", "index": 1},
    }
    monkeypatch.setenv("TF_CONFIG", json.dumps(with_chief))
    workers, index, used = resolve_cluster("env", None, {})
    assert (workers, index, used) == (["c:1", "w:1", "w:2"], 2, with_chief)
    assert resolve_cluster("project", 1, {"cluster": {"workers": ["a:1", "b:2"]}})[:2] == (
        ["a:1", "b:2"],
        1,
    )
    with pytest.raises(ClusterError, match="--index 2"):
        resolve_cluster("a:1,b:2", 2, {})


def test_cluster_problems_name_the_key_and_value():
    assert cluster_problems({"workers": ["a:1"], "global_batch_size": 64}) == []
    problems = cluster_problems({"workers": ["a"], "global_batch_size": 0, "timeout": 3})
    text = "; ".join(problems)
    assert "'a'" in text and "global_batch_size" in text and "'timeout'" in text


def test_settings_a_cluster_run_leaves_out_are_warned_about():
    notes = ignored_settings(
        {
            "precision": "mixed_float16",
            "class_weight": "balanced",
            "schedule": {"type": "reduce_on_plateau"},
        }
    )
    assert len(notes) == 3
    assert any("precision" in n for n in notes) and any("class_weight" in n for n in notes)
    assert any("reduce_on_plateau" in n for n in notes)
    assert ignored_settings({"precision": "float32", "steps_per_execution": 1}) == []
    assert ignored_settings({"steps_per_execution": "auto"}) == []  # the default
    assert ignored_settings({"steps_per_execution": 8}) == [
        "steps_per_execution is ignored in a cluster run (one step at a time)"
    ]


def test_answers_tells_a_live_worker_from_a_silent_one_and_a_closed_port():
    """The watchdog's probe: a stopped process keeps its port open (the kernel still
    accepts connections), so only a reply to the greeting proves the worker is alive."""
    import threading

    from engine.train.cluster import answers

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # accepts in the kernel, never replies: like SIGSTOP
    live = socket.socket()
    live.bind(("127.0.0.1", 0))
    live.listen(4)

    def reply_once() -> None:
        conn, _ = live.accept()
        with conn:
            conn.recv(64)
            conn.sendall(bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))  # an HTTP/2 SETTINGS frame

    threading.Thread(target=reply_once, daemon=True).start()
    closed = free_ports(1)[0]
    try:
        assert answers(f"127.0.0.1:{live.getsockname()[1]}") is True
        assert answers(f"127.0.0.1:{silent.getsockname()[1]}", timeout=0.3) is False
        assert answers(f"127.0.0.1:{closed}") is None
    finally:
        silent.close()
        live.close()


def test_cli_refuses_wrong_cluster_arguments_before_starting_anything(tmp_path, capsys):
    from engine.cli.main import main

    path = tmp_path / "iris.json"
    path.write_text(json.dumps(iris_project()))
    cases = [
        (["worker", str(path), "--cluster", "a:1,b:2", "--index", "0"], "layerlab train"),
        (["train", str(path), "--cluster", "a:1,b:2", "--index", "1"], "layerlab worker"),
        (["train", str(path), "--cluster", "a:1,b", "--index", "0"], "'b'"),
        (["worker", str(path), "--cluster", "a:1,b:2", "--index", "5"], "--index 5"),
        (["worker", str(path), "--cluster", "project", "--index", "1"], "cluster.workers"),
    ]
    for argv, named in cases:
        assert main(argv) == 2, argv
        assert named in capsys.readouterr().err, argv
    with socket.socket() as busy:  # this machine's port is taken by someone else
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = f"127.0.0.1:{busy.getsockname()[1]}"
        assert main(["worker", str(path), "--cluster", f"a:1,{taken}", "--index", "1"]) == 2
        assert f"{taken} (worker 1): port" in capsys.readouterr().err
    path.write_text(json.dumps(iris_project(global_batch_size=0)))
    assert (
        main(
            [
                "train",
                str(path),
                "--cluster",
                "a:1,b:2",
                "--index",
                "0",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 2
    )
    assert "global_batch_size must be a whole number >= 1; got 0" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------ real clusters


@pytest.fixture(scope="module")
def project_file(tmp_path_factory) -> Path:
    # 10 epochs, but early stopping ends every run after the second one: it needs an
    # improvement of 100 in val_loss (each worker must take that decision together)
    path = tmp_path_factory.mktemp("project") / "iris.json"
    path.write_text(
        json.dumps(iris_project(epochs=10, early_stopping={"patience": 1, "min_delta": 100}))
    )
    return path


@pytest.fixture(scope="module")
def reference(project_file, tmp_path_factory) -> dict:
    """The same custom step on a one-worker cluster: the single-process trajectory."""
    return run_cluster(project_file, 1, tmp_path_factory.mktemp("ref") / "run")


@pytest.mark.slow
@pytest.mark.timeout(200)
@pytest.mark.parametrize("n", [2, 3])
def test_cluster_trains_in_lockstep_like_one_process(n, project_file, reference, tmp_path):
    run_dir = tmp_path / "run"
    result = run_cluster(project_file, n, run_dir)
    done, ref = result["done"], reference["done"]
    # every worker ends with the chief's weights
    assert len(result["digests"]) == n - 1
    assert set(result["digests"]) == {done["weights_sha256"]}
    # the global loss follows the single-process run with the same global batch
    assert done["workers"] == n and done["epochs_done"] == 2
    assert done["history"]["loss"] == pytest.approx(ref["history"]["loss"], abs=1e-3)
    assert done["history"]["val_accuracy"] == pytest.approx(
        ref["history"]["val_accuracy"], abs=1e-6
    )
    assert done["history"]["loss"][1] < done["history"]["loss"][0]
    # the chief's run directory is like any other run's
    for name in (
        "project.json",
        "model.keras",
        "checkpoints/last.keras",
        "history.json",
        "history.csv",
        "evaluation.json",
    ):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "status.json").read_text())["state"] == "done"
    assert len((run_dir / "history.csv").read_text().splitlines()) == 3
    epochs = [json.loads(line) for line in result["stdout"].splitlines()]
    assert [e["epoch"] for e in epochs if e["event"] == "epoch"] == [1, 2]


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_chief_names_a_worker_that_never_joins(tmp_path):
    path = tmp_path / "iris.json"
    path.write_text(json.dumps(iris_project(join_timeout_s=4)))
    cluster = cluster_of(2)
    start = time.monotonic()
    code, _, err = finish(
        launch(
            "train", str(path), "--cluster", cluster, "--index", "0", "--out", str(tmp_path / "run")
        ),
        limit=25,
    )
    assert code == 1
    assert f"{cluster.split(',')[1]} (worker 1) never joined" in err
    assert f"--cluster {cluster} --index 1" in err  # the command to start it
    assert time.monotonic() - start < 20


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_a_worker_with_another_project_is_refused_by_name(tmp_path):
    chief_path, other_path = tmp_path / "chief.json", tmp_path / "other.json"
    chief_path.write_text(json.dumps(iris_project()))
    other = iris_project()
    other["graph"]["nodes"][1]["params"]["units"] = 8
    other_path.write_text(json.dumps(other))
    cluster = cluster_of(2)
    worker = launch("worker", str(other_path), "--cluster", cluster, "--index", "1")
    chief = launch(
        "train",
        str(chief_path),
        "--cluster",
        cluster,
        "--index",
        "0",
        "--json",
        "--out",
        str(tmp_path / "run"),
    )
    try:
        code, out, _ = finish(chief)
        wcode, _, werr = finish(worker)
    finally:
        kill_group(worker)
        kill_group(chief)
    assert (code, wcode) == (1, 1), out + werr[-2000:]
    error = json.loads(out.strip().splitlines()[-1])
    assert f"the project on {cluster.split(',')[1]} differs from the chief's" in error["message"], (
        out
    )
    assert "differs from the chief's" in werr, werr[-2000:]
    assert not (tmp_path / "run" / "model.keras").exists()


def wait_for_epoch(chief: subprocess.Popen, epoch: int) -> None:
    deadline = time.monotonic() + LIMIT_S
    for line in chief.stdout:
        if f'"epoch": {epoch}' in line or time.monotonic() > deadline:
            return


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_a_hung_worker_is_named_after_the_collective_timeout(tmp_path):
    path = tmp_path / "iris.json"
    path.write_text(json.dumps(iris_project(epochs=300, timeout_s=4)))
    cluster = cluster_of(2)
    worker = launch("worker", str(path), "--cluster", cluster, "--index", "1")
    chief = launch(
        "train",
        str(path),
        "--cluster",
        cluster,
        "--index",
        "0",
        "--json",
        "--out",
        str(tmp_path / "run"),
    )
    try:
        wait_for_epoch(chief, 2)
        os.killpg(worker.pid, signal.SIGSTOP)  # alive, port open, but silent
        stopped = time.monotonic()
        code, out, err = finish(chief, limit=60)
        took = time.monotonic() - stopped
    finally:
        kill_group(worker)
        kill_group(chief)
    assert code == 1, err[-3000:]
    error = json.loads(out.strip().splitlines()[-1])
    assert f"{cluster.split(',')[1]} (worker 1) stopped answering" in error["message"]
    assert took < 20


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_worker_killed_mid_run_stops_the_chief_and_the_run_resumes(tmp_path):
    path = tmp_path / "iris.json"
    path.write_text(json.dumps(iris_project(epochs=200, checkpoint_interval_s=0)))
    run_dir = tmp_path / "run"
    cluster = cluster_of(2)
    worker = launch("worker", str(path), "--cluster", cluster, "--index", "1")
    chief = launch(
        "train", str(path), "--cluster", cluster, "--index", "0", "--json", "--out", str(run_dir)
    )
    try:
        wait_for_epoch(chief, 2)
        kill_group(worker)
        killed = time.monotonic()
        code, out, err = finish(chief, limit=60)
        took = time.monotonic() - killed
    finally:
        kill_group(worker)
        kill_group(chief)
    assert code == 1, err[-3000:]
    error = json.loads(out.strip().splitlines()[-1])
    assert error["event"] == "error"
    assert f"{cluster.split(',')[1]} (worker 1) stopped answering" in error["message"]
    assert took < 30
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "worker 1" in status["message"]
    saved = json.loads((run_dir / "checkpoints" / "state.json").read_text())["epoch"]
    assert saved >= 2 and (run_dir / "checkpoints" / "last.keras").is_file()
    assert f"--resume {run_dir} --cluster {cluster} --index 0" in error["message"]

    # once the cluster is back, the run goes on from its last checkpoint
    result = run_cluster(path, 2, run_dir, "--resume", str(run_dir), "--epochs", "1")
    done = result["done"]
    assert done["epochs_done"] == saved + 1
    assert len(done["history"]["loss"]) == saved + 1
    assert set(result["digests"]) == {done["weights_sha256"]}
