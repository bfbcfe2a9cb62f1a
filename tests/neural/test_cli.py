"""``ganfactory neural-render``: bad input is one line and exit 2 before any work; the shipped model turns a bundled
test render (the files it promises, one per azimuth asked)."""

import json
from importlib import resources

import pytest

from ganfactory.cli import main

IMAGE = str(resources.files("ganfactory") / "assets" / "cars64-demo" / "test" / "images" / "00000" / "03000013.png")


@pytest.mark.parametrize("argv, says", [
    ([], "give --input"),
    (["--input", "nope.png", "--out", "X"], "no such image"),
    (["--input", IMAGE, "--azimuth", "a,b", "--out", "X"], "--azimuth"),
    (["--input", IMAGE, "--model", "no-such-model", "--out", "X"], "not a mapping model"),
])
def test_bad_input_is_one_line(argv, says, tmp_path, capsys):
    argv = [str(tmp_path / a) if a == "X" else a for a in argv]
    assert main(["neural-render", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


def test_the_builtin_turns_a_test_render(tmp_path, capsys):
    assert main(["neural-render", "--input", IMAGE, "--azimuth", "0,90,275", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "neural-render.json").read_text())["images"][0]
    assert record["azimuths_deg"] == [0.0, 90.0, 275.0]
    assert sorted(p.name for p in (tmp_path / "03000013").iterdir()) == ["az000.png", "az090.png", "az275.png",
                                                                         "sheet.png"]
    from PIL import Image

    with Image.open(tmp_path / "03000013" / "sheet.png") as im:
        assert im.size == (64 * 5, 64)                        # input | mesh | three views
