"""Project -> one runnable, readable Python script.

:func:`generate` writes a file that imports only Keras, NumPy (and scikit-learn
for the built-in data sets) and defines ``build_model()`` (the functional API,
one line per layer), ``load_data()`` (the same sources, splits and
standardisation as :mod:`engine.data.dataset`) and ``main()`` (compile, fit with the
project's training settings, save). This module writes ``build_model()`` and
puts the script together; :mod:`engine.codegen.data` writes ``load_data()``,
:mod:`engine.codegen.train` writes ``main()``, and :mod:`engine.codegen.text`
holds the literal, docstring and line-wrapping helpers they share.

Safety: text from the project never becomes code. Every string is written
through :func:`literal` (``repr``-based), node ids must pass
:func:`engine.model.graph.is_valid_id`, layer types must be catalog types, parameter
names must be catalog parameters, and free text (name, description) only ever
appears inside a docstring with every quote and backslash escaped, or as a
string literal.
"""

from __future__ import annotations

import builtins
import heapq
import keyword
import textwrap
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.build.backbone import preprocessing_spec
from engine.build.builder import model_name, port_problem
from engine.build.errors import BuildError
from engine.build.layers import POSITIONAL_INPUTS
from engine.catalog.backbones import BACKBONES
from engine.catalog.checks import check_value, format_index
from engine.catalog.operations import ARITHMETIC, LIST_OPS, OP_PARAMS, op_problems
from engine.catalog.specs import REGULARIZERS, ParamSpec
from engine.catalog.table import CATALOG, PRETRAINED_TYPES
from engine.codegen.data import data_code
from engine.codegen.text import CodegenError, call_code, dedupe, docstring, literal, tuple_code
from engine.codegen.train import main_code
from engine.model.blocks import Block
from engine.model.blocks import ports as block_ports
from engine.model.graph import Edge, Graph, Node, is_valid_id, output_ports, state_names
from engine.model.problems import ERROR, resolve_weights, structural_problems

#: Names the generated script defines or imports at module level; node
#: variables never shadow them (nor Python keywords and builtins).
SCRIPT_NAMES = frozenset(
    {
        "argparse",
        "csv",
        "math",
        "keras",
        "layers",
        "np",
        "tf",
        "Path",
        "model",
        "inputs",
        "outputs",
        "build_model",
        "load_data",
        "main",
        "split",
        "apportion",
        "standardize",
        "encode_targets",
        "read_csv",
        "read_npz",
        "read_images",
        "make_data",
        "make_optimizer",
        "balanced_class_weights",
        "DATA_DIR",
        "SEED",
        "EPOCHS",
        "BATCH_SIZE",
        "WEIGHTS",
        "steps_per_epoch",
        "learning_rate",
        "args",
        "parser",
        "history",
        "callbacks",
        "sklearn",
    }
)
_TAKEN = SCRIPT_NAMES | set(dir(builtins)) | set(keyword.kwlist) | set(keyword.softkwlist)


# --------------------------------------------------------------------------- the model


def variable_names(graph: Graph) -> dict[str, str]:
    """A Python variable name for each node: its id, suffixed where it would clash.

    Ids that are keywords, builtins or names the script uses (``keras``,
    ``layers``, ``model``, ...) get ``_`` (then ``_2``, ``_3``, ...). Ids are
    compared in NFKC form, as Python itself reads identifiers.

    Raises:
        CodegenError: Naming the node whose id is not a valid identifier.
    """
    wanted: dict[str, str] = {}
    for node_id, node in graph.nodes.items():
        if not is_valid_id(node_id) or node.id != node_id:
            raise CodegenError(
                f"layer {node_id!r}: the id is not a valid Python identifier "
                "(letters, digits and underscores, not starting with a digit)"
            )
        base = unicodedata.normalize("NFKC", node_id)
        wanted[node_id] = base if base.isidentifier() else "layer"
    names: dict[str, str] = {}
    used: set[str] = set()
    for node_id, base in wanted.items():  # ids keep their own names where they can
        if base not in _TAKEN and base not in used:
            names[node_id] = base
            used.add(base)
    taken = _TAKEN | set(wanted.values())
    for node_id, base in wanted.items():
        if node_id in names:
            continue
        name, i = base + "_", 2
        while name in taken or name in used:
            name, i = f"{base}_{i}", i + 1
        names[node_id] = name
        used.add(name)
    return {node_id: names[node_id] for node_id in wanted}


