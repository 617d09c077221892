"""A hyper-parameter search: an Optuna study whose trials are ordinary training runs.

Each trial is the project with the sampled values applied (:func:`engine.tune.space.apply_params`),
trained by :func:`engine.train.worker.start_training` in its own child process, into a normal
run directory beside the project's other runs (``<runs>/tune-<study>-trial-007``), so the
Runs tab, evaluation, export and ``layerlab train --resume`` work on it. Every epoch's
value of the search's metric is reported to Optuna; when the pruner calls the trial
hopeless, the run is stopped (it keeps what it trained). A trial's value is the best
epoch value of the metric.

The study lives in a journal file in the runs folder (``<runs>/tune.journal``, Optuna's
``JournalStorage`` with a ``JournalFileBackend``) unless a storage is given: any URL
Optuna accepts (``postgresql://...``, ``sqlite:///...``) or ``journal:///PATH``, so
several processes or machines share one study, each running :func:`run_search`
(``layerlab tune-worker``). Why a journal file and not SQLite by default: opening it
costs nothing (SQLite's storage imports SQLAlchemy and creates its tables: ~1.6-2 s of
a one-trial search, measured in docs/benchmarks.md) and each report or state change is
one appended line instead of a transaction; it is as safe for several processes of
one machine (Optuna serialises appends with a lock file: a symlink, atomic on local
disks and NFS; an exclusively opened file on Windows). A project whose study is
already in ``<runs>/tune.sqlite3`` (made by an earlier version) keeps using it.

How a shared study runs each of its N trials exactly once: trial numbers are given out
by the storage, one at a time. A worker asks for a trial, then counts the trials
numbered below it that count (complete, pruned, failed or running; not ``lost`` and not
``surplus``): when N of them are already there, its trial is marked ``surplus`` (state
FAIL, never trained) and the worker ends. A trial whose process died (a killed study)
is found on the next start (same machine, process gone) and marked ``lost``: it no
longer counts, so a fresh trial takes its place and the finished ones are kept.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.train import runs
from engine.train.worker import WarmWorker, start_training
from engine.tune.space import SearchError, SearchSpace, apply_params, parse_search

Event = dict[str, Any]
STORAGE_FILE = "tune.journal"
OLD_STORAGE_FILE = "tune.sqlite3"
"""The default storage of earlier versions; still used when a project has one."""
JOURNAL = "journal:///"
SURPLUS = "surplus"
LOST = "lost"
OPEN_ATTEMPTS = 5
IMPORTANCE_MIN_TRIALS = 3
"""Complete trials needed before :func:`importances` says anything."""
LIVE_IMPORTANCE_BUDGET_S = 0.5
"""A search emits an ``importances`` event after each complete trial while computing
them costs at most this (seconds); past it, only its last line has them."""
"""Tries to open (or create) a storage and its study; workers starting together race."""


class SearchStopped(Exception):
    """The search cannot go on (the metric never appears, the data cannot be read)."""


def default_storage(project: Any) -> str:
    """``journal:///<runs folder>/tune.journal`` (the folder is created); a project
    with an older ``tune.sqlite3`` study keeps ``sqlite:///<runs folder>/tune.sqlite3``."""
    root = runs.runs_root(project)
    root.mkdir(parents=True, exist_ok=True)
    return _existing_storage(root) or f"{JOURNAL}{(root / STORAGE_FILE).resolve()}"


def _existing_storage(root: Path) -> str | None:
    if (root / STORAGE_FILE).is_file():
        return f"{JOURNAL}{(root / STORAGE_FILE).resolve()}"
    if (root / OLD_STORAGE_FILE).is_file():
        return f"sqlite:///{(root / OLD_STORAGE_FILE).resolve()}"
    return None


