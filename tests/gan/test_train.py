"""Training: a few real iterations on a tiny dataset; exact resume; two processes equal one."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ganfactory.errors import GanfactoryError
from ganfactory.gan import load_checkpoint
from ganfactory.gan.data import load_images
from ganfactory.gan.io import save_checkpoint

TINY = ["--preset", "cpu32", "--z-dim", "16", "--w-dim", "16", "--channel-base", "128", "--channel-max", "16",
        "--batch", "4", "--r1-interval", "4", "--metric-generated", "16", "--metric-real", "16", "--no-progress"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """24 16x16 images of coloured squares on black."""
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i in range(24):
        a = np.zeros((16, 16, 3), np.uint8)
        y, x = rng.integers(0, 10, 2)
        a[y:y + 6, x:x + 6] = rng.integers(0, 255, 3)
        Image.fromarray(a).save(root / f"{i:03d}.png")
    return root


def train_gan(*args, torchrun=0):
    cmd = [sys.executable, "-m", "ganfactory.cli", "train-gan", *map(str, args)]
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}",
               "-m", "ganfactory.cli", "train-gan", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def stats(run):
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


def test_train_writes_snapshots_samples_and_logs(images, tmp_path):
    out = tmp_path / "run"
    train_gan("--data", images, "--out", out, "--kimg", "0.024", "--snapshot-kimg", "0.012", *TINY)
    rows = stats(out)
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert all(np.isfinite([r["loss_G"], r["loss_D"]]).all() for r in rows)
    assert "r1_penalty" in rows[0] and "r1_penalty" in rows[4] and "r1_penalty" not in rows[1]
    snaps = sorted(p.name for p in (out / "snapshots").iterdir())
    assert snaps == ["snapshot-000000.012kimg", "snapshot-000000.024kimg"]
    assert json.loads((out / "latest.json").read_text())["snapshot"] == "snapshots/snapshot-000000.024kimg"
    ck = load_checkpoint(out / "snapshots" / snaps[-1])
    assert ck.generator.img_resolution == 16 and ck.extra["kimg"] == 0.024
    cfg = ck.extra["train_config"]
    assert cfg["r1_gamma"] == 0.01 and cfg["ema_kimg"] == 4 * 10 / 32  # the preset's gamma, NVlabs' auto ema
    assert len(list((out / "samples").iterdir())) == 2 and (out / "reals.png").is_file()
    assert len((out / "log.txt").read_text().splitlines()) == 2
    kids = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [k["snapshot"] for k in kids] == [f"snapshots/{s}" for s in snaps]
    best = json.loads((out / "best.json").read_text())
    assert best["kid"] == min(k["kid"] for k in kids)

    # a snapshot exported for shipping: the same networks (the training G too), none of the other resume state
    shipped = tmp_path / "shipped"
    res = subprocess.run([sys.executable, "-m", "ganfactory.cli", "import-checkpoint", "--weights-only",
                          out / "snapshots" / snaps[-1], shipped], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in shipped.iterdir()) == ["G_train.safetensors", "config.json",
                                                          "discriminator.safetensors", "generator.safetensors"]
    light = load_checkpoint(shipped)
    assert list(light.tensors) == ["G_train"] and "optimizer_param_groups" not in light.extra
    assert light.extra["kimg"] == 0.024
    assert all(torch.equal(v, light.tensors["G_train"][k]) for k, v in ck.tensors["G_train"].items())
    for a, b in ((ck.generator, light.generator), (ck.discriminator, light.discriminator)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_continues_exactly(images, tmp_path):
    common = ["--data", images, "--kimg", "0.040", "--snapshot-kimg", "0.020", "--mirror", *TINY]
    train_gan("--out", tmp_path / "a", *common)
    train_gan("--out", tmp_path / "b", *common[:2], "--kimg", "0.020", *common[4:])
    train_gan("--out", tmp_path / "b", *common, "--resume")
    a, b = stats(tmp_path / "a"), stats(tmp_path / "b")
    assert [r["step"] for r in b] == list(range(1, 11))
    for ra, rb in zip(a, b, strict=True):
        assert {k: v for k, v in ra.items() if k != "sec_per_kimg"} == {k: v for k, v in rb.items()
                                                                         if k != "sec_per_kimg"}
    ga = load_checkpoint(tmp_path / "a" / "snapshots" / "snapshot-000000.040kimg")
    gb = load_checkpoint(tmp_path / "b" / "snapshots" / "snapshot-000000.040kimg")
    for (k, va), vb in zip(ga.generator.state_dict().items(), gb.generator.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k

    # a snapshot kept outside its run (committed, as checkpoints/cars64-latest is) resumes exactly in a new run
    kept = tmp_path / "kept"
    shutil.copytree(tmp_path / "a" / "snapshots" / "snapshot-000000.020kimg", kept)
    train_gan("--out", tmp_path / "c", *common, "--resume", kept)
    c = stats(tmp_path / "c")
    assert [r["step"] for r in c] == list(range(6, 11))
    for ra, rc in zip(a[5:], c, strict=True):
        assert {k: v for k, v in ra.items() if k != "sec_per_kimg"} == {k: v for k, v in rc.items()
                                                                         if k != "sec_per_kimg"}


def test_two_processes_equal_one(images, tmp_path):
    # Minibatch-stddev groups samples within each process, so it is off for an exact comparison.
    common = ["--data", images, "--kimg", "0.024", "--snapshot-kimg", "0.024", *TINY, "--batch", "8",
              "--mbstd-num-channels", "0"]
    train_gan("--out", tmp_path / "one", *common)
    train_gan("--out", tmp_path / "two", *common, torchrun=2)
    one, two = stats(tmp_path / "one"), stats(tmp_path / "two")
    assert len(one) == len(two) == 3
    for r1, r2 in zip(one, two, strict=True):
        for k in ("loss_G", "loss_D", "D_real", "D_fake"):
            assert r1[k] == pytest.approx(r2[k], rel=1e-4, abs=1e-5), (k, r1, r2)
    g1 = load_checkpoint(tmp_path / "one" / "snapshots" / "snapshot-000000.024kimg").generator.state_dict()
    g2 = load_checkpoint(tmp_path / "two" / "snapshots" / "snapshot-000000.024kimg").generator.state_dict()
    for k in g1:
        assert torch.allclose(g1[k], g2[k], rtol=1e-4, atol=1e-5), k


def test_data_errors(tmp_path):
    (tmp_path / "mixed").mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "mixed" / "a.png")
    Image.new("RGB", (32, 32)).save(tmp_path / "mixed" / "b.png")
    with pytest.raises(GanfactoryError, match="mixed image sizes"):
        load_images(tmp_path / "mixed", progress=False)
    (tmp_path / "odd").mkdir()
    Image.new("RGB", (24, 24)).save(tmp_path / "odd" / "a.png")
    with pytest.raises(GanfactoryError, match="power-of-two"):
        load_images(tmp_path / "odd", progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"not a png")
    with pytest.raises(GanfactoryError, match="unreadable image"):
        load_images(tmp_path / "bad", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanfactoryError, match="no images found"):
        load_images(tmp_path / "empty", progress=False)


def test_zip_and_labeled_dataset_inputs(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "imgs.zip", "w") as zf:
        for i in range(3):
            img = Image.new("RGB", (8, 8), (i * 50, 0, 0))
            path = tmp_path / f"{i}.png"
            img.save(path)
            zf.write(path, f"sub/{i}.png")
    x = load_images(tmp_path / "imgs.zip", progress=False)
    assert x.shape == (3, 3, 8, 8) and x[2, 0, 0, 0] == 100
    ds = tmp_path / "ds"
    (ds / "images").mkdir(parents=True)
    (ds / "labels").mkdir()
    (ds / "dataset.json").write_text("{}")
    Image.new("RGB", (8, 8)).save(ds / "images" / "000.png")
    Image.new("L", (8, 8)).save(ds / "labels" / "000.png")
    assert load_images(ds, progress=False).shape == (1, 3, 8, 8)


def test_sigint_writes_a_snapshot_and_resume_picks_it_up(images, tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "ganfactory.cli", "train-gan", "--data", str(images), "--out", str(out),
           "--kimg", "100", "--snapshot-kimg", "50", *TINY]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    def steps_done():
        return len((out / "stats.jsonl").read_text().splitlines()) if (out / "stats.jsonl").is_file() else 0

    deadline = time.time() + 120
    while steps_done() < 2:
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-2000:]
    assert "train-gan: interrupted at" in stdout
    steps = len((out / "stats.jsonl").read_text().splitlines())
    latest = json.loads((out / "latest.json").read_text())
    assert latest["kimg"] == steps * 4 / 1000  # the snapshot is at the step where it stopped
    train_gan("--data", images, "--out", out, "--kimg", f"{(steps + 2) * 4 / 1000}", "--snapshot-kimg", "50",
              *TINY, "--resume")
    assert [r["step"] for r in stats(out)] == list(range(1, steps + 3))


def test_style_mixing_and_path_length_steps_run(tmp_path):
    from ganfactory.gan.train import TrainConfig, Trainer

    imgs = (torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    cfg = TrainConfig(data="unused", out=str(tmp_path), preset="cpu32", style_mixing=1.0, pl_weight=2.0,
                      pl_interval=1, z_dim=16, w_dim=16, channel_base=128, channel_max=16, batch=4,
                      metric_generated=0)
    trainer = Trainer(cfg, imgs, progress=False)
    before = trainer.G.state_dict()["synthesis.b16.conv1.weight"].clone()
    rows = [trainer.step() for _ in range(2)]
    assert all("pl_penalty" in r and np.isfinite(list(r.values())).all() for r in rows)
    assert float(trainer.pl_mean) > 0 and trainer.skipped_steps == 0
    assert not torch.equal(trainer.G.state_dict()["synthesis.b16.conv1.weight"], before)


def _tiny_trainer(out, resume=None, **knobs):
    """A 16 px Trainer (batch 4, R1 every 4 steps, DiffAugment, mirror) on 8 random images."""
    from ganfactory.gan.train import TrainConfig, Trainer

    imgs = (torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    cfg = TrainConfig(data="unused", out=str(out), preset="cpu32", z_dim=16, w_dim=16, channel_base=128,
                      channel_max=16, batch=4, r1_interval=4, mirror=True, kimg=0.020, snapshot_kimg=0.020,
                      metric_generated=0, sample_seeds=4, **knobs)
    return Trainer(cfg, imgs, resume=resume, progress=False)


@pytest.mark.parametrize("knobs", [{"channels_last": True}, {"threads": 1}], ids=["channels_last", "threads1"])
def test_speed_knobs_keep_the_loss_trajectory(tmp_path, knobs):
    threads = torch.get_num_threads()
    _tiny_trainer(tmp_path / "plain", channels_last=False).run()
    _tiny_trainer(tmp_path / "fast", **knobs).run()
    assert torch.get_num_threads() == threads  # run() restores the caller's setting
    plain, fast = stats(tmp_path / "plain"), stats(tmp_path / "fast")
    assert [r["step"] for r in fast] == list(range(1, 6)) and "r1_penalty" in fast[4]
    for a, b in zip(plain, fast, strict=True):
        assert a.keys() == b.keys()
        for k in a.keys() - {"kimg", "step", "sec_per_kimg"}:
            assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-4), (k, a, b)
    if knobs.get("channels_last"):  # its snapshot resumes like any other
        resumed = _tiny_trainer(tmp_path / "fast", resume=tmp_path / "fast", **knobs)
        weight = resumed.G.synthesis.b16.conv1.weight
        assert resumed.step_index == 5 and weight.is_contiguous(memory_format=torch.channels_last)
        assert np.isfinite(list(resumed.step().values())).all()


def test_threads_must_be_positive():
    from ganfactory.gan.train import TrainConfig

    with pytest.raises(GanfactoryError, match="--threads must be at least 1"):
        TrainConfig(data="x", out="y", threads=0)


def test_init_from_starts_at_the_checkpoint_weights(images, tmp_path):
    """--init-from a shipped (weights-only) checkpoint: step 0 draws what the checkpoint draws; kimg continues."""
    from ganfactory.gan.sampling import seeds_to_z

    base = ["--data", images, "--snapshot-kimg", "0.012", *TINY]
    train_gan("--out", tmp_path / "a", "--kimg", "0.012", *base)
    shipped = tmp_path / "shipped"
    res = subprocess.run([sys.executable, "-m", "ganfactory.cli", "import-checkpoint", "--weights-only",
                          tmp_path / "a" / "snapshots" / "snapshot-000000.012kimg", shipped],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    src = load_checkpoint(shipped)

    trainer = _tiny_trainer(tmp_path / "b", init_from=str(shipped))
    assert trainer.nimg == 12 and trainer.step_index == 0
    for a, b in ((src.generator.state_dict(), trainer.G_ema), (src.tensors["G_train"], trainer.G),
                 (src.discriminator.state_dict(), trainer.D)):
        got = b.state_dict()
        assert a.keys() == got.keys() and all(torch.equal(a[k], got[k]) for k in a)
    assert not all(torch.equal(v, src.tensors["G_train"][k]) for k, v in src.generator.state_dict().items())
    # a checkpoint without the training G (an older shipped one): G starts as G_ema
    older = save_checkpoint(dataclasses.replace(src, tensors={}), tmp_path / "older")
    trainer = _tiny_trainer(tmp_path / "b2", init_from=str(older))
    want, got = src.generator.state_dict(), trainer.G.state_dict()
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    z = seeds_to_z([0, 1, 2], 16)
    with torch.no_grad():
        want = src.generator.synthesis(src.generator.mapping(z), noise_mode="const")
        got = trainer.G_ema.synthesis(trainer.G_ema.mapping(z), noise_mode="const")
    assert torch.equal(want, got)

    # the CLI: the run's kimg axis continues from the checkpoint's
    train_gan("--out", tmp_path / "c", "--kimg", "0.024", "--init-from", shipped, *base)
    assert [r["step"] for r in stats(tmp_path / "c")] == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "c" / "snapshots").iterdir()) == ["snapshot-000000.024kimg"]


def test_init_from_refuses_another_architecture(images, tmp_path):
    train_gan("--out", tmp_path / "a", "--data", images, "--kimg", "0.004", "--snapshot-kimg", "0.004", *TINY,
              "--channel-max", "8")
    with pytest.raises(GanfactoryError, match="channel_max 8 \\(run: 16\\)"):
        _tiny_trainer(tmp_path / "b", init_from=str(tmp_path / "a" / "snapshots" / "snapshot-000000.004kimg"))
