"""``layerlab validate PROJECT [--json]``: shapes, parameters and problems of a project.

Prints a Keras ``summary()``-like table with the problems under it, or with
``--json`` one object (the validation report, ``valid`` and every problem,
the training section's included). Exit status 0 when there is no error, 1 when
there is one, 2 when the project cannot be read.
"""

from __future__ import annotations

import argparse
import json

from engine.analysis.validation import validate
from engine.model.problems import Problem
from engine.model.project import load_project
from engine.train.config import training_problems


def cli_validate(args: argparse.Namespace) -> int:
    """Run ``layerlab validate`` with parsed ``args``; return the exit status."""
    project = load_project(args.project)
    report = validate(project)
    problems = list(report.problems)
    problems += [
        Problem(None, "error", f"training: {m}") for m in training_problems(project.training)
    ]
    valid = not any(p.severity == "error" for p in problems)
    if args.json:
        d = report.to_dict()
        d["valid"] = valid
        d["problems"] = [p.to_dict() for p in problems]
        print(json.dumps(d))
    else:
        print(format_report(project, report, problems))
    return 0 if valid else 1


def _shape_text(shape) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return ", ".join(_shape_text(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def format_report(project, report, problems) -> str:
    """A Keras ``summary()``-like table with the problems listed under it."""
    rows = [
        (
            f"{li.id} ({li.type})" + (" frozen" if li.frozen else ""),
            _shape_text(li.output_shape),
            f"{li.params:,}",
        )
        for li in report.layers
    ]
    w0 = max([len("Layer (type)")] + [len(r[0]) for r in rows])
    w1 = max([len("Output shape")] + [len(r[1]) for r in rows])
    w2 = max([len("Param #")] + [len(r[2]) for r in rows])
    line = "─" * (w0 + w1 + w2 + 6)
    out = [
        f'Model: "{project.name}"',
        line,
        f"{'Layer (type)':<{w0}}   {'Output shape':<{w1}}   {'Param #':>{w2}}",
        line,
    ]
    out += [f"{a:<{w0}}   {b:<{w1}}   {c:>{w2}}" for a, b, c in rows]
    out += [
        line,
        f"Total params: {report.total_params:,}",
        f"Trainable params: {report.trainable_params:,}",
        f"Non-trainable params: {report.non_trainable_params:,}",
    ]
    if problems:
        out.append("")
        out.append(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}:")
        for p in problems:
            where = f"[{p.node}] " if p.node else ""
            out.append(f"  {p.severity}: {where}{p.message}")
    else:
        out.append("\nNo problems found.")
    return "\n".join(out)