def _same(value: Any, default: Any) -> bool:
    """Whether a param value equals its catalog default (lists vs tuples, bools apart)."""
    if isinstance(value, bool) or isinstance(default, bool):
        return type(value) is type(default) and value == default
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return len(value) == len(default) and all(_same(a, b) for a, b in zip(value, default))
    return value == default


def _regularizer_code(value: Any, where: str) -> str:
    if value is None or isinstance(value, str):
        return literal(value)
    if not isinstance(value, dict) or value.get("type") not in REGULARIZERS:
        raise CodegenError(
            f"{where}: a regularizer must be null or "
            f'{{"type": "L1"|"L2"|"L1L2", ...}}; got {value!r}'
        )
    kind = value["type"]
    keys = [k for k in REGULARIZERS[kind] if value.get(k) is not None]
    for k in keys:
        if isinstance(value[k], bool) or not isinstance(value[k], (int, float)):
            raise CodegenError(f"{where}: regularizer {k} must be a number; got {value[k]!r}")
    if len(keys) == 1 and len(REGULARIZERS[kind]) == 1:
        return f"keras.regularizers.{kind}({literal(float(value[keys[0]]))})"
    args = ", ".join(f"{k}={literal(float(value[k]))}" for k in keys)
    return f"keras.regularizers.{kind}({args})"


def _layer_args(node_type: str, params: Any, where: str) -> list[str]:
    """``name=value`` source for each param that differs from its catalog default."""
    spec = CATALOG.get(node_type)
    if spec is None:
        raise CodegenError(f"{where}: unknown layer type {node_type!r}")
    if not isinstance(params, dict):
        raise CodegenError(f"{where}: params must be a mapping; got {params!r}")
    args = []
    for pspec in spec.params:  # catalog order reads best (units before activation, ...)
        if pspec.name not in params:
            continue
        value = params[pspec.name]
        if not pspec.required and _same(value, pspec.default):
            continue
        args.append(f"{pspec.name}={_value_code(pspec, value, where)}")
    unknown = [name for name in params if spec.param(name) is None]
    if unknown:
        raise CodegenError(f"{where}: unknown parameter {unknown[0]!r}")
    return args


def _value_code(pspec: ParamSpec, value: Any, where: str) -> str:
    if pspec.kind in ("ints", "shape", "axes"):
        return literal(value, tuples=True)
    if pspec.kind == "regularizer":
        return _regularizer_code(value, f"{where}: {pspec.name}")
    if pspec.kind == "layer" and value is not None:
        if (
            not isinstance(value, dict)
            or value.get("type") not in CATALOG
            or (pspec.choices and value.get("type") not in pspec.choices)
        ):
            raise CodegenError(
                f"{where}: {pspec.name} must be "
                f'{{"type": <layer type>, "params": {{...}}}}; got {value!r}'
            )
        inner = value["type"]
        inner_args = _layer_args(
            inner, value.get("params") or {}, f"{where}: {pspec.name} ({inner})"
        )
        return f"layers.{inner}({', '.join(inner_args)})"
    return literal(value)


def port_names(graph: Graph, names: dict[str, str]) -> dict[str, list[str]]:
    """A variable per output port: the node's own name for output 0, then
    ``<name>_<state>`` for a recurrent layer's states (``enc, enc_h, enc_c``), suffixed
    where that would clash with another name. An output port with a
    ``source_port`` the source lacks gets no name (the graph check refuses it)."""
    used = set(names.values()) | _TAKEN
    out: dict[str, list[str]] = {}
    for nid, node in graph.nodes.items():
        found = [names[nid]]
        for state in output_ports(node)[1:]:
            name, i = f"{names[nid]}_{state}", 2
            while name in used:
                name, i = f"{names[nid]}_{state}_{i}", i + 1
            used.add(name)
            found.append(name)
        out[nid] = found
    return out


