"""The generated script's CSV and .npy readers (engine/codegen/data_table.py) read what
LayerLab reads: the same numbers, one-hot columns, missing-value policies and targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.codegen.data import _ENCODE
from engine.codegen.data_table import csv_code, is_npy_pair, npy_code
from engine.codegen.text import ScriptPart
from engine.data.sources import load_csv, load_npz

TEXT = """\
\ufeffsize; colour ;weight;kind
1.5;red;7;cat
3;blue;;dog
4.5; green ;3;cat
6;NA;10;dog
7.5;red;6;cat
9;blue;2;dog
10.5;green;9;cat
12;red;1;dog
"""


def run_reader(section: dict, folder: Path, code) -> dict:
    part = ScriptPart()
    line = code(section, f"DATA_DIR / {section['path']!r}", part)
    source = "\n".join(
        [*sorted(part.imports), "import numpy as np", "from pathlib import Path", _ENCODE]
        + part.functions
        + ["def load():", f"    DATA_DIR = Path({str(folder)!r})", line, "    return locals()"]
    )
    scope: dict = {}
    exec(compile(source, "generated", "exec"), scope)
    return scope["load"]()


@pytest.mark.parametrize("missing", ["drop", "mean"])
def test_the_scripts_csv_reader_reads_what_layerlab_reads(tmp_path, missing):
    (tmp_path / "pets.csv").write_text(TEXT, encoding="utf-8")
    section = {"source": "csv", "path": "pets.csv", "categorical": ["colour"], "missing": missing}
    ours = load_csv(tmp_path / "pets.csv", section)
    theirs = run_reader(section, tmp_path, csv_code)
    np.testing.assert_allclose(theirs["x"], ours.x, rtol=1e-6)
    assert theirs["x"].dtype == np.float32
    np.testing.assert_array_equal(theirs["y"], ours.y)
    assert theirs["onehot"] == ours.onehot_columns
    regression = {**section, "target": "weight", "features": ["size"], "task": "regression"}
    regression.pop("categorical")
    if missing == "mean":
        with pytest.raises(ValueError, match="target is missing"):
            run_reader(regression, tmp_path, csv_code)
        return
    ours = load_csv(tmp_path / "pets.csv", regression)
    theirs = run_reader(regression, tmp_path, csv_code)
    np.testing.assert_allclose(theirs["x"], ours.x)
    np.testing.assert_allclose(theirs["y"], ours.y)


def test_the_scripts_csv_reader_refuses_a_missing_value_by_default(tmp_path):
    (tmp_path / "pets.csv").write_text(TEXT, encoding="utf-8")
    with pytest.raises(ValueError, match="data row 2 has a missing value"):
        run_reader({"source": "csv", "path": "pets.csv"}, tmp_path, csv_code)


def test_the_scripts_npy_reader_memory_maps_the_inputs(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.eye(2)[np.arange(20) % 2])
    section = {"source": "npz", "path": "x.npy", "y": "y.npy"}
    assert is_npy_pair(section) and not is_npy_pair({"source": "npz", "path": "d.npz"})
    ours = load_npz(tmp_path / "x.npy", section)
    theirs = run_reader(section, tmp_path, npy_code)
    assert isinstance(theirs["x"], np.memmap)
    np.testing.assert_array_equal(theirs["x"], ours.x)
    np.testing.assert_array_equal(theirs["y"], ours.y)