def open_storage(storage: str) -> Any:
    """The Optuna storage a URL names: ``journal:///PATH`` is a journal file (created
    when missing), anything else goes to ``optuna.storages.get_storage``."""
    import optuna

    if storage.startswith(JOURNAL):
        from optuna.storages.journal import (
            JournalFileBackend,
            JournalFileOpenLock,
            JournalFileSymlinkLock,
        )

        path = storage[len(JOURNAL) :]  # journal:///rel/path, journal:////abs/path
        lock = (JournalFileOpenLock if os.name == "nt" else JournalFileSymlinkLock)(path)
        return optuna.storages.JournalStorage(JournalFileBackend(path, lock_obj=lock))
    return optuna.storages.get_storage(storage)


def study_name(project: Any, space: SearchSpace) -> str:
    """The search's ``study`` name, else the project file's stem (else its name)."""
    if space.study:
        return space.study
    path = getattr(project, "path", None)
    return runs.safe_name(Path(path).stem if path else getattr(project, "name", "") or "search")


def _sampler(space: SearchSpace, seed: int | None) -> Any:
    import optuna

    if space.strategy == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    if space.strategy == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, space.trials // 2 + 1))


def _pruner(space: SearchSpace, epochs: int) -> Any:
    import optuna

    if space.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=space.startup_trials, n_warmup_steps=space.warmup_epochs
        )
    if space.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs))
    return optuna.pruners.NopPruner()


def open_study(project: Any, space: SearchSpace, storage: Any, seed: int | None = None) -> Any:
    """The project's study in ``storage`` (a URL or an opened storage), created when it
    is not there yet."""
    import optuna

    if isinstance(storage, str):
        storage = open_storage(storage)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    epochs = int((project.training or {}).get("epochs", 10))
    for attempt in range(OPEN_ATTEMPTS):
        try:
            study = optuna.create_study(
                study_name=study_name(project, space),
                storage=storage,
                sampler=_sampler(space, seed),
                pruner=_pruner(space, epochs),
                direction=space.direction,
                load_if_exists=True,
            )
            break
        except Exception:  # two workers creating one study race: the second loads it
            if attempt == OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.5 + 0.5 * attempt)
    for point in space.enqueue:
        study.enqueue_trial(point, skip_if_exists=True)
    return study


def target_trials(space: SearchSpace, trials: int | None = None) -> int:
    """How many trials the search runs: ``trials`` or the section's, at most a grid's size."""
    n = trials if trials is not None else space.trials
    if space.strategy == "grid":
        n = min(n, math.prod(len(v) for v in space.grid().values()))
    return n


def _counts(t: Any) -> bool:
    import optuna

    if t.user_attrs.get(SURPLUS) or t.user_attrs.get(LOST):
        return False
    return t.state != optuna.trial.TrialState.WAITING