def input_vars(graph: Graph, nid: str, ports: dict[str, list[str]]) -> list[str]:
    """The variables feeding node ``nid``, by input port (each edge's source port).

    Raises:
        CodegenError: When an edge reads an output its source does not have.
    """
    found = []
    for e in graph.inputs_of(nid):
        problem = port_problem(graph, e)
        if problem:
            raise CodegenError(problem)
        found.append(ports[e.source][e.source_port])
    return found


def state_code(node: Node, inputs: list[str]) -> str:
    """The call of a recurrent layer given its initial state: ``(x, initial_state=[h, c])``
    ("" when the node takes no state)."""
    if not state_names(node) or len(inputs) < 2:
        return ""
    return f"({inputs[0]}, initial_state=[{', '.join(inputs[1:])}])"


def _check_graph(graph: Graph) -> None:
    errors = [p for p in structural_problems(graph) if p.severity == ERROR]
    if errors:
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise CodegenError(errors[0].message + more)


def model_code(graph: Graph, name: str, base_dir: Any = None) -> str:
    """The ``build_model()`` function: one line per layer, in topological order.

    With blocks (:mod:`engine.model.blocks`), each block is a function named after it
    (written before ``build_model()``): its parameters are the tensors entering it (in
    :func:`engine.model.blocks.ports` order), its body the lines of its layers, with a
    call for each block nested in it, and it returns the tensors leaving it (a tuple
    when several). ``build_model()`` calls each top-level block where it is used.
    Input layers are always created in ``build_model()`` (a block holding one gets it
    as a parameter), and a block that cannot be one call (a wire leaves it and comes
    back in through other layers) is written inline, layer by layer. ``base_dir`` (the
    project's folder) makes a Backbone's relative weights path absolute.
    """
    names = variable_names(graph)
    _check_graph(graph)
    ports = port_names(graph, names)
    order = graph.topological_order()
    scopes = _block_scopes(graph, order, names, ports)
    rank = {n: i for i, n in enumerate(order)}
    incoming: dict[str, list[Edge]] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        incoming[e.target].append(e)
    functions = []
    for bid, scope in scopes.items():
        head = call_code(f"def {scope.function}", scope.params, "", ":")
        lines = [head, "    " + docstring(f"Block '{graph.blocks[bid].name}'.", "    ")]
        lines += _scope_lines(
            graph, bid, scope.members, rank, incoming, scopes, names, ports, base_dir
        )
        lines.append(f"    return {tuple_code(scope.returns, '    ')}")
        functions.append("\n".join(lines) + "\n")
    lines = [
        "def build_model():",
        '    """The model, one line per layer (Keras functional API)."""',
    ]
    lines += _scope_lines(
        graph, None, set(graph.nodes), rank, incoming, scopes, names, ports, base_dir
    )
    ins = [names[n] for n, node in graph.nodes.items() if node.type == "Input"]
    outs = [names[n] for n in graph.output_nodes()]  # a recurrent layer's output 0
    ins_code = ins[0] if len(ins) == 1 else tuple_code(ins, "        ", "[]")
    outs_code = outs[0] if len(outs) == 1 else tuple_code(outs, "        ", "[]")
    lines.append(
        call_code(
            "return keras.Model",
            [f"inputs={ins_code}", f"outputs={outs_code}", f"name={literal(model_name(name))}"],
            "    ",
        )
    )
    return "\n\n".join([*functions, "\n".join(lines) + "\n"])


@dataclass
class _Scope:
    """A block written as a function: its name, members (Inputs left out), parameters,
    returned variables and the block directly around it (None: ``build_model``)."""

    function: str
    members: set[str]
    params: list[str]
    returns: list[str]
    call_args: list[str]
    parent: str | None


