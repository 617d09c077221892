"""The ``layerlab`` command line: the parser, and the dispatch to one module per sub-command.

Each sub-command is ``cli_<name>(args) -> int`` in its own module of :mod:`engine.cli`
(``open``, ``screenshot`` and ``run-default`` are :mod:`engine.cli.window`). None of
them imports TensorFlow before it is needed, so ``layerlab --help`` starts at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from engine.cli.export import cli_export
from engine.cli.importing import cli_import
from engine.cli.inspect import add_parser as add_inspect_parser
from engine.cli.inspect import cli_inspect
from engine.cli.lr_find import add_lr_find_parser, cli_lr_find
from engine.cli.new import add_parser as add_new_parser
from engine.cli.new import cli_new
from engine.cli.presets import cli_presets
from engine.cli.train import cli_train
from engine.cli.tune import add_tune_parsers, cli_tune, cli_tune_worker
from engine.cli.validate import cli_validate
from engine.cli.window import cli_open, cli_run_default, cli_screenshot
from engine.cli.worker import cli_worker
from engine.model.project import ProjectError

EXPORT_FORMATS = ("keras", "savedmodel", "onnx", "tflite", "python", "h5")

COMMANDS = {
    "validate": cli_validate,
    "train": cli_train,
    "export": cli_export,
    "import": cli_import,
    "new": cli_new,
    "presets": cli_presets,
    "screenshot": cli_screenshot,
    "worker": cli_worker,
    "run-default": cli_run_default,
    "open": cli_open,
    "tune": cli_tune,
    "tune-worker": cli_tune_worker,
    "lr-find": cli_lr_find,
    "inspect": cli_inspect,
}
"""Each sub-command and the function that runs it with the parsed arguments."""


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

    add_new_parser(sub)

    sub.add_parser("presets", help="list the preset projects")
    add_inspect_parser(sub)

    s = sub.add_parser("screenshot", help="render the main window to a PNG")
    s.add_argument("project")
    s.add_argument("--out", required=True)
    s.add_argument("--size", default="1400x900")

    s = sub.add_parser("worker", help="one worker of a multi-machine run")
    s.add_argument("project")
    s.add_argument("--cluster", required=True)
    s.add_argument("--index", type=int, required=True)

    add_tune_parsers(sub), add_lr_find_parser(sub)

    sub.add_parser(
        "run-default", help="open the window, or with no display train the default preset headless"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        argv = ["open", *argv]
    args = _parser().parse_args(argv)
    command = args.command or "open"
    if command in ("validate", "export", "import", "lr-find", "inspect"):
        quiet_tensorflow_import()
    try:
        return int(COMMANDS[command](args) or 0)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0


def quiet_tensorflow_import() -> None:
    """Import Keras with TensorFlow's C++ start-up chatter kept off the terminal.

    TensorFlow's native libraries log to file descriptor 2 before any Python setting
    can reach them ("Could not find cuda drivers", "oneDNN custom operations are on",
    ...). If the import fails, what it printed is shown after all.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401  (imported for its start-up output)
            import tensorflow as tf

            # the first look at the devices logs too ("failed call to cuInit" without a GPU)
            tf.config.list_physical_devices("GPU")
        except Exception:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


if __name__ == "__main__":
    sys.exit(main())
