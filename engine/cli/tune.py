"""``layerlab tune PROJECT [--trials N] [--parallel K] [--storage URL] [--json]`` and
``layerlab tune-worker PROJECT --storage URL [--parallel K] [--json]``.

A hyper-parameter search over the project's ``search`` section
(:mod:`engine.tune.space`, :mod:`engine.tune.study`): each trial is a normal training
run in a child process, in a run directory beside the project's runs. The study is
kept in ``<runs folder>/tune.journal`` (an Optuna journal file; an older
``tune.sqlite3`` is kept using) unless ``--storage`` names another Optuna storage URL
or ``journal:///PATH``; running the command again resumes it (finished trials are kept, a trial
cut off by a kill runs again). ``tune-worker`` is the same loop joining a study others
share (``--storage`` required): start one per machine or GPU.

With ``--json``: one JSON event per line while it runs (``{"event": "trial", "trial":
n, "params": {...}, "run_dir": ...}``, ``{"event": "trial_end", "trial": n, "state":
..., "value": ..., "time_s": ...}``, ``{"event": "trial_pruned", ...}``), then a last line
``{"best": {"trial", "params", "value"}, "trials": [{"trial", "state", "params",
"value", "run_dir", "curve", ...}], "storage": URL, "importances": {param: share}}``;
``{"event": "trial_epoch", "trial": n, "epoch": e, "value": v}`` after each epoch;
``{"event": "importances", "importances": {param: share}, "complete": n, "time_s": s,
"cpu_s": s}``
after each complete trial once 3 or more are complete (skipped once computing them
costs more than 0.5 s).

``--summary`` prints that last line for the study as it is and runs nothing (the
window reads the study this way: Optuna stays out of its process). ``--snapshot
FILE`` reads the project from FILE as if it were PROJECT (the window's unsaved edits;
the runs folder and study stay PROJECT's). SIGTERM stops like Ctrl-C.

Exit status: 0 when done, 2 when the project or its search section is wrong (named
before any trial runs) or the search cannot go on (the metric is not logged, the data
cannot be read), 130 on Ctrl-C (running trials are stopped and run again on resume).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from engine.model.project import ProjectError, load_project
from engine.tune.space import SearchError, parse_search
from engine.tune.study import Search, SearchStopped, default_storage, read_study


def add_tune_parsers(sub: Any) -> None:
    """Add ``tune`` and ``tune-worker`` to the ``layerlab`` sub-command parsers."""
    for name, text in (
        ("tune", "hyper-parameter search over the project's search section"),
        ("tune-worker", "join a shared search (one per machine or GPU)"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("project")
        if name == "tune":
            s.add_argument("--trials", type=int, help="trials in the study (default: the search's)")
        s.add_argument("--parallel", type=int, default=1, help="trials at a time (default 1)")
        s.add_argument("--storage", required=name == "tune-worker", help="Optuna storage URL")
        s.add_argument("--json", action="store_true", help="one JSON event per line")
        if name == "tune":
            s.add_argument(
                "--summary",
                action="store_true",
                help="print the study's trials and parameter importances; run nothing",
            )
            s.add_argument(
                "--snapshot",
                metavar="FILE",
                help="read the project from FILE (unsaved edits) as if it were PROJECT",
            )


def cli_tune(args: Any) -> int:
    """Run ``layerlab tune`` with parsed ``args``; return the exit status."""
    return _search(args, worker=False)


def cli_tune_worker(args: Any) -> int:
    """Run ``layerlab tune-worker`` with parsed ``args``; return the exit status."""
    return _search(args, worker=True)


def _search(args: Any, worker: bool) -> int:
    as_json = bool(getattr(args, "json", False))
    try:
        project = _load(args)
        space = parse_search(project.to_dict())
        if getattr(args, "summary", False):
            return _summary(project, getattr(args, "storage", None), as_json)
        storage = getattr(args, "storage", None) or default_storage(project)
        trials = getattr(args, "trials", None)
        if trials is not None and trials < 1:
            raise SearchError(f"--trials must be at least 1; got {trials}")
        parallel = getattr(args, "parallel", None) or 1
        if parallel < 1:
            raise SearchError(f"--parallel must be at least 1; got {parallel}")
    except (ProjectError, SearchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # workers sharing a study draw from their own seeds (the same seed would sample
    # the same values in every worker); one process with a seed is reproducible
    seed = None if worker or space.seed is None else space.seed
    if worker and space.seed is not None:
        seed = (space.seed + os.getpid()) % 2**32
    try:
        search = Search(
            project,
            space,
            storage,
            trials=trials,
            parallel=parallel,
            emit=_printer(as_json),
            seed=seed,
        )
    except SearchError as exc:  # the storage cannot be opened
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not as_json:
        print(
            f"search '{search.study.study_name}' in {storage}: {search.target} trials, "
            f"{space.strategy}, {space.direction} {space.metric}",
            file=sys.stderr,
            flush=True,
        )
    signal.signal(signal.SIGTERM, _interrupt)  # a window's Stop: like Ctrl-C
    try:
        result = search.run()
    except SearchStopped as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped; the finished trials are kept (run again to resume)", file=sys.stderr)
        return 130
    if as_json:
        print(json.dumps(result), flush=True)
    else:
        _show(result)
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _load(args: Any) -> Any:
    """The project; with ``--snapshot``, FILE's content placed at PROJECT's path (its
    runs folder, its study and relative data paths are PROJECT's)."""
    snapshot = getattr(args, "snapshot", None)
    if not snapshot:
        return load_project(args.project)
    project = load_project(snapshot)
    project.path = Path(args.project).resolve()
    return project


def _summary(project: Any, storage: str | None, as_json: bool) -> int:
    try:
        found = read_study(project, storage)
    except Exception as exc:  # a damaged or locked database: named, no traceback
        print(f"error: the study cannot be read: {exc}", file=sys.stderr)
        return 2
    if found is None:
        found = {"best": None, "trials": [], "storage": storage, "importances": {}}
    if as_json:
        print(json.dumps(found), flush=True)
    else:
        _show(found)
        for name, value in found["importances"].items():
            print(f"importance {name}: {value:.2f}")
    return 0


def _printer(as_json: bool) -> Any:
    def show(event: dict[str, Any]) -> None:
        if as_json:
            print(json.dumps(event), flush=True)
        elif event["event"] == "trial":
            print(f"trial {event['trial']}: {_params(event['params'])}", flush=True)
        elif event["event"] == "trial_end":
            value = event.get("value")
            text = "" if value is None else f" {value:.4g}"
            extra = f" ({event['message']})" if event.get("message") else ""
            print(f"trial {event['trial']} {event['state']}{text}{extra}", flush=True)
        elif event["event"] == "trials_lost":
            lost = ", ".join(map(str, event["trials"]))
            print(f"trial(s) {lost} were cut off by a stop and run again", flush=True)

    return show


def _params(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def _show(result: dict[str, Any]) -> None:
    best = result["best"]
    states: dict[str, int] = {}
    for t in result["trials"]:
        states[t["state"]] = states.get(t["state"], 0) + 1
    print(", ".join(f"{n} {s}" for s, n in states.items()) or "no trials")
    if best is None:
        print("no trial completed")
    else:
        print(f"best: trial {best['trial']} {best['value']:.4g} with {_params(best['params'])}")
