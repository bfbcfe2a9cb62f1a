"""The ganfactory command, run as a user runs it."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image


def ganfactory(*args, check=True):
    res = subprocess.run([sys.executable, "-m", "ganfactory.cli", *map(str, args)], capture_output=True, text=True)
    if check and res.returncode != 0:
        raise AssertionError(f"exit {res.returncode}: {res.stderr}")
    return res


def test_import_info_generate(tmp_path, nvlabs_pickle, nvlabs_ref):
    ckpt = tmp_path / "tiny"
    out = ganfactory("import-checkpoint", nvlabs_pickle, ckpt).stdout
    assert "32x32 generator and discriminator from nvlabs" in out
    info = json.loads(ganfactory("info", ckpt, "--json").stdout)
    assert info["generator"]["num_ws"] == 8 and info["generator"]["resolution"] == 32
    assert info["provenance"]["repository"] == "stylegan2-ada-pytorch"
    assert info["generator"]["parameters"] == 263_987
    ganfactory("generate", "--ckpt", ckpt, "--seeds", "0-3", "--trunc", "0.7", "--out", tmp_path / "s")
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "grid.png", "latents.npz", "seed0000.png", "seed0001.png", "seed0002.png", "seed0003.png"]
    assert Image.open(tmp_path / "s" / "grid.png").size == (64, 64)
    with np.load(tmp_path / "s" / "latents.npz") as lat:
        assert np.array_equal(lat["ws"], nvlabs_ref["ws_psi07"])


def test_text_info_of_builtin():
    out = ganfactory("info", "tiny32").stdout
    assert "StyleGAN2 (skip), 32x32, num_ws 8" in out and "provenance     source: nvlabs" in out
    assert "training       " not in out                # NVlabs' pickle does not say how long it trained
    out = ganfactory("info", "cars64").stdout
    assert "StyleGAN2 (skip), 64x64, num_ws 10" in out and "training       182 kimg" in out


def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path):
    cases = [
        ("generate", "--ckpt", tmp_path / "missing.pkl", "--seeds", "0", "--out", tmp_path),
        ("generate", "--ckpt", "tiny32", "--seeds", "x", "--out", tmp_path),
        ("info", "cars9000"),
        ("import-checkpoint", __file__, tmp_path / "x"),
    ]
    for args in cases:
        res = ganfactory(*args, check=False)
        assert res.returncode == 2, args
        assert len(res.stderr.strip().splitlines()) == 1 and "error:" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
