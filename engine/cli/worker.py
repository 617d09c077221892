"""``layerlab worker PROJECT --cluster HOST:PORT,... --index I``: one worker of a
multi-machine run (:mod:`engine.train.distributed.run`); the chief is ``layerlab
train --cluster``.

Prints short lines (waiting, joined, done, or the error). Exit status: 0 when the
run finished, 1 when it failed, 2 on bad arguments, 130 when stopped with Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

from engine.cli.train import Reporter, follow
from engine.model.project import ProjectError, load_project
from engine.train.cluster import ClusterError, resolve_cluster
from engine.train.config import Event
from engine.train.distributed.run import start_cluster_training


def cli_worker(args: argparse.Namespace) -> int:
    """Run ``layerlab worker`` with parsed ``args``; return the exit status."""
    try:
        project = load_project(args.project)
        workers, index, config = resolve_cluster(args.cluster, args.index, project.training)
        if index == 0:
            raise ClusterError(
                f"index 0 is the chief, which writes the run: start it with "
                f"`layerlab train {args.project} --cluster {','.join(workers)} "
                "--index 0`"
            )
        run = start_cluster_training(project, None, workers, index, config=config)
    except (ProjectError, ClusterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"worker {index} of {len(workers)} ({workers[index]}): waiting for the cluster "
        f"(chief {workers[0]}) ...",
        flush=True,
    )
    return follow(
        run,
        WorkerReporter(index),
        "stopping every worker after this epoch (Ctrl-C again to kill it now) ...",
    )


class WorkerReporter(Reporter):
    """Short lines for a worker's terminal: waiting, joined, done, or the error."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, event: Event) -> None:
        kind = event.get("event")
        if kind == "started":
            print(
                f"joined: {event['workers']} workers, {event['epochs']} epochs of "
                f"{event['steps_per_epoch']} steps (global batch {event['batch_size']})",
                flush=True,
            )
        elif kind == "waiting":
            print(f"waiting for {', '.join(event['workers'])} ...", flush=True)
        elif kind == "done":
            what = "stopped after" if event.get("stopped") else "done:"
            print(
                f"{what} {event.get('epochs_done', '?')} epochs; the chief saved the model "
                f"(weights sha256 {event.get('weights_sha256', '?')})",
                flush=True,
            )
        elif kind == "error":
            if event.get("hint"):
                print(f"hint: {event['hint']}", file=sys.stderr)
            print(f"error: {event['message']}", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)