def _block_scopes(
    graph: Graph, order: list[str], names: dict[str, str], ports: dict[str, list[str]]
) -> dict[str, _Scope]:
    """The blocks written as functions, inner ones before the blocks around them."""
    inputs = {n for n, node in graph.nodes.items() if node.type == "Input"}
    rank = {n: i for i, n in enumerate(order)}
    children: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        children[e.source].append(e.target)
    members: dict[str, set[str]] = {}
    for bid, block in graph.blocks.items():
        inside = set(block.nodes) - inputs
        if not inside:
            continue
        if not _convex(inside, children, rank):
            continue  # a wire leaves and comes back: not one call
        if any(inside == other for other in members.values()):
            continue
        members[bid] = inside
    used = set(names.values()) | {p for group in ports.values() for p in group} | _TAKEN
    out: dict[str, _Scope] = {}
    by_size = sorted(members, key=lambda b: len(members[b]))
    for bid in by_size:
        inside = members[bid]
        block = Block(bid, bid, [n for n in graph.nodes if n in inside])
        p = block_ports(block, graph.edges)
        function, i = bid, 2
        if function in used:
            function = f"{bid}_block"
        while function in used:
            function, i = f"{bid}_block{i}", i + 1
        used.add(function)
        holders = [o for o in by_size if o != bid and inside < members[o]]
        args = [ports[s][sp] for s, sp in p.inputs]
        out[bid] = _Scope(
            function,
            inside,
            args,
            [ports[n][sp] for n, sp in p.outputs],
            args,
            holders[0] if holders else None,
        )
    return out


def _convex(inside: set[str], children: dict[str, list[str]], rank: dict[str, int]) -> bool:
    """Whether no wire leaves the layers ``inside`` and comes back in through others.
    Such a path only passes layers ranked (topologically) below the block's last one."""
    top = max(rank[n] for n in inside)
    stack = [k for n in inside for k in children[n] if k not in inside and rank[k] < top]
    seen: set[str] = set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        for k in children[n]:
            if k in inside:
                return False
            if rank[k] < top:
                stack.append(k)
    return True


def _scope_lines(
    graph: Graph,
    scope: str | None,
    members: set[str],
    rank: dict[str, int],
    incoming: dict[str, list[Edge]],
    scopes: dict[str, _Scope],
    names: dict[str, str],
    ports: dict[str, list[str]],
    base_dir: Any = None,
) -> list[str]:
    """The lines of a scope's body: its own layers, and a call for each block directly
    inside it, in an order where each comes after what it reads (``rank``: each
    layer's place in a topological order; ``incoming``: the wires into each layer)."""
    children = [b for b, s in scopes.items() if s.parent == scope]
    item = {n: n for n in members}
    for b in children:
        for n in scopes[b].members:
            item[n] = b
    first: dict[str, int] = {}
    for n, it in item.items():
        first[it] = min(first.get(it, len(rank)), rank[n])
    after: dict[str, set[str]] = {it: set() for it in first}
    need = dict.fromkeys(first, 0)
    for e in (e for n in members for e in incoming[n]):
        a, b = item.get(e.source), item[e.target]
        if a is not None and a != b and b not in after[a]:
            after[a].add(b)
            need[b] += 1
    ready = [(first[it], it) for it, k in need.items() if k == 0]
    heapq.heapify(ready)
    lines: list[str] = []
    while ready:
        _, it = heapq.heappop(ready)
        if it in scopes:
            s = scopes[it]
            targets = tuple_code(s.returns, "    ")
            lines.append(call_code(f"{targets} = {s.function}", s.call_args, "    "))
        else:
            lines += _node_lines(graph, it, names, ports, base_dir)
        for nxt in after[it]:
            need[nxt] -= 1
            if need[nxt] == 0:
                heapq.heappush(ready, (first[nxt], nxt))
    return lines


def _node_lines(
    graph: Graph, nid: str, names: dict[str, str], ports: dict[str, list[str]], base_dir: Any = None
) -> list[str]:
    """The line(s) creating node ``nid``."""
    node: Node = graph.nodes[nid]
    where = f"{node.type} '{nid}'"
    args = _layer_args(node.type, node.params, where) + [f"name={literal(nid)}"]
    var = names[nid]
    if not node.trainable and node.type != "Input":
        args.append("trainable=False")  # frozen: layer.trainable = False
    if node.type == "Input":
        return [call_code(f"{var} = keras.Input", args, "    ")]
    inputs = input_vars(graph, nid, ports)
    if node.type == "Operation":
        return [operation_line(node, var, inputs)]
    var = ", ".join(ports[nid])  # out, h, c = layers.LSTM(..., return_state=True)(x)
    if node.type in PRETRAINED_TYPES:
        used = set(names.values()) | {p for group in ports.values() for p in group}
        used |= set(graph.blocks)
        return _pretrained_code(node, var, inputs[0], used, where, base_dir)
    if state_code(node, inputs):
        tail = state_code(node, inputs)
    elif len(inputs) == 1:
        tail = f"({inputs[0]})"
    elif node.type in POSITIONAL_INPUTS:
        tail = f"({', '.join(inputs)})"
    else:
        tail = f"([{', '.join(inputs)}])"
    return [call_code(f"{var} = layers.{node.type}", args, "    ", tail)]


