"""Broken checkpoints and bad generate options end as one line and a non-zero exit, with nothing written.

``main`` is the CLI's entry point: it turns a GanfactoryError into one stderr line and exit status 2
and lets any other exception out, so a traceback would fail these tests.
"""

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from ganfactory.cli import main

FIX = Path(__file__).parents[1] / "fixtures" / "nvlabs-pickles"


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory) -> Path:
    """A small checkpoint of ours (16 px, with discriminator), imported from an NVlabs fixture."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny16"
    assert main(["import-checkpoint", str(FIX / "sg2ada_p4_gorig.pkl"), str(path)]) == 0
    return path


def _copy(ckpt_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "ckpt"
    shutil.copytree(ckpt_dir, dst)
    return dst


def _fails(capsys, *args, match: str) -> str:
    capsys.readouterr()
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and match in err, err
    return err


def _edit_config(ckpt: Path, edit) -> None:
    config = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps(edit(config)))


def test_truncated_generator_safetensors(ckpt_dir, tmp_path, capsys):
    ckpt = _copy(ckpt_dir, tmp_path)
    data = (ckpt / "generator.safetensors").read_bytes()
    for cut in (len(data) // 2, 7):  # inside the tensor data; inside the header's length field
        (ckpt / "generator.safetensors").write_bytes(data[:cut])
        _fails(capsys, "info", ckpt, match="generator.safetensors is not a readable safetensors file")
        _fails(capsys, "generate", "--ckpt", ckpt, "--seeds", "0-3", "--out", tmp_path / "out",
               match="damaged or truncated")
        assert not (tmp_path / "out").exists()


def test_zip_with_a_corrupted_member(ckpt_dir, tmp_path, capsys):
    archive = tmp_path / "ckpt.zip"
    assert main(["import-checkpoint", str(ckpt_dir), str(archive)]) == 0
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("generator.safetensors")
        assert info.compress_type == zipfile.ZIP_STORED
    raw = bytearray(archive.read_bytes())
    name_len, extra_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little"), \
        int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    raw[info.header_offset + 30 + name_len + extra_len + info.file_size // 2] ^= 0x10  # one bit of a weight
    archive.write_bytes(bytes(raw))
    _fails(capsys, "info", archive, match="cannot read generator.safetensors (Bad CRC-32")
    _fails(capsys, "generate", "--ckpt", archive, "--seeds", "0", "--out", tmp_path / "out", match="Bad CRC-32")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("edit, match", [
    (lambda c: {**c, "generator": {**c["generator"], "channel_max": "abc"}},
     "GeneratorConfig.channel_max must be int, got 'abc'"),
    (lambda c: {**c, "generator": {**c["generator"], "z_dim": 1.5}}, "GeneratorConfig.z_dim must be int"),
    (lambda c: {**c, "generator": {**c["generator"], "conv_clamp": "256"}}, "conv_clamp must be float | None"),
    (lambda c: {**c, "generator": {**c["generator"], "resample_filter": "1331"}}, "resample_filter must be"),
    (lambda c: {**c, "generator": {**c["generator"], "img_resolution": -16}}, "img_resolution must be"),
    (lambda c: {**c, "generator": {**c["generator"], "channel_max": 10 ** 9}}, "channel_max must be in"),
    (lambda c: {**c, "generator": ["z_dim", 16]}, "GeneratorConfig must be a JSON object"),
    (lambda c: {**c, "discriminator": {**c["discriminator"], "mbstd_num_channels": None}},
     "DiscriminatorConfig.mbstd_num_channels must be int"),
    (lambda c: {**c, "discriminator": {**c["discriminator"], "architecture": "unet"}}, "architecture must be one of"),
    (lambda c: {**c, "provenance": "nvlabs"}, "'provenance' must be an object"),
    (lambda c: [c], "config.json holds a JSON list, not an object"),
    (lambda c: "ganfactory", "config.json holds a JSON str"),
])
def test_config_with_wrong_types(ckpt_dir, tmp_path, capsys, edit, match):
    ckpt = _copy(ckpt_dir, tmp_path)
    _edit_config(ckpt, edit)
    _fails(capsys, "info", ckpt, match=match)
    _fails(capsys, "generate", "--ckpt", ckpt, "--seeds", "0", "--out", tmp_path / "out", match=match)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["/etc/passwd", "../../../../etc/passwd", "../..", "..", "sub/x.safetensors",
                                  "/etc/x.safetensors", "../generator.safetensors", ".hidden.safetensors", 7])
def test_files_outside_the_checkpoint_are_refused(ckpt_dir, tmp_path, capsys, name):
    ckpt = _copy(ckpt_dir, tmp_path)
    _edit_config(ckpt, lambda c: {**c, "files": [*c["files"], name]})
    match = "config.json 'files' must be a list of file names" if not isinstance(name, str) else \
        "not a .safetensors file inside the checkpoint"
    _fails(capsys, "info", ckpt, match=match)


def test_symlink_out_of_the_checkpoint_is_refused(ckpt_dir, tmp_path, capsys):
    ckpt = _copy(ckpt_dir, tmp_path)
    outside = tmp_path / "outside.safetensors"
    shutil.copy(ckpt / "generator.safetensors", outside)
    (ckpt / "extra.safetensors").symlink_to(outside)
    _edit_config(ckpt, lambda c: {**c, "files": [*c["files"], "extra.safetensors"]})
    _fails(capsys, "info", ckpt, match="extra.safetensors points outside the checkpoint")


def test_missing_member(ckpt_dir, tmp_path, capsys):
    ckpt = _copy(ckpt_dir, tmp_path)
    (ckpt / "discriminator.safetensors").unlink()
    _fails(capsys, "info", ckpt, match="incomplete checkpoint, discriminator.safetensors is missing")


@pytest.mark.parametrize("option, match", [
    (["--batch", "0"], "--batch must be at least 1"),
    (["--batch", "-3"], "--batch must be at least 1"),
    (["--trunc", "nan"], "--truncation-psi must be a finite number"),
    (["--trunc", "inf"], "--truncation-psi must be a finite number"),
    (["--trunc=-inf"], "--truncation-psi must be a finite number"),
])
def test_generate_options(ckpt_dir, tmp_path, capsys, option, match):
    _fails(capsys, "generate", "--ckpt", ckpt_dir, "--seeds", "0-3", *option, "--out", tmp_path / "out", match=match)
    assert not (tmp_path / "out").exists()


def test_generate_out_is_a_file(ckpt_dir, tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("keep me")
    _fails(capsys, "generate", "--ckpt", ckpt_dir, "--seeds", "0", "--out", target, match="not a directory")
    assert target.read_text() == "keep me"


def test_the_good_checkpoint_still_generates(ckpt_dir, tmp_path):
    assert main(["generate", "--ckpt", str(ckpt_dir), "--seeds", "0-1", "--trunc", "0.7", "--out",
                 str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["grid.png", "latents.npz", "seed0000.png",
                                                                     "seed0001.png"]


def test_config_claiming_a_huge_network_fails_without_allocating_it(ckpt_dir, tmp_path, capsys):
    ckpt = _copy(ckpt_dir, tmp_path)  # 8192 channels at every resolution: gigabytes if it were built
    _edit_config(ckpt, lambda c: {**c, "generator": {**c["generator"], "channel_max": 8192, "channel_base": 1 << 24}})
    err = _fails(capsys, "info", ckpt, match="weights do not match the config (synthesis.b")
    assert "the config implies [8192, 8192, 3, 3], the file holds [" in err and "config.json: " not in err
    for field, value in (("c_dim", 60_000), ("z_dim", 60_000), ("w_dim", 60_000), ("mapping_layers", 60_000),
                         ("layer_features", 60_000), ("img_resolution", 64), ("img_channels", 60_000)):
        _edit_config(ckpt, lambda c, f=field, v=value: {**c, "generator": {**c["generator"], f: v}})
        _fails(capsys, "info", ckpt, match="weights do not match the config")
        shutil.copy(ckpt_dir / "config.json", ckpt / "config.json")
    for field, value in (("c_dim", 60_000), ("mbstd_num_channels", 60_000),
                         ("channel_max", 8192), ("img_channels", 60_000)):
        _edit_config(ckpt, lambda c, f=field, v=value: {**c, "discriminator": {**c["discriminator"], f: v}})
        _fails(capsys, "info", ckpt, match="weights do not match the config")
        shutil.copy(ckpt_dir / "config.json", ckpt / "config.json")


def test_fuzzed_checkpoints_load_or_fail_in_one_line(ckpt_dir, tmp_path):
    """Truncated and bit-flipped copies of a zipped checkpoint and wrong-typed config values: each loads or
    raises CheckpointError (one line), never another exception."""
    import random

    from ganfactory.errors import CheckpointError
    from ganfactory.gan.io import load_checkpoint

    archive = tmp_path / "ckpt.zip"
    assert main(["import-checkpoint", str(ckpt_dir), str(archive)]) == 0
    data = archive.read_bytes()
    rng = random.Random(0)
    variants = [data[:n] for n in sorted(rng.sample(range(len(data)), 40))]
    for _ in range(40):
        flipped = bytearray(data)
        flipped[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        variants.append(bytes(flipped))
    config = json.loads((ckpt_dir / "config.json").read_text())
    bad_values = ["abc", [], None, -1, 1.5, True, 2 ** 40, float("nan")]
    configs = [{**config, net: {**config[net], field: v}}
               for net in ("generator", "discriminator") for field in config[net] for v in bad_values]
    configs += [{**config, key: v} for key in config for v in bad_values]
    outcomes = {"loaded": 0, "refused": 0}
    edited = _copy(ckpt_dir, tmp_path)
    for variant in variants + configs:
        if isinstance(variant, bytes):
            path = tmp_path / "variant.zip"
            path.write_bytes(variant)
        else:
            path = edited
            (path / "config.json").write_text(json.dumps(variant))
        try:
            load_checkpoint(path)
            outcomes["loaded"] += 1
        except CheckpointError as e:
            assert "\n" not in str(e), str(e)
            outcomes["refused"] += 1
    print(f"{sum(outcomes.values())} variants: {outcomes}")
    assert sum(outcomes.values()) == len(variants) + len(configs) > 350
    assert outcomes["refused"] > 350, outcomes
