"""The ``layerlab`` command line: the application's front door.

Headless sub-commands run here; the window and ``screenshot`` import ``gui``
lazily inside one function. Heavy sub-commands live in their own modules as
``cli_<name>(args) -> int`` and are imported only when used.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from engine.model.project import ProjectError, load_project

SUBCOMMANDS = (
    "validate",
    "train",
    "export",
    "import",
    "presets",
    "screenshot",
    "worker",
    "run-default",
    "open",
)
EXPORT_FORMATS = ("keras", "savedmodel", "onnx", "tflite", "python", "h5")


def presets_dir() -> Path:
    import presets

    return Path(presets.__file__).parent


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="layerlab",
        description="Build, train and export Keras models. With only a PROJECT, opens it in "
        "the window.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("open", help="open the window (default when only a PROJECT is given)")
    s.add_argument("project", nargs="?")

    s = sub.add_parser("validate", help="check a project; print shapes, parameters, problems")
    s.add_argument("project")
    s.add_argument("--json", action="store_true", help="print one JSON object")

    s = sub.add_parser("train", help="train a project's model on its data")
    s.add_argument("project", nargs="?", help="project file (omit with --resume)")
    s.add_argument("--epochs", type=int)
    s.add_argument("--out", help="run directory (default: runs/<project>-<time>)")
    s.add_argument("--device", help="cpu, gpu:0, ... or all")
    s.add_argument("--json", action="store_true", help="one JSON event per line")
    s.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    s.add_argument("--cluster", help="HOST:PORT,... of every worker (multi-machine run)")
    s.add_argument("--index", type=int, default=0, help="this machine's place in --cluster")

    s = sub.add_parser("export", help="write a model file from a project or a run directory")
    s.add_argument("source", metavar="PROJECT|RUN_DIR")
    s.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    s.add_argument("--out", required=True)
    s.add_argument("--no-verify", action="store_true", help="skip reloading and comparing")
    s.add_argument(
        "--quantize", choices=("none", "float16", "int8"), default="none", help="tflite only"
    )
    s.add_argument("--weights", help="python only: weights file the script loads")

    s = sub.add_parser("import", help="turn a .keras/.h5 model or config into a project")
    s.add_argument("model")
    s.add_argument("--out", required=True)

    sub.add_parser("presets", help="list the preset projects")

    s = sub.add_parser("screenshot", help="render the main window to a PNG")
    s.add_argument("project")
    s.add_argument("--out", required=True)
    s.add_argument("--size", default="1400x900")

    s = sub.add_parser("worker", help="one worker of a multi-machine run")
    s.add_argument("project")
    s.add_argument("--cluster", required=True)
    s.add_argument("--index", type=int, required=True)

    sub.add_parser(
        "run-default", help="open the window, or with no display train the default preset headless"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    if argv and not argv[0].startswith("-") and argv[0] not in SUBCOMMANDS:
        argv = ["open", *argv]
    args = _parser().parse_args(argv)
    command = args.command or "open"
    if command in ("validate", "export", "import"):
        quiet_tensorflow_import()
    try:
        if command == "open":
            return _open(getattr(args, "project", None))
        if command == "validate":
            return _validate(args)
        if command == "presets":
            return _presets()
        if command == "run-default":
            return _run_default()
        if command == "screenshot":
            return _call("gui.app", "screenshot", args.project, args.out, args.size)
        if command == "train" and args.cluster:
            return _call("engine.train.distributed.run", "cli_train", args)
        modules = {
            "train": "engine.train.fit",
            "export": "engine.io.export",
            "import": "engine.io.importer",
            "worker": "engine.train.distributed.run",
        }
        return _call(modules[command], f"cli_{command}", args)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0


def _call(module: str, func: str, *args) -> int:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        mod = None
    if mod is None or not hasattr(mod, func):
        print(
            f"error: this command is not available yet ({module}.{func} is missing)",
            file=sys.stderr,
        )
        return 2
    return int(getattr(mod, func)(*args) or 0)


def _open(project: str | None) -> int:
    if project is not None:
        load_project(project)  # a bad file is reported here, before Qt starts
    return _call("gui.app", "main", project)


def quiet_tensorflow_import() -> None:
    """Import Keras with TensorFlow's C++ start-up chatter kept off the terminal.

    TensorFlow's native libraries log to file descriptor 2 before any Python setting
    can reach them ("Could not find cuda drivers", "oneDNN custom operations are on",
    ...). If the import fails, what it printed is shown after all.
    """
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            importlib.import_module("keras")
            # the first look at the devices logs too ("failed call to cuInit" without a GPU)
            importlib.import_module("tensorflow").config.list_physical_devices("GPU")
        except Exception:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def has_display() -> bool:
    """True when a window can be shown (an X/Wayland display or an explicit Qt platform)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM")
    )


def _run_default() -> int:
    if has_display():
        return _open(None)
    preset = presets_dir() / "lenet5.json"
    print(
        "No display found, so the window cannot open. Training the default preset "
        f"({preset.name}) headless instead; open the window on a machine with a screen "
        "with `make run`.",
        flush=True,
    )
    return main(["train", str(preset), "--out", "runs/default"])


def _presets() -> int:
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


def _validate(args: argparse.Namespace) -> int:
    project = load_project(args.project)
    from engine.analysis.validation import validate

    report = validate(project)
    problems = list(report.problems)
    try:
        from engine.train.fit import training_problems
    except ImportError:
        training_problems = None
    if training_problems is not None:
        from engine.model.problems import Problem

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
        (f"{li.id} ({li.type})", _shape_text(li.output_shape), f"{li.params:,}")
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


if __name__ == "__main__":
    sys.exit(main())
