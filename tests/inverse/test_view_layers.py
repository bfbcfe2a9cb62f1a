"""The layer sweep: what a swap of every layer must give, the cutoff rule, the chart."""

import xml.etree.ElementTree as ET

import pytest

from ganfactory.inverse.view_layers import LayerSweepSettings, choose_cutoff, sweep_chart_svg, sweep_view_layers
from ganfactory.inverse.viewpoint import load_viewpoint_regressor
from ganfactory.label.interpreter import load_interpreter


def row(c, view, car, bg):
    return {"kind": "first", "layers": list(range(c)), "label": f"0-{c - 1}", "view": view, "car_colour": car,
            "background": bg, "layout": None}


def test_cutoff_rule():
    rows = [row(1, 0.2, 0.0, 0.0), row(2, 0.6, 0.1, 0.0), row(3, 0.9, 0.1, 0.2), row(4, 1.0, 0.5, 0.3),
            row(5, 1.0, 1.0, 1.0)]
    assert choose_cutoff(rows) == 3                     # margins .2 .5 .7 .5 0
    rows[3] = row(4, 1.0, 0.3, 0.3)                      # margin .7 too: the smaller cutoff wins the tie
    assert choose_cutoff(rows) == 3
    assert choose_cutoff([row(1, None, None, None), row(2, 0.5, None, 0.1)]) == 2


@pytest.fixture(scope="module")
def sweep(tiny_G, interp_dir):
    return sweep_view_layers(tiny_G, load_viewpoint_regressor("cars"), load_interpreter(interp_dir),
                             LayerSweepSettings(pairs=6, min_azimuth_gap_deg=0.0, min_colour_gap=0.0, batch_size=4),
                             progress=False)


def test_sweep_on_tiny(sweep, tiny_G):
    variants = sweep["variants"]
    assert [v["label"] for v in variants] == [f"0-{c - 1}" for c in range(1, tiny_G.num_ws + 1)] + [
        str(k) for k in range(tiny_G.num_ws)]
    everything = variants[tiny_G.num_ws - 1]
    assert everything["layers"] == list(range(tiny_G.num_ws))
    # all layers from the donor is the donor: every measure follows it (or ties, for identical pairs)
    for key in ("view", "car_colour", "background"):         # None: no pair has that region (a cluster labeller)
        assert everything[key] in (1.0, None), (key, everything)
    assert everything["view"] == 1.0
    assert everything["azimuth_error_to_donor_median_deg"] == 0.0
    assert 1 <= sweep["cutoff"] <= tiny_G.num_ws


def test_chart_is_svg(sweep):
    svg = sweep_chart_svg(sweep)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and f"cutoff {sweep['cutoff']}" in svg
    assert len(root.findall(".//{http://www.w3.org/2000/svg}polyline")) >= 4
