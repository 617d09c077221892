"""The ``search`` section of a project: the space a hyper-parameter search samples.

A project file may hold, beside ``graph``, ``data`` and ``training``::

    "search": {
      "parameters": {
        "hidden.units": {"choices": [16, 64, 128]},
        "training.optimizer.learning_rate": {"low": 0.0001, "high": 0.1, "log": true},
        "dropout.rate": {"low": 0.0, "high": 0.5}
      },
      "strategy": "tpe", "trials": 20, "metric": "val_accuracy",
      "direction": "maximize", "pruner": "median", "seed": 0
    }

A parameter is ``NODE_ID.PARAM`` (a layer parameter) or ``training.<path>`` (a key of
the training section, ``training.optimizer.type``). Each is ``{"choices": [...]}`` or
a range ``{"low", "high", "log"?, "step"?}``: an integer range when ``low`` and
``high`` are both ints, else a float range. :func:`search_problems` checks a section
without TensorFlow or Optuna: every parameter must exist and every value the space
can give (each choice, both ends of a range) must be one the catalog's spec (or the
training section's checks) accepts, so a search is refused by name before any trial
runs. :func:`apply_params` makes one trial's project: a pure dict edit.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from engine.catalog.checks import check_value
from engine.catalog.table import CATALOG
from engine.model.commands import Command, Macro, SetParams, SetSection
from engine.train.config import monitor_mode, training_problems

STRATEGIES = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
SECTION_KEYS = (
    "parameters",
    "strategy",
    "trials",
    "metric",
    "direction",
    "pruner",
    "seed",
    "study",
    "enqueue",
)
"""Keys a ``search`` section may hold (anything else is refused by name)."""
_PRUNER_KEYS = ("type", "startup_trials", "warmup_epochs")


class SearchError(ValueError):
    """The ``search`` section is missing or wrong; the message names what and why."""


@dataclass(frozen=True)
class Param:
    """One searched parameter: ``choices``, or a range ``low``..``high``."""

    name: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False

    @property
    def is_int(self) -> bool:
        return self.choices is None and self.integer

    def grid_values(self) -> list[Any] | None:
        """Every value a grid tries, or None when the range is continuous."""
        if self.choices is not None:
            return list(self.choices)
        if self.is_int and not self.log:
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        if self.step:
            n = int(math.floor((self.high - self.low) / self.step + 1e-9))
            return [round(self.low + i * self.step, 12) for i in range(n + 1)]
        return None


@dataclass(frozen=True)
class SearchSpace:
    """A checked ``search`` section (see the module's docstring)."""

    params: tuple[Param, ...]
    strategy: str = "tpe"
    trials: int = 20
    metric: str = "val_loss"
    direction: str = "minimize"
    pruner: str = "median"
    startup_trials: int = 2
    warmup_epochs: int = 0
    seed: int | None = None
    study: str | None = None
    enqueue: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def grid(self) -> dict[str, list[Any]]:
        return {p.name: p.grid_values() or [] for p in self.params}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def parse_search(project: dict[str, Any]) -> SearchSpace:
    """The project's checked search space.

    Args:
        project: A project as a dict (``Project.to_dict()``; the section is kept as
            an unknown top-level key by :mod:`engine.model.project`).

    Raises:
        SearchError: Every problem found, one per line, each naming the parameter.
    """
    section = project.get("search")
    if section is None:
        raise SearchError(
            'the project has no "search" section; add one (see docs/project-format.md, '
            '"The search section")'
        )
    problems = search_problems(project)
    if problems:
        raise SearchError("search: " + "; ".join(problems))
    return _space(section, project)


def search_problems(project: dict[str, Any]) -> list[str]:
    """Everything wrong with the project's ``search`` section (empty when fine or absent)."""
    section = project.get("search")
    if section is None:
        return []
    if not isinstance(section, dict):
        return [f"the search section must be an object; got {section!r}"]
    problems = [
        f"unknown key '{k}'; known keys: {', '.join(SECTION_KEYS)}"
        for k in section
        if k not in SECTION_KEYS
    ]
    params = section.get("parameters")
    if not isinstance(params, dict) or not params:
        problems.append('"parameters" must be an object with at least one parameter')
        params = {}
    for name, spec in params.items():
        problems += _param_problems(project, name, spec)
    strategy = section.get("strategy", "tpe")
    if strategy not in STRATEGIES:
        problems.append(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    elif strategy == "grid" and not problems:
        for name, spec in params.items():
            if _param(name, spec, project).grid_values() is None:
                problems.append(
                    f"'{name}': a grid needs choices, an integer range or a float range with a step"
                )
    trials = section.get("trials", 20)
    if not _is_int(trials) or trials < 1:
        problems.append(f"trials must be a whole number >= 1; got {trials!r}")
    metric = section.get("metric", "val_loss")
    if not isinstance(metric, str) or not metric:
        problems.append(f"metric must be a metric name such as 'val_accuracy'; got {metric!r}")
    direction = section.get("direction")
    if direction is not None and direction not in ("minimize", "maximize"):
        problems.append(f'direction must be "minimize" or "maximize"; got {direction!r}')
    problems += _pruner_problems(section.get("pruner", "median"))
    seed = section.get("seed")
    if seed is not None and (not _is_int(seed) or not 0 <= seed < 2**32):
        problems.append(f"seed must be a whole number from 0 to {2**32 - 1} or null; got {seed!r}")
    study = section.get("study")
    if study is not None and (not isinstance(study, str) or not study.strip()):
        problems.append(f"study must be a name; got {study!r}")
    enqueue = section.get("enqueue", [])
    if not isinstance(enqueue, list) or not all(isinstance(e, dict) for e in enqueue):
        problems.append("enqueue must be a list of objects {parameter: value}")
    else:
        for i, point in enumerate(enqueue):
            for name, value in point.items():
                if name not in params:
                    problems.append(f"enqueue #{i + 1}: '{name}' is not a searched parameter")
                elif isinstance(params[name], dict) and not _param_problems(
                    project, name, params[name]
                ):
                    p = _value_problem(project, name, value)
                    if p:
                        problems.append(f"enqueue #{i + 1}: {p}")
    return problems


def _pruner_problems(pruner: Any) -> list[str]:
    if isinstance(pruner, dict):
        bad = [k for k in pruner if k not in _PRUNER_KEYS]
        out = [f"pruner has no key '{k}'; it takes {', '.join(_PRUNER_KEYS)}" for k in bad]
        kind = pruner.get("type", "median")
        for key in ("startup_trials", "warmup_epochs"):
            v = pruner.get(key, 0)
            if not _is_int(v) or v < 0:
                out.append(f"pruner {key} must be a whole number >= 0; got {v!r}")
    else:
        out, kind = [], pruner
    if kind not in PRUNERS:
        out.append(f"pruner must be one of {', '.join(PRUNERS)}; got {kind!r}")
    return out


def _param(name: str, spec: dict[str, Any], project: dict[str, Any]) -> Param:
    if "choices" in spec:
        return Param(name, choices=tuple(spec["choices"]))
    low, high = spec["low"], spec["high"]
    integer = _is_int(low) and _is_int(high) and _node_kind(project, name) != "float"
    return Param(
        name,
        low=low,
        high=high,
        log=bool(spec.get("log", False)),
        step=spec.get("step"),
        integer=integer,
    )


def _param_problems(project: dict[str, Any], name: str, spec: Any) -> list[str]:
    where = f"'{name}'"
    target = _target_problem(project, name)
    if target:
        return [target]
    if not isinstance(spec, dict):
        return [f'{where} must be {{"choices": [...]}} or {{"low": ..., "high": ...}}']
    if "choices" in spec:
        extra = [k for k in spec if k != "choices"]
        if extra:
            return [f"{where}: choices take no {', '.join(extra)}"]
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            return [f"{where}: choices must be a non-empty list; got {choices!r}"]
        if not all(c is None or isinstance(c, (str, int, float, bool)) for c in choices):
            return [f"{where}: each choice must be a number, a string, true, false or null"]
        return [p for c in choices if (p := _value_problem(project, name, c))]
    extra = [k for k in spec if k not in ("low", "high", "log", "step")]
    if extra:
        return [f"{where} has no key {', '.join(extra)}; a range takes low, high, log, step"]
    low, high = spec.get("low"), spec.get("high")
    if not _is_number(low) or not _is_number(high):
        return [f"{where}: a range needs numbers low and high; got {low!r} and {high!r}"]
    if low > high:
        return [f"{where}: low {low!r} is above high {high!r}"]
    log, step = spec.get("log", False), spec.get("step")
    if not isinstance(log, bool):
        return [f"{where}: log must be true or false; got {log!r}"]
    if log and low <= 0:
        return [f"{where}: a log range needs low > 0; got {low!r}"]
    if step is not None and (not _is_number(step) or step <= 0):
        return [f"{where}: step must be a number > 0; got {step!r}"]
    if log and step is not None:
        return [f"{where}: a range is either log or stepped, not both"]
    if step is not None and _is_int(low) and _is_int(high) and not _is_int(step):
        return [f"{where}: an integer range takes an integer step; got {step!r}"]
    kind = _node_kind(project, name)
    if kind == "int" and not (_is_int(low) and _is_int(high)):
        return [f"{where} is a whole number; give low and high as ints; got {low!r}, {high!r}"]
    return [p for v in (low, high) if (p := _value_problem(project, name, v))][:1]


def _nodes(project: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nodes = (project.get("graph") or {}).get("nodes") or []
    return {n.get("id"): n for n in nodes if isinstance(n, dict)}


def _target_problem(project: dict[str, Any], name: Any) -> str | None:
    if not isinstance(name, str) or "." not in name:
        return (
            f"parameter {name!r} must be NODE_ID.PARAM (a layer's parameter) or "
            "training.<path> (a training setting)"
        )
    head, rest = name.split(".", 1)
    if head == "training":
        return None  # checked by value, through the training section's checks
    nodes = _nodes(project)
    if head not in nodes:
        return f"'{name}': there is no node '{head}'; nodes: {', '.join(map(str, nodes))}"
    spec = CATALOG.get(nodes[head].get("type"))
    if spec is None or spec.param(rest) is None:
        known = ", ".join(p.name for p in spec.params) if spec else "none"
        kind = nodes[head].get("type")
        return f"'{name}': {kind} '{head}' has no parameter '{rest}'; it has {known}"
    return None


def _node_kind(project: dict[str, Any], name: str) -> str | None:
    head, rest = name.split(".", 1)
    if head == "training":
        return None
    return CATALOG[_nodes(project)[head]["type"]].param(rest).kind


def _value_problem(project: dict[str, Any], name: str, value: Any) -> str | None:
    """Why ``name`` cannot take ``value`` (the catalog's or training's own check)."""
    head, rest = name.split(".", 1)
    if head == "training":
        section = apply_params(project, {name: value}).get("training") or {}
        problems = training_problems(section)
        return f"'{name}' = {value!r}: {problems[0]}" if problems else None
    pspec = CATALOG[_nodes(project)[head]["type"]].param(rest)
    if pspec.kind == "float" and _is_int(value):
        value = float(value)
    p = check_value(pspec, value)
    return f"'{name}' = {value!r}: {p}" if p else None


def _space(section: dict[str, Any], project: dict[str, Any]) -> SearchSpace:
    pruner = section.get("pruner", "median")
    pruner = pruner if isinstance(pruner, dict) else {"type": pruner}
    metric = section.get("metric", "val_loss")
    direction = section.get("direction") or (
        "maximize" if monitor_mode(metric) == "max" else "minimize"
    )
    return SearchSpace(
        params=tuple(_param(n, s, project) for n, s in section["parameters"].items()),
        strategy=section.get("strategy", "tpe"),
        trials=section.get("trials", 20),
        metric=metric,
        direction=direction,
        pruner=pruner.get("type", "median"),
        startup_trials=pruner.get("startup_trials", 2),
        warmup_epochs=pruner.get("warmup_epochs", 0),
        seed=section.get("seed"),
        study=section.get("study"),
        enqueue=tuple(section.get("enqueue", [])),
    )


def apply_params(project: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``project`` with each ``NODE_ID.PARAM`` / ``training.<path>`` set.

    A string optimizer (``"Adam"``) becomes ``{"type": "Adam"}`` when a path goes into
    it. The ``search`` section is left out of the copy (a trial is a plain project).
    """
    out = copy.deepcopy({k: v for k, v in project.items() if k != "search"})
    for name, value in params.items():
        head, rest = name.split(".", 1)
        if head == "training":
            node = out.setdefault("training", {})
            keys = rest.split(".")
            for key in keys[:-1]:
                child = node.get(key)
                if isinstance(child, str):
                    child = {"type": child}
                elif not isinstance(child, dict):
                    child = {}
                node[key] = child
                node = child
            node[keys[-1]] = value
        else:
            node = _nodes(out)[head]
            node.setdefault("params", {})[rest] = value
    return out


def apply_command(project: Any, params: dict[str, Any], text: str = "") -> Macro:
    """One undoable edit that gives a :class:`engine.model.project.Project` a trial's
    values ("apply the best trial"): a :class:`SetParams` per node touched and one
    :class:`SetSection` of ``training``, as one :class:`Macro`."""
    trial = apply_params({"graph": project.graph.to_dict(), "training": project.training}, params)
    nodes = _nodes(trial)
    parts: list[Any] = []
    for node_id in dict.fromkeys(n.split(".", 1)[0] for n in params):
        if node_id != "training":
            parts.append(SetParams(node_id, nodes[node_id].get("params", {})))
    if any(n.startswith("training.") for n in params):
        parts.append(SetSection("training", trial["training"]))
    return Macro(text or "Apply trial values", parts)


class SetSearch(Command):
    """Replace the project's ``search`` section (kept in ``Project.extra``) as one
    undoable edit; ``None`` removes it. The Experiments tab's space editor pushes one
    per change."""

    def __init__(self, section: dict[str, Any] | None, text: str = "") -> None:
        self.new, self.old, self.had = copy.deepcopy(section), None, False
        self.text = text or "Change the search"

    def do(self, project: Any) -> None:
        self.had = "search" in project.extra
        self.old = copy.deepcopy(project.extra.get("search"))
        if self.new is None:
            project.extra.pop("search", None)
        else:
            project.extra["search"] = copy.deepcopy(self.new)

    def undo(self, project: Any) -> None:
        if self.had:
            project.extra["search"] = copy.deepcopy(self.old)
        else:
            project.extra.pop("search", None)


TRAINING_PARAMS = (
    "training.optimizer.learning_rate",
    "training.optimizer.type",
    "training.batch_size",
    "training.epochs",
)
"""Training settings offered first by the space editor (any ``training.<path>`` works)."""
_SEARCHABLE_KINDS = ("int", "float", "choice", "bool", "initializer")


def candidates(project: dict[str, Any]) -> list[tuple[str, str]]:
    """``(parameter path, kind)`` pairs a search can vary, for the space editor: the
    common training settings, then each node's int, float, choice and bool parameters
    (``hidden.units``) in graph order. ``kind`` is ``float``, ``int`` or ``choice``."""
    out = [
        (TRAINING_PARAMS[0], "float"),
        (TRAINING_PARAMS[1], "choice"),
        (TRAINING_PARAMS[2], "int"),
        (TRAINING_PARAMS[3], "int"),
    ]
    for node_id, node in _nodes(project).items():
        spec = CATALOG.get(node.get("type"))
        if spec is None or node.get("type") == "Input":
            continue
        for p in spec.params:
            if p.kind in _SEARCHABLE_KINDS:
                kind = p.kind if p.kind in ("int", "float") else "choice"
                out.append((f"{node_id}.{p.name}", kind))
    return out


def current_value(project: dict[str, Any], name: str) -> Any:
    """The project's present value of a parameter path (None when unset)."""
    head, rest = name.split(".", 1) if "." in name else (name, "")
    if head == "training":
        node: Any = project.get("training") or {}
        for key in rest.split("."):
            if isinstance(node, str) and key == "type":
                return node
            node = node.get(key) if isinstance(node, dict) else None
        return node
    n = _nodes(project).get(head) or {}
    value = (n.get("params") or {}).get(rest)
    if value is None:
        spec = CATALOG.get(n.get("type"))
        param = spec.param(rest) if spec else None
        value = param.default if param else None
    return value
