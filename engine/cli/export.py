"""``layerlab export SOURCE --format F --out PATH [--no-verify] [--quantize Q] [--weights W]``.

Writes the model with :func:`engine.io.export.export` and prints the file, its size
and how the reload check went.

Exit status: 0 when written (and verified, unless ``--no-verify``), 1 when the check
or the converter failed, 2 when the source cannot be read.
"""

from __future__ import annotations

import sys
from typing import Any

from engine.human import human_size
from engine.io.export import ExportError, SourceError, export


def cli_export(args: Any) -> int:
    """``layerlab export SOURCE --format F --out PATH [--no-verify] [--quantize Q] [--weights W]``.

    Returns:
        0 when written (and verified), 1 when the check or the converter failed,
        2 when the source cannot be read.
    """
    try:
        result = export(
            args.source,
            args.format,
            args.out,
            verify=not getattr(args, "no_verify", False),
            quantize=getattr(args, "quantize", None) or "none",
            weights=getattr(args, "weights", None),
        )
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {result.path} ({human_size(result.size_bytes)})")
    if result.weights is not None:
        print(f"weights: {result.weights}")
    print(result.message)
    if getattr(args, "no_verify", False):
        return 0
    return 0 if result.verified else 1
