"""The engine tests' garbage collector setting.

These tests build thousands of Keras models, whose layers hold reference cycles. With
Python's default thresholds (700, 10, 10) the objects of a test's models live through a
few young collections, get promoted, and full collections then scan the whole heap
(~600,000 objects with TensorFlow loaded) again and again: 41 full passes, 45 s of a
370-480 s run of the first 30 engine test files here, single pauses up to 24 s (a test
of a tiny model once took 44 s in the full suite). Collecting the youngest generation every
20,000 allocations lets them die young (see docs/benchmarks.md, "Test suite time").
Only while an engine test module runs; the GUI tests and the product keep the defaults.
"""

from __future__ import annotations

import gc

import pytest

THRESHOLDS = (20_000, 10, 10)


@pytest.fixture(autouse=True, scope="module")
def _fewer_garbage_collections():
    before = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    yield
    gc.set_threshold(*before)