def mark_lost(study: Any) -> list[int]:
    """Trials left RUNNING by a process of this machine that is gone: marked ``lost``,
    and their values queued again (the next trials run them)."""
    import optuna

    host, lost = socket.gethostname(), []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") != host or not isinstance(pid, int) or _alive(pid):
            continue
        study._storage.set_trial_user_attr(t._trial_id, LOST, True)
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        if t.params:
            study.enqueue_trial(dict(t.params), skip_if_exists=False)
        lost.append(t.number)
    return lost


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    out = {}
    for p in space.params:
        if p.choices is not None:
            out[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        elif p.is_int:
            out[p.name] = trial.suggest_int(
                p.name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log
            )
        else:
            out[p.name] = trial.suggest_float(
                p.name, float(p.low), float(p.high), step=p.step, log=p.log
            )
    return out


class Search:
    """One process's part of a search: runs trials K at a time until N are done.

    Args:
        project: The :class:`engine.model.project.Project` (with its ``search`` section).
        space: Its checked :class:`SearchSpace`.
        storage: An Optuna storage URL (:func:`default_storage`); one that cannot be
            opened raises :class:`engine.tune.space.SearchError`.
        trials: N, the trials the whole study runs (default: the section's).
        parallel: K, trials at a time in this process.
        emit: Called with each event (from the threads that run trials).
        seed: The samplers' seed (default: the section's).
        warm: While a trial trains, start the next trial's process
            (:class:`engine.train.worker.WarmWorker`: TensorFlow imported ahead), so
            trials after the first skip TensorFlow's start-up.
    """

    def __init__(
        self,
        project: Any,
        space: SearchSpace,
        storage: str,
        *,
        trials: int | None = None,
        parallel: int = 1,
        emit: Callable[[Event], None] = lambda e: None,
        seed: int | None = None,
        warm: bool = True,
    ) -> None:
        self.warm = warm
        self.project, self.space, self.storage = project, space, storage
        self.target = target_trials(space, trials)
        self.parallel = max(1, parallel)
        self.emit = emit
        # the first trial's process imports TensorFlow while this one opens the study
        device = (project.training or {}).get("device")
        self._first = WarmWorker(device) if warm else None
        try:
            opened = check_storage(storage)
            self.study = open_study(project, space, opened, space.seed if seed is None else seed)
        except BaseException:
            if self._first is not None:
                self._first.close()
            raise
        self.root = runs.runs_root(project)
        self.snapshot = project.to_dict()
        self._lock = threading.Lock()
        self._runs: dict[int, Any] = {}
        self._stopping = threading.Event()
        self.error: str | None = None
        self._importance_cost = 0.0  # CPU seconds of the last live importances
        self._importance_runs = 0

    def run(self) -> dict[str, Any]:
        """Run trials until the study holds N (K at a time); the summary (:func:`summary`).

        A Ctrl-C (KeyboardInterrupt) stops the running trials (their trials are marked
        ``lost``: a resumed search runs them again) and is raised again.
        """
        lost = mark_lost(self.study)
        if lost:
            self.emit({"event": "trials_lost", "trials": lost})
        threads = [
            threading.Thread(target=self._loop, name=f"layerlab-trial-{i}", daemon=True)
            for i in range(self.parallel)
        ]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except KeyboardInterrupt:
            self.stop()
            for t in threads:
                t.join()
            raise
        if self.error:
            raise SearchStopped(self.error)
        return summary(self.study, self.storage)

    def stop(self) -> None:
        """Stop every running trial (marked ``lost``) and start no more."""
        self._stopping.set()
        with self._lock:
            for run in self._runs.values():
                run.stop()

    def _loop(self) -> None:
        with self._lock:
            slot: list[WarmWorker | None] = [self._first]
            self._first = None
        try:
            while not self._stopping.is_set():
                if not self._one_trial(slot):
                    return
        except SearchStopped as exc:
            self.error = str(exc)
            self._stopping.set()
        finally:
            if slot[0] is not None:
                slot[0].close()

    def _one_trial(self, slot: list[WarmWorker | None]) -> bool:
        import optuna

        with self._lock:  # the study object is shared by this process's threads
            trial = self.study.ask()
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("pid", os.getpid())
            done_before = [
                t
                for t in self.study.get_trials(deepcopy=False)
                if t.number < trial.number and _counts(t)
            ]
            if len(done_before) >= self.target:
                trial.set_user_attr(SURPLUS, True)
                _tell(self.study, trial, state=optuna.trial.TrialState.FAIL)
                return False
            params = _suggest(trial, self.space)
        run_dir = self.root / f"tune-{self.study.study_name}-trial-{trial.number:03d}"
        trial.set_user_attr("run_dir", str(run_dir))
        run_dir.mkdir(parents=True, exist_ok=True)
        runs.write_json(
            run_dir / "trial.json",
            {"study": self.study.study_name, "storage": self.storage, "trial": trial.number,
             "params": params},
        )  # fmt: skip
        project = apply_params(self.snapshot, params)
        self.emit({"event": "trial", "trial": trial.number, "params": params,
                   "run_dir": str(run_dir)})  # fmt: skip
        started = time.monotonic()
        state, value, message = self._train(trial, project, run_dir, slot)
        took = round(time.monotonic() - started, 3)
        with self._lock:
            if state == "lost":
                trial.set_user_attr(LOST, True)
                _tell(self.study, trial, state=optuna.trial.TrialState.FAIL)
                self.study.enqueue_trial(params, skip_if_exists=False)
            elif state == "complete":
                _tell(self.study, trial, value)
            elif state == "pruned":
                _tell(self.study, trial, state=optuna.trial.TrialState.PRUNED)
            else:
                trial.set_user_attr("error", message)
                _tell(self.study, trial, state=optuna.trial.TrialState.FAIL)
        self.emit({"event": "trial_end", "trial": trial.number, "state": state,
                   "value": value, "time_s": took,
                   **({"message": message} if message else {})})  # fmt: skip
        if state == "complete":
            self._live_importances()
        return state != "lost"

    def _live_importances(self) -> None:
        """Emit ``{"event": "importances", "importances": {...}, "complete": n,
        "time_s": s}`` once :data:`IMPORTANCE_MIN_TRIALS` trials are complete, while
        the last computation cost at most :data:`LIVE_IMPORTANCE_BUDGET_S` of CPU
        (measured: 2-10 ms for 3-30 trials of 2-3 parameters with Optuna's default
        PED-ANOVA evaluator; importing Optuna's importance module, ~2.5 s once, is done
        outside the study's lock, and the first computation, ~1 s of one-off set-up in a
        busy search process, is not judged)."""
        if self._importance_cost > LIVE_IMPORTANCE_BUDGET_S:
            return

        with self._lock:
            complete = sum(
                1
                for t in self.study.get_trials(deepcopy=False)
                if t.state.name == "COMPLETE" and _counts(t)
            )
            if complete < IMPORTANCE_MIN_TRIALS:
                return
            started, cpu = time.monotonic(), time.thread_time()
            found = importances(self.study, complete)
            took, cost = time.monotonic() - started, time.thread_time() - cpu
            if self._importance_runs:  # the first one carries one-off set-up: not judged
                self._importance_cost = cost
            self._importance_runs += 1
        if found:
            self.emit({"event": "importances", "importances": found, "complete": complete,
                       "time_s": round(took, 3), "cpu_s": round(cost, 3)})  # fmt: skip

    def _train(
        self, trial: Any, project: dict[str, Any], run_dir: Path, slot: list[WarmWorker | None]
    ) -> tuple:
        metric, best, pruned, epochs = self.space.metric, None, False, 0
        started = time.monotonic()
        warm, slot[0] = slot[0], None
        run = start_training(project, run_dir, base_dir=self.project.base_dir, warm=warm)
        with self._lock:
            self._runs[trial.number] = run
            more = sum(_counts(t) for t in self.study.get_trials(deepcopy=False)) < self.target
        if self.warm and more:
            slot[0] = WarmWorker((project.get("training") or {}).get("device"))
        try:
            for event in run.events():
                if event.get("event") != "epoch" or event.get("partial"):
                    continue
                logs, epochs = event.get("logs") or {}, event["epoch"]
                value = logs.get(metric)
                if value is None:
                    run.stop()
                    raise SearchStopped(
                        f"the search's metric '{metric}' is not among the run's "
                        f"metrics ({', '.join(sorted(logs))}); set search.metric to one"
                    )
                value = float(value)
                if math.isfinite(value) and (
                    best is None
                    or (value > best if self.space.direction == "maximize" else value < best)
                ):
                    best = value
                with self._lock:
                    trial.report(value if math.isfinite(value) else _worst(self.space), epochs)
                    prune = trial.should_prune()
                self.emit({"event": "trial_epoch", "trial": trial.number, "epoch": epochs,
                           "value": value if math.isfinite(value) else None})  # fmt: skip
                if prune and not pruned:
                    pruned = True
                    run.stop()
                    self.emit({"event": "trial_pruned", "trial": trial.number, "epoch": epochs})
            final = run.wait() or {"event": "error", "message": "the run ended without a result"}
        finally:
            with self._lock:
                self._runs.pop(trial.number, None)
        with self._lock:
            trial.set_user_attr("epochs", epochs)
            trial.set_user_attr("time_s", round(time.monotonic() - started, 3))
        if self._stopping.is_set() and not pruned:
            return "lost", best, None
        if pruned:
            return "pruned", best, None
        if final["event"] == "error":
            if final.get("kind") == "data":
                raise SearchStopped(final["message"])
            return "failed", best, final["message"]
        if best is None:
            return "failed", None, f"no finite value of {metric} in any epoch"
        return "complete", best, None


def _tell(study: Any, trial: Any, *args: Any, **kwargs: Any) -> None:
    """``study.tell``; a grid sampler whose grid is used up calls ``study.stop()``, which
    Optuna refuses outside ``study.optimize`` after the trial is stored: ignored."""
    try:
        study.tell(trial, *args, **kwargs)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


def _worst(space: SearchSpace) -> float:
    return -1e300 if space.direction == "maximize" else 1e300


_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}


