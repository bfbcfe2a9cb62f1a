"""DatasetGAN's sampling in ``gan.latent``: truncation on the coarse half of the style layers, per-image noise from
the seed (so a stored seed regenerates its image), and the store's round trip of both."""

import numpy as np
import torch

from ganfactory.annotate.store import AnnotationSet
from ganfactory.gan import load_generator
from ganfactory.gan.latent import Latent, coarse_cutoff, seeds_to_z, synthesize_latents
from ganfactory.gan.sampling import to_uint8
from ganfactory.schema import Schema


def test_coarse_truncation_moves_only_the_first_half_of_the_layers():
    torch.set_num_threads(1)
    G = load_generator("tiny32")
    cut = coarse_cutoff(G)
    assert cut == G.num_ws // 2 and 0 < cut < G.num_ws
    lat = Latent.from_seed(G, 7, 0.7, "const", cut)
    with torch.no_grad():
        w = G.mapping(seeds_to_z([7], G.z_dim), None)[0]
    expected = w.clone()
    expected[:cut] = G.w_avg + 0.7 * (w[:cut] - G.w_avg)
    assert torch.allclose(lat.ws, expected, atol=1e-6)
    assert torch.equal(lat.ws[cut:], w[cut:]) and not torch.allclose(lat.ws[:cut], w[:cut])
    assert lat.to_json() == {"kind": "seed", "seed": 7, "truncation_psi": 0.7, "noise_mode": "const",
                             "truncation_cutoff": cut}
    assert "truncation_cutoff" not in Latent.from_seed(G, 7, 0.7).to_json()      # old stores read unchanged


def test_per_image_noise_is_fresh_per_seed_and_reproducible(tmp_path):
    torch.set_num_threads(1)
    G = load_generator("tiny32")
    a, b, a2 = (Latent.from_seed(G, s, 0.7, "random", coarse_cutoff(G)) for s in (3, 4, 3))
    layer = next(iter(a.noise))
    assert torch.equal(a.noise[layer], a2.noise[layer]) and not torch.equal(a.noise[layer], b.noise[layer])
    # a seed latent stores only the seed; the store rebuilds ws, noise and the same image from it
    store = AnnotationSet.create(tmp_path / "s", Schema.from_names(["background", "x"], {"x": (255, 0, 0)}), "tiny32")
    image = to_uint8(synthesize_latents(G, [a]))[0]
    store.add("seed000003", a, image, np.zeros(image.shape[:2], np.uint8))
    again = store.latent("seed000003", G)
    assert again.truncation_cutoff == coarse_cutoff(G) and again.noise_mode == "random"
    assert np.array_equal(to_uint8(synthesize_latents(G, [again]))[0], image)
    assert not (tmp_path / "s" / "items" / "seed000003" / "latent.npz").exists()
    # the noise changes the image (so const noise for every sample is a real difference)
    const = Latent.from_seed(G, 3, 0.7, "const", coarse_cutoff(G))
    assert not np.array_equal(to_uint8(synthesize_latents(G, [const]))[0], image)
