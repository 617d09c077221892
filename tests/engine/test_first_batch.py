"""The first batch of a run comes after one trace of the train step, not two (issue 17:
the second run's first batch within 1.0 s). Keras created the optimizer's and the
metrics' variables inside the first trace of ``fit``, which made TensorFlow trace the
step again: half of the time from Train to the first batch on LeNet-5."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")

from keras.src.backend.tensorflow import trainer as tf_trainer  # noqa: E402

from engine.model.project import load_project  # noqa: E402
from engine.train.callbacks import Controls  # noqa: E402
from engine.train.fit import run_training  # noqa: E402
from presets import presets_dir  # noqa: E402


def test_the_train_step_is_traced_once_before_the_first_batch(tmp_path, monkeypatch):
    traces: list[int] = []
    step = tf_trainer.TensorFlowTrainer.train_step

    def counted(self, data):  # runs only while TensorFlow traces the step
        traces.append(1)
        return step(self, data)

    monkeypatch.setattr(tf_trainer.TensorFlowTrainer, "train_step", counted)
    project = load_project(presets_dir() / "lenet5.json").to_dict()
    project["training"]["epochs"] = 1
    controls = Controls()
    at_first_batch: list[int] = []

    def emit(event: dict) -> None:
        if event["event"] == "batch" and not at_first_batch:
            at_first_batch.append(len(traces))
            controls.stop.set()

    final = run_training(project, tmp_path / "run", emit=emit, controls=controls)
    assert final["event"] == "done", final.get("message")
    assert at_first_batch == [1]
