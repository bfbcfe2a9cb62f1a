"""The mapping network's promises: outputs are convex combinations of the basis ws, the camera is continuous across
0/360 degrees, a dimension owned by one property follows only that property, the background code reads exactly what
lies outside the car, and training resumes to the same bytes."""

import math
import shutil

import pytest
import torch
from safetensors.torch import load_file

from ganfactory.neural import MappingConfig, NeuralMapping, PropertyCodes
from ganfactory.neural.codes import background_code

CONFIG = MappingConfig(num_ws=6, w_dim=8, view_layers=2, verts=10, bases=5, rank=3, hidden=16, code=8)


def random_codes(n: int, gen: torch.Generator, c: MappingConfig = CONFIG) -> PropertyCodes:
    return PropertyCodes(azimuth=torch.rand(n, generator=gen) * 2 * math.pi, elevation=torch.rand(n, generator=gen),
                         t=torch.zeros(n, 3), shape=torch.randn(n, c.verts, 3, generator=gen),
                         texture=torch.rand(n, 3, c.texture_size, c.texture_size, generator=gen),
                         background=torch.rand(n, 3, c.background_grid, c.background_grid, generator=gen) * 2 - 1)


def make_mapping(seed: int = 0) -> NeuralMapping:
    torch.manual_seed(seed)
    bases = torch.randn(CONFIG.bases, CONFIG.num_ws - CONFIG.view_layers, CONFIG.w_dim)
    m = NeuralMapping(CONFIG, bases=bases, w_avg=torch.randn(CONFIG.w_dim))
    with torch.no_grad():                       # spread the logits so the softmaxes are far from uniform
        for p in m.dim_bias.values():
            p.normal_(0, 3)
        m.blend_logits.normal_(0, 3)
    return m


def test_content_ws_are_convex_combinations_of_the_bases():
    m = make_mapping()
    out = m(random_codes(16, torch.Generator().manual_seed(1)))
    content = out.ws[:, CONFIG.view_layers:].flatten(1)
    flat = m.bases.flatten(1)                   # [K, D]
    assert (content >= flat.min(0).values - 1e-5).all() and (content <= flat.max(0).values + 1e-5).all()
    for w in out.basis_weights.values():
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:2]))
    torch.testing.assert_close(out.blend.sum(-1), torch.ones(CONFIG.content_dims))


def test_camera_is_continuous_across_a_full_turn():
    m = make_mapping()
    codes = random_codes(4, torch.Generator().manual_seed(2))
    a = m(codes.with_camera(10.0, 5.0)).ws
    b = m(codes.with_camera(370.0, 5.0)).ws
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    c = m(codes.with_camera(190.0, 5.0)).ws
    assert (a[:, :CONFIG.view_layers] - c[:, :CONFIG.view_layers]).abs().max() > 1e-3
    torch.testing.assert_close(a[:, CONFIG.view_layers:], c[:, CONFIG.view_layers:])  # content ignores the camera


def test_a_dimension_owned_by_texture_follows_only_texture():
    m = make_mapping()
    with torch.no_grad():
        m.blend_logits.zero_()
        m.blend_logits[:, 1] = 50.0             # every content dimension owned by texture
    gen = torch.Generator().manual_seed(3)
    codes, other = random_codes(3, gen), random_codes(3, gen)
    base = m(codes).ws
    for prop in ("shape", "background"):
        torch.testing.assert_close(m(codes.replace(**{prop: getattr(other, prop)})).ws, base)
    moved = m(codes.replace(texture=other.texture)).ws
    assert (moved[:, CONFIG.view_layers:] - base[:, CONFIG.view_layers:]).abs().max() > 1e-4


def test_bad_code_shapes_are_refused():
    m = make_mapping()
    codes = random_codes(2, torch.Generator().manual_seed(4))
    with pytest.raises(ValueError, match="shape code"):
        m(codes.replace(shape=torch.zeros(2, 11, 3)))


def test_background_code_reads_the_colour_outside_the_car():
    colour = torch.tensor([0.2, -0.5, 0.7])
    images = colour.view(1, 3, 1, 1).repeat(2, 1, 64, 64)
    mask = torch.zeros(2, 1, 64, 64)
    mask[:, :, 16:48, 8:56] = 1.0               # the car covers whole cells and parts of others
    images = images * (1 - mask) + mask * 0.9   # a car of another colour
    code = background_code(images, mask, 8)
    torch.testing.assert_close(code, colour.view(1, 3, 1, 1).expand(2, 3, 8, 8), rtol=0, atol=1e-6)


def test_training_resumes_to_the_same_weights(tmp_path):
    from ganfactory.neural.train import TrainConfig, train

    small = MappingConfig(bases=4, rank=2, hidden=16, code=8)
    kw = dict(samples=6, holdout=2, warmup_batch=4, finetune_batch=2, mapping=small, checkpoint_every=2,
              log_every=1)
    whole = train(TrainConfig(warmup_iterations=4, finetune_iterations=1, **kw), tmp_path / "whole", progress=False)
    shutil.copytree(tmp_path / "whole" / "cache", tmp_path / "parts" / "cache")
    train(TrainConfig(warmup_iterations=2, finetune_iterations=0, **kw), tmp_path / "parts", progress=False)
    with pytest.raises(Exception, match="other settings"):
        train(TrainConfig(warmup_iterations=4, finetune_iterations=1, **{**kw, "seed": 1}), tmp_path / "parts",
              progress=False)
    parts = train(TrainConfig(warmup_iterations=4, finetune_iterations=1, **kw), tmp_path / "parts", progress=False)
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(parts / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
