"""Sampling from seeds, and regenerating every image exactly from its latents.npz."""

import numpy as np
import pytest
import torch
from PIL import Image

from ganfactory.errors import GanfactoryError
from ganfactory.gan.sampling import generate, image_grid, load_latents, parse_seeds, save_samples, to_uint8


def test_parse_seeds():
    assert parse_seeds("0-3,7, 10-11") == [0, 1, 2, 3, 7, 10, 11]
    assert parse_seeds("5") == [5]
    for bad in ["", "a", "3-1", "-2", "1,,2", "0-"]:
        with pytest.raises(GanfactoryError, match="bad seed list"):
            parse_seeds(bad)


@pytest.mark.parametrize("noise_mode", ["const", "random", "none"])
def test_images_regenerate_exactly_from_latents(tmp_path, tiny_ckpt, noise_mode):
    G = tiny_ckpt.generator
    s = generate(G, [0, 1, 2, 5, 9], truncation_psi=0.7, noise_mode=noise_mode, batch_size=2)
    paths = save_samples(s, tmp_path)
    ws, mode, noise, settings = load_latents(paths["latents"])
    assert mode == noise_mode and settings["truncation_psi"] == 0.7
    assert (noise is None) == (noise_mode != "random")
    with torch.no_grad():
        again = torch.cat([G.synthesis(ws[i:i + 2], noise_mode=mode,
                                       noise={k: v[i:i + 2] for k, v in noise.items()} if noise else None)
                           for i in range(0, 5, 2)])
    assert torch.equal(again, s.images)
    for seed, pixels in zip(s.seeds, to_uint8(again), strict=True):
        assert np.array_equal(np.asarray(Image.open(tmp_path / f"seed{seed:04d}.png")), pixels)


def test_random_noise_is_seeded_per_image(tiny_ckpt):
    a = generate(tiny_ckpt.generator, [3, 4], noise_mode="random")
    b = generate(tiny_ckpt.generator, [4], noise_mode="random")
    assert all(torch.equal(a.noise[k][1:], b.noise[k]) for k in b.noise)
    assert torch.allclose(a.images[1:], b.images, atol=1e-5)


def test_style_mixing_keeps_coarse_layers(tiny_ckpt):
    G = tiny_ckpt.generator
    plain = generate(G, [1, 2])
    mixed = generate(G, [1, 2], mix_seed=7, mix_cutoff=4)
    donor = generate(G, [7])
    assert torch.equal(mixed.ws[:, :4], plain.ws[:, :4])
    assert torch.equal(mixed.ws[:, 4:], donor.ws[:, 4:].expand(2, -1, -1))
    with pytest.raises(GanfactoryError, match="both --mix-seed and --mix-cutoff"):
        generate(G, [1], mix_seed=3)
    with pytest.raises(GanfactoryError, match="mix-cutoff must be in"):
        generate(G, [1], mix_seed=3, mix_cutoff=9)


def test_grid_layout():
    imgs = np.stack([np.full([2, 3, 3], i, np.uint8) for i in range(5)])
    grid = image_grid(imgs)
    assert grid.shape == (4, 9, 3)
    assert grid[0, 0, 0] == 0 and grid[0, 3, 0] == 1 and grid[2, 3, 0] == 4 and grid[2, 6, 0] == 0
