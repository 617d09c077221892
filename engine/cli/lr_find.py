"""``layerlab lr-find PROJECT [--json]``: the learning-rate range test.

Trains the project's model for up to 100 batches with the learning rate growing
exponentially from 1e-7 to 10 (:mod:`engine.tune.lr_find`) and prints the loss
against the learning rate and the suggested rate (the steepest descent of the
smoothed loss, else the rate of the minimum loss / 10). Nothing is saved; set the
optimizer's ``learning_rate`` to the suggestion to use it.

With ``--json``, the last line is ``{"suggested_lr": ..., "method": ..., "min_loss_lr":
..., "lrs": [...], "losses": [...]}`` (``losses`` smoothed). Exit status 0, or 2 when
the project, its data or its model cannot be read or built. ``--snapshot FILE`` reads
the project from FILE as if it were PROJECT (the window's unsaved edits).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from engine.model.project import ProjectError, load_project
from engine.train.fit import TrainingError
from engine.tune.lr_find import find_lr


def add_lr_find_parser(sub: Any) -> None:
    """Add ``lr-find`` to the ``layerlab`` sub-command parsers."""
    s = sub.add_parser("lr-find", help="learning-rate range test: the loss against the rate")
    s.add_argument("project")
    s.add_argument("--json", action="store_true", help="a last line of JSON")
    s.add_argument(
        "--snapshot",
        metavar="FILE",
        help="read the project from FILE (unsaved edits) as if it were PROJECT",
    )


def cli_lr_find(args: Any) -> int:
    """Run ``layerlab lr-find`` with parsed ``args``; return the exit status."""
    try:
        project = load_project(getattr(args, "snapshot", None) or args.project)
        if getattr(args, "snapshot", None):  # relative data paths are PROJECT's
            project.path = Path(args.project).resolve()
        result = find_lr(project.to_dict(), project.base_dir)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrainingError as exc:
        print(f"error: {args.project}: {exc.message}", file=sys.stderr)
        return 2
    if getattr(args, "json", False):
        print(json.dumps(result), flush=True)
        return 0
    for lr, loss in list(zip(result["lrs"], result["losses"], strict=True))[::5]:
        print(f"lr {lr:10.3g}  loss {loss:.4g}")
    if result["suggested_lr"] is None:
        print("no suggestion: the loss was not finite from the first batch")
        return 1
    print(f"suggested learning rate: {result['suggested_lr']:.3g} ({result['method']})")
    return 0
