"""Layered auto-layout for layer graphs (top-to-bottom flow, no Qt).

A small Sugiyama-style layout:

1. Longest-path layering: every node sits one level below its deepest input.
2. Edges that span several levels get invisible "dummy" points, one per level,
   so long skip connections (residual adds) route around the nodes.
3. A few barycentre sweeps (down, then up) order each level to reduce crossings;
   the ordering with the fewest crossings wins.
4. Horizontal placement: each node moves towards the mean of its neighbours,
   keeping order and spacing (isotonic regression), sweeping down and up.

Positions are node centres; ``y`` grows downward by :data:`LEVEL_SPACING` per level.
"""

from __future__ import annotations

from engine.model.graph import Graph

#: Vertical distance between two levels (node centres), in canvas pixels.
LEVEL_SPACING = 120.0
#: Horizontal distance between two neighbouring nodes' centres.
NODE_SPACING = 236.0
#: Horizontal room a dummy point (a wire passing through a level) takes.
DUMMY_SPACING = 60.0
#: How strongly a wire's dummy point holds its place against real nodes (0..1).
DUMMY_WEIGHT = 0.1
#: Number of barycentre sweeps (each one down and one up).
SWEEPS = 4


def layered_layout(graph: Graph) -> dict[str, tuple[float, float]]:
    """Compute tidy positions for every node of ``graph``.

    Args:
        graph: The graph to lay out; it is not changed. Cycles are tolerated
            (the edges that close a cycle are ignored for layering).

    Returns:
        ``{node_id: (x, y)}`` node centres. The first source node sits at
        ``x = 0``, the top level at ``y = 0``; each child lies below its inputs.
    """
    ids = list(graph.nodes)
    if not ids:
        return {}
    edges = [
        (e.source, e.target, e.port)
        for e in graph.edges
        if e.source in graph.nodes and e.target in graph.nodes and e.source != e.target
    ]
    edges = _drop_back_edges(ids, edges)
    level = _longest_path_levels(ids, edges)

    # Split long edges into one segment per level through dummy points.
    real = set(ids)
    parents: dict[str, list[str]] = {n: [] for n in ids}
    children: dict[str, list[str]] = {n: [] for n in ids}
    for src, dst, _port in sorted(edges, key=lambda e: (e[1], e[2])):
        chain = [src]
        for lv in range(level[src] + 1, level[dst]):
            dummy = f"\0{src}\0{dst}\0{lv}"
            level[dummy] = lv
            parents[dummy], children[dummy] = [], []
            chain.append(dummy)
        chain.append(dst)
        for a, b in zip(chain, chain[1:]):
            children[a].append(b)
            parents[b].append(a)

    depth = max(level.values()) + 1
    layers: list[list[str]] = [[] for _ in range(depth)]
    for n in _initial_order(ids, children, parents):
        layers[level[n]].append(n)

    layers = _reduce_crossings(layers, parents, children)
    xs = _place(layers, parents, children, real)

    first = next((n for n in layers[0] if n in real), ids[0])
    shift = xs[first]
    return {n: (round(xs[n] - shift, 1), level[n] * LEVEL_SPACING) for n in ids}


def _drop_back_edges(
    ids: list[str], edges: list[tuple[str, str, int]]
) -> list[tuple[str, str, int]]:
    """Edges without those that close a cycle (found by depth-first search)."""
    children: dict[str, list[tuple[str, str, int]]] = {n: [] for n in ids}
    for e in edges:
        children[e[0]].append(e)
    state: dict[str, int] = {}
    back: set[tuple[str, str, int]] = set()
    for start in ids:
        if start in state:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            n, i = stack.pop()
            kids = children[n]
            if i < len(kids):
                stack.append((n, i + 1))
                e = kids[i]
                if state.get(e[1]) == 1:
                    back.add(e)
                elif e[1] not in state:
                    state[e[1]] = 1
                    stack.append((e[1], 0))
            else:
                state[n] = 2
    return [e for e in edges if e not in back]


def _longest_path_levels(ids: list[str], edges: list[tuple[str, str, int]]) -> dict[str, int]:
    """Level of each node: 0 for sources, else one more than its deepest input."""
    indeg = {n: 0 for n in ids}
    kids: dict[str, list[str]] = {n: [] for n in ids}
    for src, dst, _ in edges:
        indeg[dst] += 1
        kids[src].append(dst)
    level = {n: 0 for n in ids}
    ready = [n for n in ids if indeg[n] == 0]
    while ready:
        n = ready.pop()
        for k in kids[n]:
            level[k] = max(level[k], level[n] + 1)
            indeg[k] -= 1
            if indeg[k] == 0:
                ready.append(k)
    # Pull sources down next to their first consumer (an extra Input of a
    # two-input model then sits beside the layer it feeds, not at the very top).
    for n in ids:
        if not any(dst == n for _, dst, _ in edges) and kids[n]:
            level[n] = min(level[k] for k in kids[n]) - 1
    return level


