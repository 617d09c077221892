"""The warm training worker: a process started ahead that imports TensorFlow and
waits for one run (issue 17). Each test pays one or two TensorFlow imports."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from engine.train.lock import read_lock
from engine.train.worker import WarmWorker, device_key, start_training
from tests.engine.test_training import dense_project
from tests.engine.test_worker import wait_for


def wait_ready(warm: WarmWorker, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not warm.ready():
        assert time.monotonic() < deadline, "the warm worker never became ready"
        time.sleep(0.1)


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{pid}/stat") as f:  # a zombie counts as gone
            if f.read().split(") ")[-1].startswith("Z"):
                return True
        time.sleep(0.05)
    return False


def test_device_keys_say_which_runs_a_worker_can_take():
    assert device_key(None) == device_key("AUTO ") == "auto"
    assert device_key("gpu") == "gpu:0"
    # once the worker knows the machine has no GPU, auto/all/cpu need the same setup
    assert device_key("auto", 0) == device_key("all", 0) == device_key("cpu", 0) == "cpu"
    assert device_key("gpu:1", 0) == "gpu:1"
    assert device_key("auto", 2) == "gpu:0" and device_key("all", 2) == "all"


@pytest.mark.slow
def test_warm_worker_trains_the_run_and_obeys_pause_resume_stop(tmp_path):
    warm = WarmWorker("cpu")
    try:
        wait_ready(warm)
        assert warm.info["device"] == "cpu" and "warm_s" in warm.info
        run_dir = tmp_path / "run"
        t0 = time.monotonic()
        run = start_training(dense_project({"batch_size": 4, "epochs": 1000}), run_dir, warm=warm)
        assert run.warm and run.pid == warm.pid and warm.used
        lock = read_lock(run_dir)  # the parent holds the run lock, with the worker in it
        assert lock["pid"] == os.getpid() and run.pid in [pid for pid, _ in lock["pids"]]
        wait_for(run, "batch")
        assert time.monotonic() - t0 < 5.0  # no TensorFlow import on the way
        run.pause()
        wait_for(run, "paused")
        run.resume()
        wait_for(run, "resumed")
        run.stop()
        final = run.wait(timeout=60)
        assert final["event"] == "done" and final["stopped"] is True, final
        assert read_lock(run_dir) is None  # the folder is free again
        assert (run_dir / "worker.log").is_file()  # the run's output went to its log
        assert gone(warm.pid)  # one run per worker: it ends after it
        assert not warm.is_alive()
    finally:
        warm.close()


@pytest.mark.slow
def test_warm_worker_killed_while_idle_is_not_used_and_the_run_still_trains(tmp_path):
    warm = WarmWorker("cpu")
    wait_ready(warm)
    os.kill(warm.pid, signal.SIGKILL)  # Train is pressed right after: no wait
    t0 = time.monotonic()
    run = start_training(dense_project({"epochs": 1}), tmp_path / "run", warm=warm)
    assert not run.warm and run.pid != warm.pid
    assert time.monotonic() - t0 < 5.0  # the dead worker was noticed, no hang
    final = run.wait(timeout=120)
    assert final["event"] == "done", final
    assert not warm.is_alive()


@pytest.mark.slow
def test_warm_worker_killed_while_training_reports_died(tmp_path):
    warm = WarmWorker(None)  # handed the run before it is even ready
    run = start_training(
        dense_project({"batch_size": 4, "epochs": 1000}), tmp_path / "r", warm=warm
    )
    assert run.warm
    wait_for(run, "started")
    os.kill(run.pid, signal.SIGKILL)
    final = run.wait(timeout=30)
    assert final is not None, "the caller hung after the worker died"
    assert final["event"] == "error" and final["kind"] == "died"
    assert "SIGKILL" in final["message"]
    assert json.loads((tmp_path / "r" / "status.json").read_text())["state"] == "failed"
    assert read_lock(tmp_path / "r") is None


@pytest.mark.slow
def test_a_run_for_another_device_spawns_a_fresh_worker_and_ends_the_warm_one(tmp_path):
    warm = WarmWorker("cpu")
    wait_ready(warm)
    assert warm.fits("auto") and warm.fits("cpu")  # this machine has no GPU
    pid = warm.pid
    run = start_training(dense_project({"epochs": 1}), tmp_path / "run", device="gpu:0", warm=warm)
    assert not run.warm and run.pid != pid
    assert gone(pid)  # not left idle next to the run
    final = run.wait(timeout=120)
    # what a fresh process says about a GPU this machine lacks, as before
    assert final["event"] == "error" and final["kind"] == "config", final
    assert "no GPU" in final["message"]


def test_closing_an_idle_warm_worker_ends_its_process():
    warm = WarmWorker("cpu")
    pid = warm.pid
    warm.close()
    assert gone(pid) and not warm.is_alive() and not warm.ready()
    assert warm.take(("x",), "cpu") is None  # a closed worker takes nothing


@pytest.mark.slow
def test_a_resumed_run_continues_in_the_warm_worker(tmp_path):
    warm = WarmWorker("cpu")  # warms up while the first run trains
    run_dir = tmp_path / "run"
    first = start_training(dense_project({"epochs": 1}), run_dir).wait(timeout=120)
    assert first["event"] == "done" and first["epochs_done"] == 1, first
    # ready first: until it has seen the machine's GPUs, a worker set up for "cpu" does
    # not know that the project's "auto" means the same here, and is not used
    wait_ready(warm)
    run = start_training(dense_project({"epochs": 1}), run_dir, resume=True, epochs=1, warm=warm)
    assert run.warm
    final = run.wait(timeout=120)
    assert final["event"] == "done" and final["epochs_done"] == 2, final
    assert len(final["history"]["loss"]) == 2
    assert json.loads((run_dir / "status.json").read_text())["state"] == "done"


@pytest.mark.slow
def test_a_spare_warms_up_only_once_released_and_takes_a_run_before_that(tmp_path):
    spare = WarmWorker(low_priority=True)
    try:
        time.sleep(8)  # time enough to import TensorFlow; it waits for its release
        assert not spare.ready() and spare.is_alive()
        spare.release()
        wait_ready(spare)
        assert spare.info["device"] == device_key(None, spare.info["gpus"])
        assert "problem" not in spare.info
    finally:
        spare.close()
    early = WarmWorker(low_priority=True)  # handed a run before it was released
    run = start_training(dense_project({"batch_size": 8, "epochs": 1}), tmp_path / "r", warm=early)
    events = list(run.events())
    assert run.warm and events[-1]["event"] == "done" and events[-1]["epochs_done"] == 1
