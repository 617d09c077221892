"""Fine-tuning's phase 2 with a learning-rate schedule: the schedule starts again over
phase 2, every rate in it x the factor (LayerLab and the generated script alike)."""

from __future__ import annotations

import pytest

from engine.model.project import Project
from engine.train.config import phase_two_section
from tests.engine.test_codegen import run_source
from tests.engine.test_fine_tune import tiny_project_dict

LR, FACTOR = 0.01, 0.1


def test_phase_two_section_scales_every_rate_of_the_schedule():
    section = {
        "optimizer": {"type": "SGD", "learning_rate": LR, "momentum": 0.9},
        "schedule": {"type": "cosine", "warmup_epochs": 1, "warmup_start": 0.001, "alpha": 0.1},
    }
    two = phase_two_section(section, FACTOR)
    assert two["optimizer"] == {
        "type": "SGD",
        "learning_rate": pytest.approx(LR * FACTOR),
        "momentum": 0.9,
    }
    assert two["schedule"]["warmup_start"] == pytest.approx(0.0001)
    assert two["schedule"]["alpha"] == 0.1  # relative already
    step = phase_two_section(
        {"schedule": {"type": "step", "values": [0.01, 0.001], "boundaries_epochs": [2]}}, 0.5
    )
    assert step["schedule"]["values"] == pytest.approx([0.005, 0.0005])
    poly = phase_two_section({"schedule": {"type": "polynomial", "end_learning_rate": 1e-4}}, 0.1)
    assert poly["schedule"]["end_learning_rate"] == pytest.approx(1e-5)
    assert section["schedule"]["warmup_start"] == 0.001  # the section is left as it was


def cosine_project() -> dict:
    return tiny_project_dict(
        {
            "epochs": 4,
            "batch_size": 16,
            "seed": 0,
            "optimizer": {"type": "Adam", "learning_rate": LR},
            "schedule": {"type": "cosine"},
            "fine_tune": {"after_epoch": 2, "learning_rate_factor": FACTOR},
            "tensorboard": False,
        }
    )


def test_a_cosine_schedule_decays_again_in_phase_two_from_the_lower_rate(tmp_path):
    from engine.train.fit import run_training

    final = run_training(cosine_project(), tmp_path / "run", base_dir=tmp_path)
    assert final["event"] == "done", final
    lr = final["history"]["learning_rate"]
    assert final["fine_tune_from"] == 3
    # phase 1 decays from LR over epochs 1-2; phase 2 starts again at LR x FACTOR
    # (at most) and decays over epochs 3-4: never a jump above the phase's start rate
    assert lr[0] > lr[1]
    assert LR * FACTOR * 0.3 < lr[2] <= LR * FACTOR
    assert lr[3] < lr[2]


def test_generated_script_builds_the_same_phase_two_optimizer():
    from engine.codegen.script import generate
    from engine.train.fine_tune import phase_two_optimizer

    project = Project.from_dict(cosine_project())
    source = generate(project)
    assert "optimizer=make_phase_two_optimizer(steps_per_epoch, epochs - done)" in source
    script = run_source(source)["make_phase_two_optimizer"](7, 2)
    ours = phase_two_optimizer(project.training, FACTOR, 7, 2)
    theirs_lr, ours_lr = script.get_config()["learning_rate"], ours.get_config()["learning_rate"]
    assert theirs_lr["class_name"] == ours_lr["class_name"] == "CosineDecay"
    for key in ("initial_learning_rate", "decay_steps", "alpha"):
        assert theirs_lr["config"][key] == pytest.approx(ours_lr["config"][key])
    assert ours_lr["config"]["initial_learning_rate"] == pytest.approx(LR * FACTOR)
    assert ours_lr["config"]["decay_steps"] == 14
