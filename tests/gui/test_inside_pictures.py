"""How the Inside tab colours activations: padding is not a unit."""

from __future__ import annotations

import numpy as np

from gui.training.inside_view import _card_image, _rgba, heat_overlay


def test_the_padding_of_a_dense_layers_heat_strip_is_transparent_not_the_lowest_colour():
    values = np.linspace(-1.0, 1.0, 16, dtype=np.float32)  # 16 units, one at the minimum
    grid = _card_image("dense", values)
    assert grid.size > 16  # wrapped into rows with room left over
    rgba = _rgba(grid)
    alpha = rgba[..., 3].ravel()
    assert (alpha[:16] == 255).all() and (alpha[16:] == 0).all()
    lowest = rgba.reshape(-1, 4)[0]
    assert lowest[3] == 255 and tuple(lowest[:3]) != (0, 0, 0)  # the unit at -1: opaque
    highest = rgba.reshape(-1, 4)[15]
    assert tuple(highest[:3]) != tuple(lowest[:3])


def test_fixed_levels_clip_values_outside_them():
    rgba = _rgba(np.array([[-5.0, 0.0, 0.5, 1.0, 9.0]], np.float32), (0.0, 1.0))
    colours = [tuple(c) for c in rgba[0, :, :3]]
    assert colours[0] == colours[1] and colours[3] == colours[4]
    assert len({colours[1], colours[2], colours[3]}) == 3


def test_grad_cams_overlay_lets_the_input_show_where_the_heat_is_low():
    heat = np.array([[0.0, 0.5, 1.0]], np.float32)
    alpha = heat_overlay(heat)[0, :, 3]
    assert alpha[0] < 64 < alpha[1] < alpha[2] and alpha[2] >= 200
