"""Run directories that lose nothing and never lie (issue 12, training runs).

- one run per folder: an O_EXCL lock naming its owner; a second ``train`` is refused
  by name (exit 2), a stale lock of a dead process is taken over with a note;
- after a hard stop (kill -9 or SIGTERM to the process group, a full disk during a
  checkpoint) ``status.json`` ends stopped/failed, a resume has one history row per
  epoch, and a run stopped before its first checkpoint starts again in place;
- a killed worker is recorded as ``failed`` (kind ``died``) with the log lines that
  explain it, not TensorFlow's start-up noise; Ctrl+C twice says what is kept.

The command-line tests run ``python -m engine.cli train`` in its own process group,
on iris with a tiny model.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from engine.cli.train import HumanReporter, follow
from engine.train import runs
from engine.train.history import read_run_info
from engine.train.lock import LOCK_NAME, RunDirBusy, acquire, lock_state
from engine.train.worker import LOG_NAME, log_tail, start_training
from tests.engine.test_training import dense_project, train

ROOT = Path(__file__).resolve().parents[2]


def env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **extra,
    }


def project_file(tmp_path: Path, **training) -> Path:
    path = tmp_path / "iris.json"
    path.write_text(json.dumps(dense_project({"epochs": 3, **training})))
    return path


def cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "train", *args],
        env=kwargs.pop("env", None) or env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def history_rows(run_dir: Path) -> tuple[int, int]:
    """(rows of history.json, rows of history.csv)."""
    data = json.loads((run_dir / "history.json").read_text())
    lengths = {len(v) for v in data.values()}
    assert len(lengths) == 1, data  # every metric has the same number of rows
    csv_rows = len((run_dir / "history.csv").read_text().splitlines()) - 1
    return lengths.pop(), csv_rows


def status(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


def wait_for_file(check, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError("timed out")


# ------------------------------------------------------------------------------ the lock


def test_a_folder_in_use_is_refused_naming_the_process(tmp_path):
    holder = subprocess.Popen(["sleep", "60"])
    try:
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        (run_dir / LOCK_NAME).write_text(
            json.dumps({"pid": holder.pid, "host": socket.gethostname()})
        )
        started = time.monotonic()
        p = cli(str(project_file(tmp_path)), "--out", str(run_dir))
        out, err = p.communicate(timeout=60)
        assert p.returncode == 2, (out, err)
        assert f"{run_dir} is in use by process {holder.pid}" in err
        assert "Traceback" not in err
        assert time.monotonic() - started < 15  # refused before TensorFlow starts
        assert sorted(x.name for x in run_dir.iterdir()) == [LOCK_NAME]  # untouched
    finally:
        holder.kill()
        holder.wait()


def test_two_trains_into_one_folder_at_once_one_is_refused(tmp_path):
    project = project_file(tmp_path)
    run_dir = tmp_path / "run"
    a = cli(str(project), "--out", str(run_dir))
    b = cli(str(project), "--out", str(run_dir))
    results = [p.communicate(timeout=240) for p in (a, b)]
    codes = sorted((a.returncode, b.returncode))
    assert codes == [0, 2], results
    refused = results[[a.returncode, b.returncode].index(2)][1]
    assert f"{run_dir} is in use by process" in refused
    assert status(run_dir)["state"] == "done"
    assert history_rows(run_dir) == (3, 3)
    assert not (run_dir / LOCK_NAME).exists()  # released when the run ended


def test_of_many_at_once_exactly_one_gets_the_lock(tmp_path):
    got, refused = [], []
    barrier = threading.Barrier(8)

    def take() -> None:
        barrier.wait()
        try:
            got.append(acquire(tmp_path / "run"))
        except RunDirBusy as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 1 and len(refused) == 7
    assert f"in use by process {os.getpid()}" in refused[0]
    got[0].release()
    assert lock_state(tmp_path / "run") == ("free", None)


def test_a_stale_lock_is_taken_over_with_a_note_and_a_foreign_one_is_not(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    pid = dead_pid()
    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    assert lock_state(run_dir)[0] == "stale"
    with acquire(run_dir) as lock:
        assert f"locked by process {pid}, which is no longer running" in lock.note
        assert json.loads((run_dir / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (run_dir / LOCK_NAME).exists()

    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": "elsewhere.example"}))
    with pytest.raises(RunDirBusy, match=f"in use by process {pid} on elsewhere.example"):
        acquire(run_dir)


def test_a_recycled_pid_does_not_keep_a_lock_alive(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    me = os.getpid()  # alive, but not the process that started at tick 1
    (run_dir / LOCK_NAME).write_text(
        json.dumps({"pid": me, "host": socket.gethostname(), "pids": [[me, 1]]})
    )
    assert lock_state(run_dir)[0] == "stale"


# ---------------------------------------------------------------- after a hard stop


def forge_hard_stop(run_dir: Path, extra_rows: int = 2) -> None:
    """What kill -9 of the process group leaves: history rows past the checkpoint,
    status "running" from a process that is gone, and no live lock."""
    history = json.loads((run_dir / "history.json").read_text())
    runs.write_history(run_dir, {k: v + v[-1:] * extra_rows for k, v in history.items()})
    runs.write_json(run_dir / "status.json", {"state": "running", "pid": dead_pid()})


def test_resume_after_a_hard_stop_has_one_history_row_per_epoch(tmp_path):
    run_dir = tmp_path / "run"
    final, _ = train(dense_project({"epochs": 2}), run_dir)
    assert final["event"] == "done"
    first = json.loads((run_dir / "history.json").read_text())
    (run_dir / "model.keras").unlink()  # killed before the end: no final model
    forge_hard_stop(run_dir)
    assert history_rows(run_dir) == (4, 4)

    final, events = train(dense_project({"epochs": 4}), run_dir, resume=True)
    assert final["event"] == "done", final
    assert history_rows(run_dir) == (4, 4)  # 2 kept + 2 trained, none twice
    after = json.loads((run_dir / "history.json").read_text())
    assert after["loss"][:2] == first["loss"]
    assert len(final["history"]["loss"]) == 4
    notes = [e["message"] for e in events if e["event"] == "warning"]
    assert any("was interrupted" in n for n in notes), notes
    assert status(run_dir)["state"] == "done"


def test_a_stale_running_status_is_shown_and_repaired_as_interrupted(tmp_path):
    run_dir = tmp_path / "run"
    train(dense_project({"epochs": 2}), run_dir)
    forge_hard_stop(run_dir)
    info = read_run_info(run_dir)
    assert info.status == "stopped" and info.kind == "interrupted"
    assert "interrupted" in info.message and "epochs 1-2 are kept" in info.message
    assert info.epochs == 2 and info.can_resume
    on_disk = status(run_dir)
    assert on_disk["state"] == "stopped" and on_disk["interrupted"] is True
    assert not (run_dir / LOCK_NAME).exists()

    # while a live process holds the lock, "running" is the truth
    runs.write_json(run_dir / "status.json", {"state": "running", "pid": os.getpid()})
    with acquire(run_dir):
        assert read_run_info(run_dir).status == "running"
    assert status(run_dir)["state"] == "running"


@pytest.mark.parametrize("resume", [False, True])
def test_a_run_stopped_before_its_first_checkpoint_starts_again_in_place(tmp_path, resume):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    runs.write_json(run_dir / "project.json", dense_project())
    runs.write_history(run_dir, {"loss": [1.0, 0.9, 0.8]})
    runs.write_json(run_dir / "status.json", {"state": "running", "pid": dead_pid()})
    assert runs.run_dir_problem(run_dir, resume) is None

    final, events = train(dense_project({"epochs": 2}), run_dir, resume=resume)
    assert final["event"] == "done", final
    assert history_rows(run_dir) == (2, 2)
    notes = " ".join(e["message"] for e in events if e["event"] == "warning")
    assert "stopped before its first checkpoint" in notes and "starts again" in notes
    assert status(run_dir)["state"] == "done"


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    import keras

    from engine.train import callbacks

    monkeypatch.setattr(callbacks, "CHECKPOINT_INTERVAL_S", 0.0)
    real_save = keras.Model.save
    calls = []

    def save(model, path, *args, **kwargs):
        calls.append(Path(path))
        if len(calls) == 2:  # the second checkpoint: the disk fills up half-way
            Path(path).write_bytes(b"PK\x03\x04 half a file")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(model, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", save)
    run_dir = tmp_path / "run"
    final, _ = train(dense_project({"epochs": 3}), run_dir)
    assert final["event"] == "error" and final["kind"] == "disk", final
    assert "the disk is full" in final["message"] and "kept" in final["message"]
    last = run_dir / "checkpoints" / "last.keras"
    with zipfile.ZipFile(last) as z:  # the epoch-1 checkpoint, whole
        assert "model.weights.h5" in z.namelist()
    assert runs.checkpoint_epoch(run_dir) == 1
    leftovers = [p.name for p in run_dir.rglob("*") if ".layerlab-tmp-" in p.name]
    assert leftovers == []
    assert status(run_dir)["state"] == "failed" and status(run_dir)["epochs_done"] == 1
    assert read_run_info(run_dir).can_resume

    monkeypatch.setattr(keras.Model, "save", real_save)
    final, _ = train(dense_project({"epochs": 3}), run_dir, resume=True)
    assert final["event"] == "done", final
    assert history_rows(run_dir) == (3, 3)


def test_a_slow_disk_does_not_hold_training_up_and_the_history_is_whole(tmp_path, monkeypatch):
    real = runs.write_history

    def slow(run_dir, history):  # a disk that takes 0.6 s to sync the history files
        time.sleep(0.6)
        real(run_dir, history)

    monkeypatch.setattr(runs, "write_history", slow)
    run_dir = tmp_path / "run"
    final, events = train(dense_project({"epochs": 4}), run_dir)
    assert final["event"] == "done", final
    ends = [e for e in events if e["event"] == "epoch"]
    assert len(ends) == 4
    # written on the training thread, the three epochs between the first and the last
    # end would take at least 3 x 0.6 s; in the background they do not wait for it
    span = sum(e["time_s"] for e in ends[1:])
    assert span < 1.8, span
    assert history_rows(run_dir) == (4, 4)
    assert json.loads((run_dir / "history.json").read_text()) == final["history"]


@pytest.mark.slow
def test_kill_9_of_the_process_group_then_resume(tmp_path):
    project = project_file(tmp_path, epochs=12, batch_size=4)
    run_dir = tmp_path / "run"
    p = cli(str(project), "--out", str(run_dir), env=env(LAYERLAB_CHECKPOINT_INTERVAL_S="0.5"))
    wait_for_file(
        lambda: (
            runs.checkpoint_epoch(run_dir) >= 2
            and history_rows(run_dir)[0] > runs.checkpoint_epoch(run_dir)
        )
    )
    os.killpg(p.pid, signal.SIGKILL)
    killed = time.monotonic()
    p.communicate()
    wait_for_file(lambda: read_run_info(run_dir).status != "running", timeout=5)
    took = time.monotonic() - killed  # here 0.1-0.3 s: the processes' deaths
    assert took < 5
    info = read_run_info(run_dir)
    assert info.status == "stopped" and "interrupted" in info.message and info.can_resume
    kept = runs.checkpoint_epoch(run_dir)

    r = subprocess.run(
        [sys.executable, "-m", "engine.cli", "train", "--resume", str(run_dir)],
        env=env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr
    assert f"from epoch {kept + 1}" in r.stdout
    assert history_rows(run_dir) == (12, 12)
    assert status(run_dir)["state"] == "done"
    assert not (run_dir / LOCK_NAME).exists()


@pytest.mark.slow
def test_sigterm_to_the_process_group_writes_a_final_checkpoint(tmp_path):
    project = project_file(tmp_path, epochs=1000, batch_size=4)
    run_dir = tmp_path / "run"
    p = cli(str(project), "--out", str(run_dir))  # checkpoints every 30 s: none yet
    wait_for_file(lambda: history_rows(run_dir)[0] >= 2)
    assert not (run_dir / "checkpoints" / "last.keras").exists()
    os.killpg(p.pid, signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 143, (out, err)
    assert "stopped; kept" in out
    st = status(run_dir)
    assert st["state"] == "stopped" and "SIGTERM" in st["message"]
    assert runs.checkpoint_epoch(run_dir) == st["epochs_done"] >= 2
    assert history_rows(run_dir)[0] == st["epochs_done"]
    assert (run_dir / "model.keras").is_file()
    assert not (run_dir / LOCK_NAME).exists()


# -------------------------------------------------------------- a worker that dies


def test_the_log_excerpt_explains_the_death_not_the_cuda_noise(tmp_path):
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "E0000 00:00:1700000000.1 1 cuda_dnn.cc:8310] Unable to register cuDNN factory: x",
        "E0000 00:00:1700000000.2 1 cuda_blas.cc:1418] Unable to register cuBLAS factory: x",
        "2024-01-01 10:00:00.000000: I tensorflow/core/util/port.cc:113] oneDNN custom "
        "operations are on.",
        "W0000 00:00:1700000000.3 1 gpu_device.cc:2344] Cannot dlopen some GPU libraries.",
        "2024-01-01 10:00:01.000000: E external/local_xla/xla/stream_executor/cuda/"
        "cuda_driver.cc:282] failed call to cuInit: CUDA_ERROR_NO_DEVICE",
    ]
    log = tmp_path / LOG_NAME
    log.write_text("\n".join(noise) + "\n")
    assert log_tail(tmp_path) == ""  # nothing but start-up noise: no excerpt
    log.write_text(
        "\n".join(
            noise[:3]
            + [
                "Traceback (most recent call last):",
                '  File "x.py", line 1, in <module>',
                "    boom()",
                "RuntimeError: the real reason",
            ]
            + noise[3:]
        )
        + "\n"
    )
    tail = log_tail(tmp_path)
    assert tail.splitlines()[-1] == "RuntimeError: the real reason"
    assert "cuDNN" not in tail and "cuInit" not in tail


@pytest.mark.slow
def test_a_killed_worker_leaves_a_failed_status_that_says_so(tmp_path):
    run_dir = tmp_path / "run"
    run = start_training(dense_project({"batch_size": 4, "epochs": 1000}), run_dir)
    wait_for_file(lambda: status(run_dir)["state"] == "running")
    os.kill(run.pid, signal.SIGKILL)
    killed = time.monotonic()
    final = run.wait(timeout=30)
    assert time.monotonic() - killed < 5
    assert final["kind"] == "died" and "SIGKILL" in final["message"]
    assert "with no message" in final["message"]
    assert "cuda" not in (final["message"] + final["hint"]).lower()
    st = status(run_dir)
    assert st["state"] == "failed" and st["kind"] == "died" and "SIGKILL" in st["message"]
    assert read_run_info(run_dir).status == "failed"
    assert not (run_dir / LOCK_NAME).exists()
    logged = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert logged[-1]["event"] == "error" and logged[-1]["kind"] == "died"


# ------------------------------------------------------------------- Ctrl+C twice


class FakeRun:
    """A run whose event stream is interrupted twice by Ctrl+C."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.calls: list[str] = []
        self.interrupts = 2

    def events(self):
        if self.interrupts:
            self.interrupts -= 1
            raise KeyboardInterrupt
        yield {"event": "error", "kind": "died", "message": "killed", "hint": ""}

    def stop(self) -> None:
        self.calls.append("stop")

    def kill(self) -> None:
        self.calls.append("kill")

    def wait(self, timeout=None):
        return {"event": "error", "kind": "died", "message": "killed", "hint": ""}