def summary(study: Any, storage: str) -> dict[str, Any]:
    """``{"best": {"trial", "params", "value"} | None, "trials": [...], "storage"}``: every
    trial that counts (not ``surplus``, not ``lost``), in number order."""
    trials = []
    for t in study.get_trials(deepcopy=False):
        if not _counts(t):
            continue
        trials.append(
            {
                "trial": t.number,
                "state": _STATES.get(t.state.name, t.state.name.lower()),
                "params": dict(t.params),
                "value": t.value if t.state.name == "COMPLETE" else _last(t),
                "run_dir": t.user_attrs.get("run_dir"),
                "epochs": t.user_attrs.get("epochs"),
                "time_s": t.user_attrs.get("time_s"),
                "curve": [[int(e), v] for e, v in sorted(t.intermediate_values.items())],
            }
        )
    done = [t for t in trials if t["state"] == "complete"]
    best = None
    if done:
        pick = max if study.direction.name == "MAXIMIZE" else min
        b = pick(done, key=lambda t: t["value"])
        best = {"trial": b["trial"], "params": b["params"], "value": b["value"]}
    return {
        "best": best,
        "trials": trials,
        "storage": storage,
        "importances": importances(study, len(done)),
    }


def importances(study: Any, complete: int) -> dict[str, float]:
    """Each searched parameter's importance for the metric (Optuna's
    ``get_param_importances`` with its default evaluator; they sum to 1), largest first; empty with fewer
    than :data:`IMPORTANCE_MIN_TRIALS` complete trials or when they cannot be computed
    (a parameter that never varied)."""
    if complete < IMPORTANCE_MIN_TRIALS:
        return {}
    import optuna

    try:
        with warnings.catch_warnings():  # "importances will be equal": said by the bars
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study)
    except Exception:  # one value for every trial, a single distribution: nothing to say
        return {}
    ranked = sorted(found.items(), key=lambda kv: -kv[1])
    return {k: round(float(v), 4) for k, v in ranked}


def _last(t: Any) -> float | None:
    values = t.intermediate_values
    return values[max(values)] if values else None


def check_storage(storage: str) -> Any:
    """The opened storage; one Optuna cannot open is refused by name (raises
    :class:`SearchError`)."""
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return open_storage(storage)
        except Exception as exc:  # Optuna and SQLAlchemy raise many kinds
            # two workers creating one new database race on its tables: try again
            if attempt == OPEN_ATTEMPTS - 1:
                raise SearchError(f"--storage {storage}: cannot be opened ({exc})") from exc
            time.sleep(0.5 + 0.5 * attempt)
    raise AssertionError("unreachable")


def read_study(project: Any, storage: str | None = None) -> dict[str, Any] | None:
    """The :func:`summary` of the project's study, or None when there is none yet.

    Reads only: the default storage file is never created here. Raises
    :class:`SearchError` for a wrong ``search`` section.
    """
    import optuna

    space = parse_search(project.to_dict())
    if storage is None:
        storage = _existing_storage(runs.runs_root(project))
        if storage is None:
            return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(
            study_name=study_name(project, space), storage=open_storage(storage)
        )
    except KeyError:  # no study of that name in the storage
        return None
    return summary(study, storage)
