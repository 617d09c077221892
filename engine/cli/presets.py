"""``layerlab presets``: the preset projects, one line each."""

from __future__ import annotations

import argparse

from engine.model.project import ProjectError, load_project
from presets import presets_dir


def cli_presets(args: argparse.Namespace) -> int:
    """List the preset projects (name, layers, data); return the exit status."""
    rows = []
    for path in sorted(presets_dir().glob("*.json")):
        try:
            project = load_project(path)
            rows.append(
                (path.stem, project.name, len(project.graph.nodes), project.data.get("source", ""))
            )
        except ProjectError as exc:
            rows.append((path.stem, f"(unreadable: {exc})", 0, ""))
    if not rows:
        print("no presets found")
        return 0
    width = max(len(r[0]) for r in rows)
    print(f"{'preset':<{width}}  {'layers':>6}  {'data':<18}  name")
    for stem, name, n, source in rows:
        print(f"{stem:<{width}}  {n:>6}  {source:<18}  {name}")
    print(f"\nOpen one with: layerlab {presets_dir()}/<preset>.json")
    return 0