def test_ctrl_c_twice_says_it_kills_the_run_and_what_is_kept(tmp_path, capsys):
    import io

    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.keras").write_bytes(b"x")
    runs.write_json(run_dir / "checkpoints" / "state.json", {"epoch": 7})
    out, err = io.StringIO(), io.StringIO()
    run = FakeRun(run_dir)
    assert follow(run, HumanReporter(out, err), "stopping ...") == 130
    assert run.calls == ["stop", "kill"]
    lines = err.getvalue().splitlines()
    assert lines[0] == "stopping ..."
    assert lines[1] == (
        "killing the run now; kept: the last checkpoint, epoch 7 "
        f"({run_dir / 'checkpoints' / 'last.keras'})"
    )
    assert "10 s" not in err.getvalue()

    empty = tmp_path / "empty"
    empty.mkdir()
    err = io.StringIO()
    follow(FakeRun(empty), HumanReporter(io.StringIO(), err), "stopping ...")
    assert "killing the run now; no checkpoint was written yet" in err.getvalue()


@pytest.mark.slow
def test_killing_a_run_says_truly_what_it_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_CHECKPOINT_INTERVAL_S", "0")
    run_dir = tmp_path / "run"
    run = start_training(dense_project({"batch_size": 4, "epochs": 1000}), run_dir)
    wait_for_file(lambda: runs.checkpoint_epoch(run_dir) >= 1)
    run.stop(grace=60)  # the first Ctrl+C ...
    run.kill()  # ... and the second, before the stop is through
    final = run.wait(timeout=30)
    assert final["kind"] == "died"
    epoch = runs.checkpoint_epoch(run_dir)
    assert "killed at your request" in final["message"]
    assert f"kept: the last checkpoint, epoch {epoch}" in final["message"]
    assert "did not stop within" not in final["message"]
    assert f"--resume {run_dir}" in final["hint"]
    st = status(run_dir)
    assert st["state"] == "stopped" and st["kind"] == "killed"
    assert read_run_info(run_dir).can_resume