def _initial_order(
    ids: list[str], children: dict[str, list[str]], parents: dict[str, list[str]]
) -> list[str]:
    """Depth-first order from the sources, so branches start out grouped."""
    seen: set[str] = set()
    order: list[str] = []
    roots = [n for n in ids if not parents[n]] + ids
    for root in roots:
        stack = [root]
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            order.append(n)
            stack.extend(reversed(children[n]))
    return order


def _reduce_crossings(
    layers: list[list[str]], parents: dict[str, list[str]], children: dict[str, list[str]]
) -> list[list[str]]:
    best = [list(layer) for layer in layers]
    best_crossings = _crossings(best, children)
    current = [list(layer) for layer in layers]
    for _ in range(SWEEPS):
        if best_crossings == 0:
            break
        for i in range(1, len(current)):
            current[i] = _barycentre_sort(current[i], current[i - 1], parents)
        for i in range(len(current) - 2, -1, -1):
            current[i] = _barycentre_sort(current[i], current[i + 1], children)
        crossings = _crossings(current, children)
        if crossings < best_crossings:
            best, best_crossings = [list(layer) for layer in current], crossings
    return best


def _barycentre_sort(
    layer: list[str], fixed: list[str], neighbours: dict[str, list[str]]
) -> list[str]:
    """``layer`` sorted by the mean index of each node's neighbours in ``fixed``."""
    index = {n: i for i, n in enumerate(fixed)}
    keys: dict[str, float] = {}
    for i, n in enumerate(layer):
        near = [index[m] for m in neighbours[n] if m in index]
        keys[n] = sum(near) / len(near) if near else i * len(fixed) / max(len(layer), 1)
    return sorted(layer, key=lambda n: keys[n])


def _crossings(layers: list[list[str]], children: dict[str, list[str]]) -> int:
    """Number of wire crossings between neighbouring levels."""
    total = 0
    for upper, lower in zip(layers, layers[1:]):
        below = {n: i for i, n in enumerate(lower)}
        segs = sorted((i, below[k]) for i, n in enumerate(upper) for k in children[n] if k in below)
        # Count inversions of the lower ends (merge sort), ties don't cross.
        total += _inversions([b for _, b in segs])
    return total


def _inversions(values: list[int]) -> int:
    if len(values) < 2:
        return 0
    mid = len(values) // 2
    left, right = values[:mid], values[mid:]
    count = _inversions(left) + _inversions(right)
    left.sort()
    right.sort()
    j = 0
    for v in left:
        while j < len(right) and right[j] < v:
            j += 1
        count += j
    return count


def _place(
    layers: list[list[str]],
    parents: dict[str, list[str]],
    children: dict[str, list[str]],
    real: set[str],
) -> dict[str, float]:
    """Horizontal centres: ordered, spaced, and pulled towards neighbours."""
    xs: dict[str, float] = {}
    for layer in layers:
        gaps = _gaps(layer, real)
        width = sum(gaps)
        x = -width / 2
        for n, gap in zip(layer, [0.0] + gaps):
            x += gap
            xs[n] = x
    for _ in range(SWEEPS):
        for layer in layers[1:]:
            _align(layer, xs, parents, real)
        for layer in reversed(layers[:-1]):
            _align(layer, xs, children, real)
    for layer in layers[1:]:
        _align(layer, xs, parents, real)
    return xs


def _gaps(layer: list[str], real: set[str]) -> list[float]:
    """Minimum distance between each node and the one before it."""

    def half(n: str) -> float:
        return NODE_SPACING / 2 if n in real else DUMMY_SPACING / 2

    return [half(a) + half(b) for a, b in zip(layer, layer[1:])]


def _align(
    layer: list[str], xs: dict[str, float], neighbours: dict[str, list[str]], real: set[str]
) -> None:
    """Move nodes of ``layer`` to their neighbours' mean x, keeping order and gaps."""
    if not layer:
        return
    wanted = []
    for n in layer:
        near = [(xs[m], 1.0 if m in real else DUMMY_WEIGHT) for m in neighbours[n]]
        total = sum(w for _, w in near)
        wanted.append(sum(x * w for x, w in near) / total if near else xs[n])
    offsets = [0.0]
    for gap in _gaps(layer, real):
        offsets.append(offsets[-1] + gap)
    # x_i = y_i + offset_i with y non-decreasing: isotonic regression of wanted - offset.
    weights = [1.0 if n in real else DUMMY_WEIGHT for n in layer]
    fitted = _isotonic([w - o for w, o in zip(wanted, offsets)], weights)
    for n, y, o in zip(layer, fitted, offsets):
        xs[n] = y + o


def _isotonic(values: list[float], weights: list[float]) -> list[float]:
    """The non-decreasing sequence closest (weighted least squares) to ``values``."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for v, w in zip(values, weights):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out: list[float] = []
    for mean, _weight, count in blocks:
        out.extend([mean] * int(count))
    return out
