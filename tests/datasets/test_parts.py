"""The name rules and overrides of the part table, on names from the TORCS cars."""

import pytest
import torch

from ganfactory.datasets.parts import (
    CARS8,
    CARS13,
    class_names,
    classify_body_object,
    classify_wheel_object,
    coarse_from_fine,
)

EXAMPLES = [
    ("WIPER_s_5", "trim"), ("WIGRILL_s_0", "trim"), ("LICENSEPLAT_s_1", "plate"), ("LICENCEPLAT", "plate"),
    ("REARENDLICE", "plate"), ("REARMIRROR", "mirror"), ("MIRRORGLASS", "mirror"), ("WIFRONT_s_0", "window"),
    ("WI02FRONTRI_s_0", "window"), ("WI", "window"), ("REARBUMPERT_s_0", "body"), ("FRONTWINGTO_s_0", "wing"),
    ("5WINFFINRIG_s_0", "wing"), ("REARSPOILERSIDE", "wing"), ("EXHAUSTPIPE", "trim"),
    ("FRONTAIRINL_s_0", "trim"), ("REARAITOUTL", "trim"), ("BRAKECOOLIN", "trim"), ("ANTENNA_s_4", "trim"),
    ("HBFRONT", "trim"), ("REAREXHAUSTPLATE", "trim"), ("DRIVERPART1_s_4", "interior"),
    ("STEERINGWHE_s_2", "interior"), ("VOLANT", "interior"), ("COCKPITPLATE", "interior"),
    ("GIRTHS_s_1", "interior"), ("BOTTOM_s_0", "underbody"), ("CARBODYWHEE_s_3", "underbody"),
    ("DIFFUSOR", "underbody"), ("SIDESKIRTTOP", "underbody"), ("CARBODYINSI_s_0", "interior"),
    ("INNERFRAME_s_0", "interior"), ("FRONTENGINE", "interior"), ("OBJECT", "interior"), ("DISK", "interior"),
    ("FRONTPANELB", "body"), ("CARBODY_s_3", "body"), ("MESH", "body"), ("NONAME_s_20", "body"),
]


@pytest.mark.parametrize(("name", "expected"), EXAMPLES)
def test_body_name_rules(name, expected):
    assert classify_body_object(name) == expected


@pytest.mark.parametrize("name", ["23FRONTLIGH_s_1", "LIGHTBULP_s_1", "INNERFRONTL", "WIFRONTLIGH_s_1",
                                  "WIREARENDBR", "REARENDBRAK", "ADDITIONALF", "REARLIGHTBACKPLATE",
                                  "FRONTLIGHTBULBS", "REARENDLIGH"])
def test_lamps_come_before_windows_and_split_by_the_centroid(name):
    assert classify_body_object(name) == "lamp"
    assert classify_body_object(name, centroid_x=1.8) == "headlight"
    assert classify_body_object(name, centroid_x=-2.1) == "taillight"


def test_overrides_apply_to_their_car_only():
    assert classify_body_object("CARBODY_s_3", "car2-trb1") == "mirror"
    assert classify_body_object("CARBODY_s_3", "car3-trb1") == "body"
    assert classify_body_object("MESH_s_1", "car1-trb1") == "wing"
    assert classify_body_object("BODYCOCKPIT_s_0", "car3-trb1") == "body"
    assert classify_body_object("BODYCOCKPIT_s_0", "car4-trb1") == "interior"
    assert classify_body_object("REAR_s_0", "155-DTM") == "wing"
    assert classify_body_object("REAR_s_4", "acura-nsx-sz") == "wing"
    assert classify_body_object("REAR", "car6-trb1") == "body"
    for car in ("155-DTM", "acura-nsx-sz", "buggy"):
        assert classify_body_object("BOTTOM_s_0", car) == "body"
    assert classify_body_object("BOTTOM_s_0", "car1-trb1") == "underbody"
    assert classify_body_object("CONSTOP_s_0", "car6-trb1") == "interior"


def test_wheel_rules():
    assert classify_wheel_object("TIRE_s_1") == "tyre"
    for name in ("RIMCENTER_s_0", "WIRIM_s_0", "RIMTOP_s_1", "DRIVINGCOLL_s_0", "WI_s_0"):
        assert classify_wheel_object(name) == "rim"


def test_class_sets_and_the_coarse_mapping():
    assert len(CARS13) == 13 and len(CARS8) == 8 and CARS13[0] == CARS8[0] == "background"
    lut = coarse_from_fine()
    fine = torch.tensor([CARS13.index(n) for n in ("wing", "headlight", "taillight", "tyre", "rim",
                                                   "trim", "interior", "window", "background")])
    assert [CARS8[i] for i in lut[fine]] == ["body", "light", "light", "wheel", "wheel", "other", "other",
                                             "window", "background"]
    assert class_names("cars-8") == CARS8
    with pytest.raises(ValueError, match="cars-13"):
        class_names("cars-9")
