"""Training in a child process: events, pause/resume/stop, a killed worker, the CLI.

Each real run pays a process start and a TensorFlow import, so the tests share
few runs; the test process itself never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import time
import zipfile
from pathlib import Path

import pytest

from engine.cli.train import HumanReporter, cli_train
from engine.train.worker import start_training
from tests.engine.test_training import dense_project


def wait_for(run, kind: str, timeout: float = 120.0) -> tuple[dict, list[dict]]:
    """Poll until an event of ``kind`` arrives; (that event, everything before it)."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in run.poll(timeout=0.5):
            if event["event"] == kind:
                return event, seen
            assert event["event"] not in ("done", "error"), event
            seen.append(event)
    raise AssertionError(f"no {kind!r} event within {timeout} s; saw {seen[-3:]}")


def is_keras_file(path: Path) -> bool:
    with zipfile.ZipFile(path) as z:
        return {"config.json", "model.weights.h5"} <= set(z.namelist())


@pytest.mark.slow
def test_worker_run_pauses_resumes_and_stops_keeping_the_model(tmp_path):
    run_dir = tmp_path / "run"
    run = start_training(dense_project({"batch_size": 4, "epochs": 1000}), run_dir)
    started, _ = wait_for(run, "started")
    assert started["devices"] == ["CPU:0"] and started["epochs"] == 1000
    batch, _ = wait_for(run, "batch")
    assert batch["steps"] == 30 and batch["samples_per_s"] > 0

    run.pause()
    wait_for(run, "paused")
    time.sleep(0.6)
    assert [e["event"] for e in run.poll()] == []  # nothing moves while paused
    assert run.is_alive()
    run.resume()
    wait_for(run, "resumed")
    wait_for(run, "epoch")

    run.stop()
    final = run.wait(timeout=60)
    assert final["event"] == "done" and final["stopped"] is True, final
    assert 1 <= final["epochs_done"] < 1000
    assert final["model"] == str(run_dir / "model.keras")
    assert is_keras_file(run_dir / "model.keras")
    assert len(final["history"]["loss"]) == final["epochs_done"]
    assert list(run.events())[-1] == final  # the stream ends with the final event
    deadline = time.monotonic() + 30
    while run.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not run.is_alive()


@pytest.mark.slow
def test_worker_killed_from_outside_reports_died(tmp_path):
    run = start_training(dense_project({"batch_size": 4, "epochs": 1000}), tmp_path / "run")
    wait_for(run, "started")
    os.kill(run.pid, signal.SIGKILL)
    final = run.wait(timeout=30)
    assert final is not None, "the caller hung after the worker died"
    assert final["event"] == "error" and final["kind"] == "died"
    assert "SIGKILL" in final["message"] and "memory" in final["hint"]
    events = list(run.events())
    assert events[-1] == final
    assert (tmp_path / "run" / "project.json").is_file()  # the failed run left its files


def test_stop_that_goes_unnoticed_terminates_the_worker(tmp_path):
    run = start_training(dense_project(), tmp_path / "run")
    run.stop(grace=0.2)  # TensorFlow is still loading: no batch will see the request
    final = run.wait(timeout=30)
    assert final["event"] == "error" and final["kind"] == "died"
    assert "did not stop" in final["message"]
    assert not run.is_alive()


def test_worker_reports_bad_settings_as_config_error(tmp_path):
    run = start_training(dense_project({"optimizer": {"type": "Adamm"}}), tmp_path / "run")
    final = run.wait(timeout=60)
    assert final["kind"] == "config" and "Adamm" in final["message"]
    assert [e["event"] for e in run.events()] == ["error"]


# ------------------------------------------------------------------------------ CLI


def cli_args(**kw) -> argparse.Namespace:
    base = {
        "project": None,
        "epochs": None,
        "out": None,
        "device": None,
        "json": False,
        "resume": None,
    }
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.slow
def test_cli_train_json_prints_epochs_then_done(tmp_path, capsys):
    project = tmp_path / "iris.json"
    project.write_text(json.dumps(dense_project({"epochs": 2})))
    run_dir = tmp_path / "run"
    code = cli_train(cli_args(project=str(project), out=str(run_dir), json=True))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [(e["event"], e.get("epoch")) for e in lines] == [
        ("epoch", 1),
        ("epoch", 2),
        ("done", None),
    ]
    assert set(lines[0]) == {"event", "epoch", "logs"} and "val_loss" in lines[0]["logs"]
    done = lines[-1]
    assert set(done) == {"event", "run_dir", "model", "history"}
    assert done["model"] == str(run_dir / "model.keras") and len(done["history"]["loss"]) == 2
    assert is_keras_file(run_dir / "model.keras")


def test_cli_human_output_draws_progress_in_place():
    out, err = io.StringIO(), io.StringIO()
    out.isatty = lambda: True
    show = HumanReporter(out, err)
    show(
        {
            "event": "started",
            "devices": ["CPU:0"],
            "total_params": 1234,
            "samples": 120,
            "steps_per_epoch": 30,
            "epochs": 5,
            "initial_epoch": 2,
        }
    )
    show(
        {
            "event": "batch",
            "epoch": 3,
            "step": 7,
            "steps": 30,
            "logs": {"loss": 0.51234},
            "samples_per_s": 4321.0,
            "eta_s": 75.0,
        }
    )
    show({"event": "epoch", "epoch": 3, "logs": {"loss": 0.5, "val_loss": 0.6}, "time_s": 1.5})
    show(
        {
            "event": "done",
            "run_dir": "r",
            "model": "r/model.keras",
            "history": {},
            "epochs_done": 3,
            "stopped": True,
        }
    )
    show(
        {
            "event": "error",
            "kind": "nan",
            "message": "the loss became nan",
            "hint": "Lower the learning rate",
        }
    )
    text = out.getvalue()
    assert text.startswith("training on CPU:0: 1,234 parameters") and "from epoch 3" in text
    progress = text.split("\r")[1]
    for part in ("epoch 3/5", "step 7/30", "loss 0.5123", "4,321 samples/s", "ETA 1 min 15 s"):
        assert part in progress
    lines = [line.strip() for line in text.split("\r")[-1].splitlines()]
    assert lines[-2].startswith("epoch 3/5  loss 0.5  val_loss 0.6")
    assert lines[-1].startswith("stopped; kept 3 epochs")
    assert err.getvalue().splitlines()[-1] == "error: the loss became nan"


def test_cli_train_errors(tmp_path, capsys):
    assert cli_train(cli_args(project=str(tmp_path / "missing.json"))) == 2
    assert "missing.json" in capsys.readouterr().err

    project = tmp_path / "bad.json"
    project.write_text(json.dumps(dense_project({"batch_size": 0})))
    code = cli_train(cli_args(project=str(project), out=str(tmp_path / "r"), json=True))
    assert code == 1
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert last["event"] == "error" and "batch_size" in last["message"]

    code = cli_train(cli_args(project=str(project), out=str(tmp_path / "r2")))
    assert code == 1
    assert (
        "batch_size must be a whole number >= 1; got 0"
        in capsys.readouterr().err.strip().splitlines()[-1]
    )

    assert cli_train(cli_args(resume=str(tmp_path / "r2"))) == 2  # no run to resume there
    assert "project.json" in capsys.readouterr().err