def _weights_literal(value: Any, base_dir: Any) -> Any:
    """A Backbone's weights as the script writes them: a file relative to the project's
    folder becomes absolute (the script may run anywhere)."""
    if not value:
        return None
    if value == "imagenet" or not isinstance(value, str) or base_dir is None:
        return value
    return str(resolve_weights(value, base_dir).resolve())


def _pretrained_code(
    node: Node, var: str, source: str, used: set[str], where: str, base_dir: Any = None
) -> list[str]:
    """A Backbone the Keras way (``base = keras.applications.X(include_top=False, ...)``,
    ``x = base(inputs)``), or the one Keras layer of a BackbonePreprocessing mode."""
    params = node.params if isinstance(node.params, dict) else {}
    frozen = [] if node.trainable else ["trainable=False"]
    name = f"name={literal(node.id)}"
    if node.type == "BackbonePreprocessing":
        try:
            spec = preprocessing_spec(node)
        except BuildError as exc:
            raise CodegenError(str(exc)) from None
        if spec[0] == "Dense":  # caffe: RGB -> BGR and minus the Caffe mean, fixed
            call = "layers.Dense"
            args = [
                "3",
                f"kernel_initializer=keras.initializers.Constant({spec[1]})",
                f"bias_initializer=keras.initializers.Constant({spec[2]})",
            ]
            frozen = ["trainable=False"]
        elif spec[0] == "Identity":
            call, args = "layers.Identity", []
        else:
            call, args = "layers.Rescaling", [literal(spec[1]), f"offset={literal(spec[2])}"]
        return [call_code(f"{var} = {call}", [*args, *frozen, name], "    ", f"({source})")]
    app = params.get("application")
    if app not in BACKBONES:
        raise CodegenError(
            f"{where}: application must be a keras.applications network; got {app!r}"
        )
    net, i = f"{var}_net", 2
    while net in used or net in _TAKEN:
        net, i = f"{var}_net{i}", i + 1
    args = [
        "include_top=False",
        f"weights={literal(_weights_literal(params.get('weights'), base_dir))}",
        f"input_shape={source}.shape[1:]",
        f"input_tensor=keras.Input({source}.shape[1:], name={literal(node.id + '_input')})",
    ]
    for pname in ("pooling", "alpha", "minimalistic", "include_preprocessing"):
        pspec = CATALOG["Backbone"].param(pname)
        if pname in params and not _same(params[pname], pspec.default):
            args.append(f"{pname}={literal(params[pname])}")
    lines = [call_code(f"{net} = keras.applications.{app}", args, "    ")]
    lines.append(f"    {net}.name = {literal(node.id)}")
    if not node.trainable:
        lines.append(f"    {net}.trainable = False  # frozen")
    lines.append(f"    {var} = {net}({source})")
    return lines


def operation_line(node: Node, var: str, inputs: list[str]) -> str:
    """The line of an ``Operation`` node: the same ``keras.ops`` call Keras code writes
    (``x[:, 1:5]`` for get_item). Values are checked against the catalog first; the
    op is one of the allow-list, so no text from the project becomes code."""
    where = f"Operation '{node.id}'"
    spec = CATALOG["Operation"]
    params = node.params if isinstance(node.params, dict) else {}
    for name, value in params.items():
        pspec = spec.param(name)
        problem = check_value(pspec, value) if pspec else f"unknown parameter {name!r}"
        if problem:
            raise CodegenError(f"{where}: {problem}")
    op = params.get("op")
    problems = op_problems(op, params, len(inputs))
    if problems:
        raise CodegenError(f"{where}: {problems[0]}")
    if op == "get_item":  # ints, slices, None and ... only (checked above)
        return f"    {var} = {inputs[0]}[{format_index(params['key'])}]"
    if op in ARITHMETIC:
        if params.get("constant") is None:
            args = list(inputs)
        else:
            args = [inputs[0], literal(params["constant"])]
            if params.get("constant_first"):
                args.reverse()
    elif op in LIST_OPS:
        args = ["[" + ", ".join(inputs) + "]"]
    else:
        args = [inputs[0]]
    if op == "reshape":
        args.append(literal(params["newshape"], tuples=True))
    for name in OP_PARAMS[op]:
        if name in ("constant", "constant_first", "newshape") or params.get(name) is None:
            continue
        pspec = spec.param(name)
        if pspec is not None and _same(params[name], pspec.default):
            continue
        args.append(f"{name}={literal(params[name], tuples=True)}")
    return call_code(f"{var} = keras.ops.{op}", args, "    ")


