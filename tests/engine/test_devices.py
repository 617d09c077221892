"""The device list the training panel offers."""

from __future__ import annotations

import re

from engine.train.devices import list_devices


def test_list_devices_names_each_gpu_by_index():
    devices = list_devices()
    assert all(re.fullmatch(r"gpu:\d+", d) for d in devices)
    assert devices == [f"gpu:{i}" for i in range(len(devices))]
