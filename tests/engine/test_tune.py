"""Hyper-parameter search (``layerlab tune``, ``tune-worker``): the search section's checks,
reproducible sampling, trials as normal runs, pruning, a killed search resumed, and two
workers sharing one study. Trials run in child processes (iris, a few epochs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.model.project import load_project
from engine.tune.space import SearchError, apply_params, parse_search
from engine.tune.study import Search, default_storage, open_storage, read_study, summary

ROOT = Path(__file__).resolve().parents[2]


def iris(search: dict, epochs: int = 4, lr: float = 1e-5) -> dict:
    return {
        "format": "layerlab",
        "version": 1,
        "name": "iris",
        "graph": {
            "nodes": [
                {"id": "input", "type": "Input", "params": {"shape": [4]}, "position": [0, 0]},
                {"id": "norm", "type": "Normalization", "params": {}, "position": [0, 60]},
                {
                    "id": "hidden",
                    "type": "Dense",
                    "params": {"units": 16, "activation": "relu"},
                    "position": [0, 120],
                },
                {"id": "drop", "type": "Dropout", "params": {"rate": 0.1}, "position": [0, 180]},
                {
                    "id": "output",
                    "type": "Dense",
                    "params": {"units": 3, "activation": "softmax"},
                    "position": [0, 240],
                },
            ],
            "edges": [
                {"source": "input", "target": "norm", "port": 0},
                {"source": "norm", "target": "hidden", "port": 0},
                {"source": "hidden", "target": "drop", "port": 0},
                {"source": "drop", "target": "output", "port": 0},
            ],
        },
        "data": {"source": "builtin:iris", "validation_split": 0.3, "seed": 0},
        "training": {
            "optimizer": {"type": "Adam", "learning_rate": lr},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
            "batch_size": 16,
            "epochs": epochs,
            "seed": 0,
            "tensorboard": False,
        },
        "search": search,
    }


def write(tmp_path: Path, project: dict, name: str = "iris.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(project), encoding="utf-8")
    return path


def cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("LAYERLAB_RUNS_DIR", None)
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        **kw,
    )


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# ---------------------------------------------------------------- the search section
LR = "training.optimizer.learning_rate"


@pytest.mark.parametrize(
    "params, named",
    [
        ({"hiden.units": {"choices": [8, 16]}}, "there is no node 'hiden'"),
        ({"hidden.unitz": {"choices": [8, 16]}}, "Dense 'hidden' has no parameter 'unitz'"),
        ({"hidden.units": {"low": 0, "high": 64}}, "'hidden.units' = 0: units must be"),
        ({"hidden.units": {"low": 1.5, "high": 64.0}}, "'hidden.units' is a whole number"),
        ({"drop.rate": {"low": 0.0, "high": 1.5}}, "'drop.rate' = 1.5: rate must be"),
        ({"hidden.activation": {"choices": ["relu", "rleu"]}}, "activation must be"),
        ({LR: {"low": -0.1, "high": 0.1}}, f"'{LR}' = -0.1"),
        ({LR: {"low": 0.0, "high": 0.1, "log": True}}, "a log range needs low > 0"),
        ({"training.optimizer.learning_rat": {"choices": [0.1]}}, "no parameter 'learning_rat'"),
        ({"training.epoch": {"choices": [3]}}, "unknown key 'epoch'"),
        ({"training.optimizer.type": {"choices": ["Adam", "Adamm"]}}, "'Adamm' is unknown"),
    ],
)
def test_an_invalid_space_is_refused_by_name(params, named):
    with pytest.raises(SearchError) as err:
        parse_search(iris({"parameters": params}))
    assert named in str(err.value)


def test_a_valid_space_parses_and_applies_as_a_plain_dict_edit():
    project = iris(
        {
            "parameters": {
                "hidden.units": {"low": 8, "high": 64, "step": 8},
                "drop.rate": {"low": 0, "high": 1},  # ints on a float param: a float range
                LR: {"low": 1e-4, "high": 0.1, "log": True},
                "training.optimizer.type": {"choices": ["Adam", "SGD"]},
            },
            "strategy": "random",
            "metric": "val_accuracy",
        }
    )
    space = parse_search(project)
    assert space.direction == "maximize"  # from the metric
    kinds = {p.name: p.is_int for p in space.params}
    assert kinds == {
        "hidden.units": True,
        "drop.rate": False,
        LR: False,
        "training.optimizer.type": False,
    }
    trial = apply_params(project, {"hidden.units": 32, LR: 0.01, "training.optimizer.type": "SGD"})
    assert "search" not in trial and project["training"]["optimizer"]["learning_rate"] == 1e-5
    assert trial["graph"]["nodes"][2]["params"]["units"] == 32
    assert trial["training"]["optimizer"] == {"type": "SGD", "learning_rate": 0.01}


def test_the_cli_refuses_an_invalid_space_before_any_trial(tmp_path):
    path = write(tmp_path, iris({"parameters": {"hidden.unitz": {"choices": [8]}}}))
    proc = cli("tune", str(path), "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "hidden.unitz" in err and "Traceback" not in err
    assert not (tmp_path / "iris-runs").exists()  # no study, no run


def test_a_storage_that_cannot_be_opened_is_refused_by_name(tmp_path):
    path = write(tmp_path, iris({"parameters": {LR: {"choices": [0.1]}}}))
    proc = cli("tune", str(path), "--storage", "nosuchdb://nowhere", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "--storage nosuchdb://nowhere: cannot be opened" in err
    assert "Traceback" not in err and out == ""


def test_a_seeded_random_search_samples_the_same_values(tmp_path, monkeypatch):
    monkeypatch.setattr(Search, "_train", lambda self, trial, *a: ("complete", 0.5, None))
    search = {
        "parameters": {"hidden.units": {"low": 4, "high": 256}, LR: {"low": 1e-4, "high": 1.0, "log": True}},
        "strategy": "random",
        "trials": 5,
        "seed": 7,
    }  # fmt: skip
    seen = []
    for name in ("a.json", "b.json", "c.json"):
        if name == "c.json":
            search = {**search, "seed": 8}
        project = load_project(write(tmp_path, iris(search), name))
        space = parse_search(project.to_dict())
        result = Search(project, space, default_storage(project), warm=False).run()
        assert [t["state"] for t in result["trials"]] == ["complete"] * 5
        seen.append([t["params"] for t in result["trials"]])
    assert seen[0] == seen[1]
    assert seen[0] != seen[2]


# ---------------------------------------------------------------- real trials
def test_a_search_finishes_beats_the_start_prunes_and_resumes_after_a_kill(tmp_path):
    """Trial 0 is the starting settings (lr 1e-5), trial 1 a good rate, trial 2 a hopeless
    one. The search is killed (the whole process group, like a crash) while trial 2
    trains; run again, it keeps trials 0 and 1, runs trial 2's values again, and the
    median pruner stops that trial after its first epoch."""
    start, good, hopeless = 1e-5, 0.05, 1e-7
    search = {
        "parameters": {LR: {"low": 1e-7, "high": 0.1, "log": True}},
        "strategy": "random",
        "trials": 3,
        "metric": "val_accuracy",
        "pruner": {"type": "median", "startup_trials": 1, "warmup_epochs": 0},
        "seed": 0,
        "enqueue": [{LR: start}, {LR: good}, {LR: hopeless}],
    }
    path = write(tmp_path, iris(search, epochs=4, lr=start))
    proc = cli("tune", str(path), "--json", start_new_session=True)
    events = []
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1] == {**events[-1], "event": "trial", "trial": 2}:
            break
        assert time.monotonic() < deadline
    # Kill at once: trial 2 is already marked running in the study (its process is
    # starting); a pre-started worker can finish 4 epochs of iris in a few seconds.
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    first = {e["trial"]: e for e in events if e["event"] == "trial_end"}
    assert [first[0]["state"], first[1]["state"]] == ["complete", "complete"]
    # each epoch of a trial is an event (the window's live curves follow them)
    epochs = [e for e in events if e["event"] == "trial_epoch" and e["trial"] == 1]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4]
    assert max(e["value"] for e in epochs) == first[1]["value"]

    proc = cli("tune", str(path), "--json")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    *progress, final = lines(out)
    assert {"event": "trials_lost", "trials": [2]} in progress
    trials = {t["trial"]: t for t in final["trials"]}
    assert sorted(trials) == [0, 1, 3]  # the lost trial 2 does not count; 3 ran its values
    assert trials[0]["value"] == first[0]["value"] and trials[1]["value"] == first[1]["value"]
    assert trials[3]["params"] == {LR: hopeless}
    assert [e for e, _ in trials[1]["curve"]] == [1, 2, 3, 4]  # per-epoch values kept
    assert trials[3]["state"] == "pruned" and trials[3]["epochs"] < 4
    assert final["best"]["trial"] == 1 and final["best"]["value"] > trials[0]["value"]
    assert final["storage"] == f"journal:///{(tmp_path / 'iris-runs' / 'tune.journal').resolve()}"
    run_dir = Path(trials[1]["run_dir"])  # a normal run directory beside the project's runs
    assert run_dir.parent == tmp_path / "iris-runs"
    assert (run_dir / "model.keras").is_file() and (run_dir / "project.json").is_file()
    snapshot = json.loads((run_dir / "project.json").read_text())
    assert snapshot["training"]["optimizer"]["learning_rate"] == good


def test_two_tune_workers_share_one_study_and_run_each_trial_once(tmp_path):
    search = {
        "parameters": {"hidden.units": {"choices": [4, 8, 16, 32]}, LR: {"low": 0.01, "high": 0.1}},
        "strategy": "random",
        "trials": 4,
        "pruner": "none",
    }  # fmt: skip
    path = write(tmp_path, iris(search, epochs=1))
    # a journal file (the default kind): Optuna's lock file serialises the appends
    storage = f"journal:///{tmp_path / 'shared.journal'}"
    workers = [cli("tune-worker", str(path), "--storage", storage, "--json") for _ in range(2)]
    outs = []
    for w in workers:
        out, err = w.communicate(timeout=400)
        assert w.returncode == 0, err
        outs.append(lines(out))
    started = [e["trial"] for out in outs for e in out if e.get("event") == "trial"]
    assert sorted(started) == sorted(set(started)) and len(started) == 4  # none twice
    assert all(any(e.get("event") == "trial" for e in out) for out in outs)  # both worked
    # each worker's last line is the study as it ended; once both have, all is complete
    import optuna

    study = optuna.load_study(study_name="iris", storage=open_storage(storage))
    final = summary(study, storage)
    assert len(final["trials"]) == 4 and all(t["state"] == "complete" for t in final["trials"])
    dirs = sorted(p.name for p in (tmp_path / "iris-runs").glob("tune-*"))
    assert len(dirs) == 4 and all(
        (tmp_path / "iris-runs" / d / "model.keras").is_file() for d in dirs
    )


def test_applying_a_trial_is_one_undoable_edit(tmp_path):
    from engine.model.commands import UndoStack
    from engine.tune.space import apply_command

    project = load_project(write(tmp_path, iris({"parameters": {LR: {"choices": [0.1]}}})))
    before = project.to_dict()
    stack = UndoStack(project)
    stack.push(apply_command(project, {"hidden.units": 64, "drop.rate": 0.3, LR: 0.02}))
    after = project.to_dict()
    assert after["training"]["optimizer"]["learning_rate"] == 0.02
    nodes = {n["id"]: n for n in after["graph"]["nodes"]}
    assert nodes["hidden"]["params"] == {"units": 64, "activation": "relu"}
    assert nodes["drop"]["params"]["rate"] == 0.3
    stack.undo()  # one step takes it all back
    assert project.to_dict() == before and not stack.can_undo


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_grid_search_runs_every_combination_once(tmp_path, monkeypatch):
    monkeypatch.setattr(Search, "_train", lambda self, trial, *a: ("complete", 0.5, None))
    search = {
        "parameters": {"hidden.units": {"low": 8, "high": 24, "step": 8}, LR: {"choices": [0.1, 0.01]}},
        "strategy": "grid",
        "trials": 50,
    }  # fmt: skip
    project = load_project(write(tmp_path, iris(search)))
    result = Search(
        project, parse_search(project.to_dict()), default_storage(project), warm=False
    ).run()
    combos = sorted((t["params"]["hidden.units"], t["params"][LR]) for t in result["trials"])
    assert combos == [(u, lr) for u in (8, 16, 24) for lr in (0.01, 0.1)]


def test_tune_summary_prints_trials_curves_and_importances_and_runs_nothing(tmp_path, monkeypatch):
    """``layerlab tune --summary --json`` (how the window reads a study without Optuna in
    its process): the trials, each one's per-epoch curve, and the parameters'
    importances (Optuna's, largest first); nothing is trained."""
    seen = iter(range(6))

    def train(self, trial, *a):
        k = next(seen)
        for epoch in (1, 2):
            trial.report(0.1 * k + 0.01 * epoch, epoch)
        return "complete", 0.1 * k + 0.02, None

    monkeypatch.setattr(Search, "_train", train)
    search = {
        "parameters": {"hidden.units": {"choices": [4, 8, 16]}, LR: {"low": 1e-3, "high": 0.1, "log": True}},
        "strategy": "random", "trials": 6, "metric": "val_accuracy", "seed": 1,
    }  # fmt: skip
    path = write(tmp_path, iris(search))
    project = load_project(path)
    Search(project, parse_search(project.to_dict()), default_storage(project), warm=False).run()
    before = sorted(p.name for p in (tmp_path / "iris-runs").iterdir())
    proc = cli("tune", str(path), "--summary", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    (result,) = lines(out)
    assert [t["trial"] for t in result["trials"]] == list(range(6))
    assert result["trials"][2]["curve"] == [[1, pytest.approx(0.21)], [2, pytest.approx(0.22)]]
    assert result["best"]["trial"] == 5
    shares = result["importances"]
    assert set(shares) == {"hidden.units", LR}
    assert list(shares.values()) == sorted(shares.values(), reverse=True)
    assert sum(shares.values()) == pytest.approx(1, abs=0.01)
    assert sorted(p.name for p in (tmp_path / "iris-runs").iterdir()) == before  # ran nothing


def test_tune_summary_of_a_project_without_a_study_yet_is_empty(tmp_path):
    path = write(tmp_path, iris({"parameters": {LR: {"choices": [0.1]}}}))
    proc = cli("tune", str(path), "--summary", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert lines(out) == [{"best": None, "trials": [], "storage": None, "importances": {}}]
    assert not (tmp_path / "iris-runs").exists()  # reading never creates the study


def test_a_snapshot_is_tuned_as_if_it_were_the_project(tmp_path):
    """``--snapshot FILE``: the window's unsaved edits, with the saved project's runs
    folder (and study); a wrong space in the snapshot is named before anything runs."""
    path = write(tmp_path, iris({"parameters": {LR: {"choices": [0.1]}}}))
    snap = write(tmp_path, iris({"parameters": {"hidden.unitz": {"choices": [8]}}}), "snap.json")
    proc = cli("tune", str(path), "--json", "--snapshot", str(snap))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "hidden.unitz" in err and "Traceback" not in err


def test_a_study_of_an_earlier_version_in_sqlite_is_still_the_default(tmp_path, monkeypatch):
    """Studies used to live in <runs>/tune.sqlite3; a project that has one resumes it
    there, a new project gets a journal file (no SQLAlchemy, no tables to create)."""
    monkeypatch.setattr(Search, "_train", lambda self, trial, *a: ("complete", 0.5, None))
    project = load_project(write(tmp_path, iris({"parameters": {LR: {"choices": [0.1, 0.2]}},
                                                 "strategy": "grid"})))  # fmt: skip
    assert default_storage(project).endswith("/iris-runs/tune.journal")
    assert read_study(project) is None
    old = f"sqlite:///{(tmp_path / 'iris-runs' / 'tune.sqlite3').resolve()}"
    space = parse_search(project.to_dict())
    Search(project, space, old, trials=1, warm=False).run()
    assert default_storage(project) == old
    assert [t["trial"] for t in read_study(project)["trials"]] == [0]
    assert not (tmp_path / "iris-runs" / "tune.journal").exists()


def test_a_search_emits_importances_after_each_complete_trial_from_the_third(tmp_path, monkeypatch):
    """The window's importance bars follow a running search: from the 3rd complete
    trial on, each complete trial is followed by an ``importances`` event (shares that
    sum to 1, largest first), cheap enough to compute in the tune process."""
    seen = iter(range(5))
    monkeypatch.setattr(
        Search, "_train", lambda self, trial, *a: ("complete", 0.1 * next(seen), None)
    )
    search = {
        "parameters": {"hidden.units": {"choices": [4, 8, 16]}, LR: {"low": 1e-3, "high": 0.1, "log": True}},
        "strategy": "random", "trials": 5, "metric": "val_accuracy", "seed": 1,
    }  # fmt: skip
    project = load_project(write(tmp_path, iris(search)))
    events: list[dict] = []
    Search(
        project, parse_search(project.to_dict()), default_storage(project),
        emit=events.append, warm=False,
    ).run()  # fmt: skip
    kinds = [e["event"] for e in events if e["event"] in ("trial_end", "importances")]
    assert kinds == ["trial_end"] * 3 + ["importances", "trial_end"] * 2 + ["importances"]
    live = [e for e in events if e["event"] == "importances"]
    assert [e["complete"] for e in live] == [3, 4, 5]
    for e in live:
        assert set(e["importances"]) == {"hidden.units", LR}
        assert sum(e["importances"].values()) == pytest.approx(1, abs=0.01)
        assert e["cpu_s"] < 0.5  # measured in the tune process; past 0.5 s it stops