# --------------------------------------------------------------------------- the script


def generate(project: Any, weights: str | None = None) -> str:
    """The whole script for ``project``: ``build_model()``, ``load_data()``, ``main()``.

    Args:
        project: An :class:`engine.model.project.Project`.
        weights: File name (or path) of trained weights (``model.weights.h5`` or
            ``model.keras``); the script loads the file of that name from its own
            folder when it is there (``--weights`` overrides), so it reproduces
            the trained model.

    Returns:
        Python source text.

    Raises:
        CodegenError: Naming the node, layer type, parameter or data/training
            key that cannot be written.
    """
    model = model_code(project.graph, project.name, getattr(project, "base_dir", None))
    data = data_code(
        project.data or {},
        getattr(project, "base_dir", None),
        _input_shape(project.graph),
        (project.training or {}).get("loss"),
    )
    adapt = [
        n.id
        for n in project.graph.nodes.values()
        if n.type == "Normalization" and n.params.get("mean") is None
    ]
    main = main_code(
        project.training or {},
        project.name,
        weights,
        has_val=data.has_val,
        task=data.task,
        num_classes=data.num_classes,
        adapt=adapt,
        streamed=data.streamed,
    )
    blocks = [
        _header(project.name, project.description or "", weights),
        _imports(data.imports | main.imports),
        "\n".join(dedupe(data.constants + main.constants)) + "\n",
    ]
    functions = [model] + data.functions + main.functions
    text = "\n".join(blocks) + "\n\n" + "\n\n".join(f.strip("\n") + "\n" for f in functions)
    return text + '\n\nif __name__ == "__main__":\n    main()\n'


def _input_shape(graph: Graph) -> tuple | None:
    """The first Input's shape: what LayerLab resizes image data to (as engine.train.fit)."""
    for node in graph.nodes.values():
        if node.type == "Input" and isinstance(node.params.get("shape"), list):
            return tuple(node.params["shape"])
    return None


def _header(name: str, description: str, weights: str | None) -> str:
    text = [name or "Untitled", ""]
    for line in description.strip().splitlines():
        text += textwrap.wrap(line, 79, break_long_words=False, break_on_hyphens=False) or [""]
    if description.strip():
        text.append("")
    text += [
        "This LayerLab project as a plain Keras script: build_model() rebuilds the model",
        "layer by layer, load_data() loads and splits the project's data as LayerLab does,",
        "and main() trains the model and saves it.",
    ]
    if weights:
        text += [
            "",
            f"main() starts from the trained weights in {Path(weights).name} when that file lies",
            "next to this script (see --weights).",
        ]
    text += ["", "Usage: python <this file> [--epochs N] [--out model.keras]"]
    return docstring("\n".join(text)) + "\n"


def _imports(wanted: set[str]) -> str:
    """Import lines grouped as isort does: standard library, then third party."""

    def module(line: str) -> str:
        return line.split()[1]

    if "import keras" in wanted:
        wanted = wanted | {"from keras import layers"}
    std = sorted(
        (s for s in wanted if module(s) in ("argparse", "csv", "math", "pathlib")),
        key=lambda s: (s.startswith("from"), module(s)),
    )
    third = sorted(
        (s for s in wanted if s not in std), key=lambda s: (s.startswith("from"), module(s))
    )
    return "\n".join(std + [""] + third) + "\n"
