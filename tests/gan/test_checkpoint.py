"""Our checkpoint format: config.json + safetensors, as a directory or a zip."""

import json
import zipfile

import pytest
import torch

from ganfactory.errors import CheckpointError
from ganfactory.gan import Checkpoint, load_checkpoint, load_generator, save_checkpoint


def _same_modules(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("name", ["ckpt", "ckpt.zip"])
def test_round_trip(tmp_path, tiny_ckpt, name):
    path = save_checkpoint(tiny_ckpt, tmp_path / name)
    back = load_checkpoint(path)
    assert back.generator.config == tiny_ckpt.generator.config
    assert back.discriminator.config == tiny_ckpt.discriminator.config
    assert _same_modules(back.generator, tiny_ckpt.generator)
    assert _same_modules(back.discriminator, tiny_ckpt.discriminator)
    assert back.provenance == tiny_ckpt.provenance
    ws = tiny_ckpt.generator.mapping(torch.randn(2, 64, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        assert torch.equal(back.generator.synthesis(ws), tiny_ckpt.generator.synthesis(ws))
    assert _same_modules(load_generator(path), tiny_ckpt.generator)


def test_contains_no_pickle(tmp_path, tiny_ckpt):
    path = save_checkpoint(tiny_ckpt, tmp_path / "c.zip")
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
        assert names == ["config.json", "discriminator.safetensors", "generator.safetensors"]
        for n in names:
            assert b"\x80\x04\x95" not in zf.read(n)[:16]  # no pickle stream header


def test_extra_tensors_and_overwrite(tmp_path, tiny_ckpt):
    extra = {"G_train": {"w": torch.arange(6.0).reshape(2, 3)}}
    ck = Checkpoint(generator=tiny_ckpt.generator, tensors=extra, extra={"kimg": 12.5})
    path = save_checkpoint(ck, tmp_path / "c")
    save_checkpoint(ck, path)  # replacing an existing checkpoint directory works
    back = load_checkpoint(path)
    assert back.discriminator is None and back.extra == {"kimg": 12.5}
    assert torch.equal(back.tensors["G_train"]["w"], extra["G_train"]["w"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["c"]  # no temporary leftovers


def test_bad_checkpoints_say_what_is_wrong(tmp_path, tiny_ckpt):
    path = save_checkpoint(tiny_ckpt, tmp_path / "c")
    cfg = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**cfg, "format_version": 99}))
    with pytest.raises(CheckpointError, match="newer than this ganfactory reads"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps({**cfg, "format": "other"}))
    with pytest.raises(CheckpointError, match="format is 'other'"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps({**cfg, "generator": {**cfg["generator"], "channel_max": 32}}))
    with pytest.raises(CheckpointError, match="weights do not match the config"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps({**cfg, "generator": {**cfg["generator"], "colour": 1}}))
    with pytest.raises(CheckpointError, match="unknown GeneratorConfig fields \\['colour'\\]"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps(cfg))
    (path / "generator.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "absent")
