"""Train every trainable preset through the real command line and report what it reaches.

Each preset on built-in data is trained by ``layerlab train PRESET --json`` (the
same path a user takes), with the preset's own epochs. The script prints one JSON
object (``{"presets": [...]}``) and then the markdown table that
``presets/README.md`` shows; ``--readme`` also writes that table into the README
between its ``<!-- preset-table -->`` markers, so the two always agree.

Usage (from the repository root; takes several minutes on 2 CPU cores)::

    .venv/bin/python bench/preset_accuracy.py [PRESET ...] [--readme] [--runs DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.model.project import Project, load_project  # noqa: E402

PRESETS_DIR = ROOT / "presets"
README = PRESETS_DIR / "README.md"
BEGIN, END = "<!-- preset-table -->", "<!-- /preset-table -->"


def is_trainable(project: Project) -> bool:
    """Presets on built-in data train here; the reference-size ones point at image folders."""
    return str(project.data.get("source", "")).startswith("builtin:")


def layerlab_command() -> list[str]:
    """The installed ``layerlab`` next to this Python, else ``python -m engine.cli.main``."""
    exe = Path(sys.executable).parent / "layerlab"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from engine.cli.main import main; sys.exit(main())"]


def describe(path: Path) -> dict[str, Any]:
    """Static facts of a preset: name, parameter count, data source, epochs."""
    from engine.analysis.validation import validate

    project = load_project(path)
    report = validate(project)
    return {
        "preset": path.stem,
        "name": project.name,
        "params": report.total_params,
        "valid": report.valid,
        "data": project.data.get("source", ""),
        "epochs": project.training.get("epochs"),
        "trainable_here": is_trainable(project),
    }


def train(path: Path, runs: Path) -> dict[str, Any]:
    """Run ``layerlab train PATH --json`` and read back what the trained model scores."""
    run_dir = runs / path.stem
    start = time.perf_counter()
    proc = subprocess.run(
        [*layerlab_command(), "train", str(path), "--json", "--out", str(run_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    seconds = time.perf_counter() - start
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    final = events[-1] if events else {"event": "error", "message": proc.stderr.strip()[-500:]}
    if final.get("event") != "done":
        return {"status": "error", "message": final.get("message", ""), "seconds": seconds}
    history = final["history"]
    evaluation = json.loads((Path(final["run_dir"]) / "evaluation.json").read_text())
    metrics = evaluation["validation"]["metrics"]
    out: dict[str, Any] = {
        "status": "done",
        "epochs_run": len(history.get("loss", [])),
        "seconds": round(seconds, 1),
        "val_loss": round(metrics["loss"], 4),
    }
    if "accuracy" in metrics:
        out["val_accuracy"] = round(metrics["accuracy"], 4)
        out["best_epoch_val_accuracy"] = round(max(history["val_accuracy"]), 4)
    for key in ("mae",):
        if key in metrics:
            out[f"val_{key}"] = round(metrics[key], 4)
    return out


def result_text(row: dict[str, Any]) -> str:
    """The README's result cell."""
    if not row["trainable_here"]:
        return "not trained here (reference size)"
    if row.get("status") is None:
        return "not yet measured"
    if row["status"] != "done":
        return f"failed: {row['message']}"
    if "val_accuracy" in row:
        return f"{100 * row['val_accuracy']:.1f}% val accuracy"
    return f"val MSE {row['val_loss']:.4f} (MAE {row.get('val_mae', float('nan')):.3f})"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The preset table of presets/README.md."""
    lines = [
        "| preset | model | parameters | data | epochs | validation result | time |",
        "| --- | --- | ---: | --- | ---: | --- | ---: |",
    ]
    for r in rows:
        epochs = f"{r['epochs_run']}/{r['epochs']}" if "epochs_run" in r else str(r["epochs"])
        seconds = f"{r['seconds']:.0f} s" if "seconds" in r else ""
        data = r["data"] if r["trainable_here"] else "image folder (placeholder)"
        lines.append(
            f"| `{r['preset']}` | {r['name']} | {r['params']:,} | {data} | {epochs} | "
            f"{result_text(r)} | {seconds} |"
        )
    return "\n".join(lines) + "\n"


def update_readme(table: str, readme: Path = README) -> None:
    """Replace the table between the markers of ``readme``."""
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{table}{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("presets", nargs="*", help="preset names (default: all)")
    parser.add_argument(
        "--readme", action="store_true", help="write the table into presets/README.md"
    )
    parser.add_argument("--runs", help="folder for the run directories (default: a temp dir)")
    parser.add_argument("--no-train", action="store_true", help="only list the static facts")
    args = parser.parse_args(argv)

    paths = sorted(PRESETS_DIR.glob("*.json"))
    if args.presets:
        paths = [PRESETS_DIR / f"{name}.json" for name in args.presets]
    runs = Path(args.runs) if args.runs else Path(tempfile.mkdtemp(prefix="preset-runs-"))
    rows = []
    for path in paths:
        row = describe(path)
        if row["trainable_here"] and not args.no_train:
            print(f"training {path.stem} ...", file=sys.stderr, flush=True)
            row.update(train(path, runs))
            print(f"  {result_text(row)} in {row['seconds']:.0f} s", file=sys.stderr, flush=True)
        rows.append(row)
    rows.sort(key=lambda r: (not r["trainable_here"], r["preset"]))
    print(json.dumps({"presets": rows}, indent=2))
    table = markdown(rows)
    print(table)
    if args.readme:
        update_readme(table)
    return 0 if all(r.get("status", "done") == "done" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
