"""``layerlab import MODEL --out PROJECT``: a Keras model as a project, its weights beside it.

MODEL is a ``.keras``/``.h5``/config JSON file or a ``keras.applications`` name
(built untrained; nothing is downloaded). The project is written with the source's
weights in ``<project>.weights.h5`` and notes on what was approximated.

Exit status: 0 on success, 1 when the model cannot be expressed, 2 when unreadable.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from engine.io.importing.read import ModelImportError, UnreadableModelError, application_name
from engine.io.importing.rebuild import (
    grouped_notes,
    import_application_with_notes,
    import_model_with_notes,
)
from engine.model.project import save_project


def cli_import(args: Any) -> int:
    """``layerlab import MODEL --out PROJECT``: write the project and the weights beside it.

    MODEL is a ``.keras``/``.h5``/config JSON file or a ``keras.applications`` name.
    Returns 0 on success, 1 when the model cannot be expressed, 2 when unreadable.
    """
    out = Path(args.out)
    if out.suffix != ".json":
        out = out.with_name(out.name + ".json")
    weights_out = out.with_name(out.stem + ".weights.h5")
    source = str(args.model)
    try:
        if not Path(source).exists() and application_name(source):
            project, notes = import_application_with_notes(source)
        else:
            project, notes = import_model_with_notes(source, weights_out=weights_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        save_project(project, out)
    except UnreadableModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ModelImportError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    n = sum(1 for node in project.graph.nodes.values() if node.type != "Input")
    print(f"imported {n} layers ({len(project.graph.edges)} connections) into {out}")
    if project.extra.get("weights"):
        print(f"weights: {out.parent / project.extra['weights']}")
    else:
        print("weights: none (the source holds no trained weights)")
    for note in grouped_notes(notes):
        print(f"note: {note}")
    return 0
