"""The part head (``inverse.parts``): mirror map, soft part maps through the rasterizer, the cheap loss, training,
the weights-only format and the built-in head."""

import math
from types import SimpleNamespace

import pytest
import torch

from ganfactory.datasets.parts import CARS8
from ganfactory.inverse.camera import OrbitCamera
from ganfactory.inverse.network import InverseGraphicsNet, NetworkConfig, SphereTemplate
from ganfactory.inverse.parts import (
    PartCache,
    PartHead,
    PartHeadConfig,
    PartHeadError,
    PartTrainConfig,
    face_mirror,
    gather_part_probs,
    load_part_head,
    part_cross_entropy,
    render_part_probs,
    rendered_part_nll,
    save_part_head,
    train_part_head,
)


@pytest.fixture(scope="module")
def template():
    return SphereTemplate(2)


def test_face_mirror_is_the_y_flip(template):
    m = face_mirror(template.faces, template.mirror)
    assert torch.equal(m[m], torch.arange(len(m)))  # an involution
    centroid = template.verts[template.faces].mean(1)
    assert torch.allclose(centroid[m], centroid * torch.tensor([1.0, -1.0, 1.0]), atol=1e-6)


def test_gather_matches_a_hand_built_grid():
    # 2 faces, 3 classes; one 2x2-supersampled pixel: faces 0, 1, background, 0.
    probs = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    face_idx = torch.tensor([[[0, 1], [-1, 0]]])
    p = gather_part_probs(probs, face_idx, 2)
    assert p.shape == (1, 3, 1, 1)
    assert torch.allclose(p[0, :, 0, 0], torch.tensor([0.25, 0.5, 0.25]))


def test_cheap_loss_equals_the_cross_entropy_of_the_rendered_map():
    g = torch.Generator().manual_seed(0)
    B, F, K, s = 3, 12, 5, 2
    logits = torch.randn(B, F, K, generator=g, dtype=torch.float64, requires_grad=True)
    face_idx = torch.randint(-1, F, (B, 8, 8), generator=g)
    face_idx[0, :2, :2] = -1
    labels = torch.randint(0, K, (B, 4, 4), generator=g)
    weight = torch.rand(K, generator=g, dtype=torch.float64) + 0.1
    uncovered = torch.nn.functional.max_pool2d((face_idx >= 0)[:, None].float(), s)[:, 0] == 0
    assert uncovered.any()
    kept = labels.masked_fill(uncovered, -100)  # pixels no face covers have no gradient: left out
    a = part_cross_entropy(gather_part_probs(torch.softmax(logits, -1), face_idx, s), kept, weight)
    b = rendered_part_nll(torch.softmax(logits, -1), face_idx, labels, s, weight)
    ga, = torch.autograd.grad(a, logits)
    gb, = torch.autograd.grad(b, logits)
    assert torch.allclose(a, b, atol=1e-12) and torch.allclose(ga, gb, atol=1e-12)


def test_rendered_map_is_a_distribution_with_the_silhouette_as_foreground(template):
    verts = (template.verts * 0.8)[None]
    F = template.faces.shape[0]
    probs = torch.softmax(torch.randn(1, F, 4, generator=torch.Generator().manual_seed(1)), -1)
    probs = probs * torch.tensor([0.0, 1, 1, 1])
    probs = probs / probs.sum(-1, keepdim=True)
    cam = OrbitCamera(torch.tensor([0.3]), torch.tensor([0.2]), torch.tensor([[0.0, 0.0, -4.0]]), math.radians(30))
    p = render_part_probs(verts, template.faces, probs, cam, 32, supersample=2)
    assert torch.allclose(p.sum(1), torch.ones(1, 32, 32), atol=1e-6)
    from ganfactory.render import Mesh
    from ganfactory.render.rasterizer import rasterize_mesh

    covered = rasterize_mesh(Mesh(verts, template.faces), cam.to_camera((32, 32)), (64, 64)).face_idx >= 0
    coverage = torch.nn.functional.avg_pool2d(covered[:, None].float(), 2)[:, 0]
    assert torch.allclose(1 - p[:, 0], coverage, atol=1e-6)


def _head(template):
    F = template.faces.shape[0]
    return PartHead(PartHeadConfig(classes=CARS8, faces=F, latent=16, hidden=8),
                    face_mirror(template.faces, template.mirror))


def test_head_is_symmetric_and_never_background(template):
    head = _head(template)
    with torch.no_grad():
        head.base.normal_()
        head.mlp[2].weight.normal_()
    logits = head(torch.randn(2, 16))
    assert torch.allclose(logits, logits[:, head.mirror])
    assert (head.face_labels(torch.randn(2, 16)) != 0).all()


def test_training_learns_a_layout(template):
    """Labels follow a fixed rule of the face id (what a car's part layout is to the sphere template): the
    trained head renders them back."""
    F = template.faces.shape[0]
    z = template.verts[template.faces].mean(1)[:, 2]
    rule = torch.where(z > 0.3, 2, 1)  # "window" on top, "body" below; symmetric in y
    g = torch.Generator().manual_seed(0)
    N, H = 16, 8
    own = torch.randint(-1, F, (N, H, H), generator=g).to(torch.int16)

    def labels_of(face_idx):
        return torch.where(face_idx >= 0, rule[face_idx.long().clamp(min=0)], 0).to(torch.uint8)

    partner = torch.arange(N).roll(1)
    # Sample i's mesh seen in its partner's camera is what the partner's label map shows.
    cache = PartCache(codes=torch.randn(N, 16, generator=g), labels=labels_of(own), own=own, other=own[partner],
                      partner=partner, ids=tuple(map(str, range(N))))
    # What train_part_head reads of the network: its faces and template.
    net = SimpleNamespace(faces=template.faces, template=template)
    head, history = train_part_head(net, cache, PartTrainConfig(iterations=150, batch=8, lr=3e-2, class_balance=0,
                                                                                 supersample=1),
                                    PartHeadConfig(classes=CARS8, faces=F, latent=16, hidden=8))
    assert history[-1]["loss"] < 0.1  # from ln 7 = 1.95 for the uniform start
    learned = head.face_labels(cache.codes[:1])[0]
    seen = torch.unique(own[own >= 0].long())
    assert (learned[seen] == rule[seen]).float().mean() > 0.9


def test_save_load_round_trip(tmp_path):
    net = InverseGraphicsNet(NetworkConfig(sphere_level=2, latent=32))
    F = net.faces.shape[0]
    head = PartHead.for_network(net, PartHeadConfig(classes=CARS8, faces=F, latent=32, hidden=4))
    with torch.no_grad():
        head.base.normal_()
    save_part_head(head, tmp_path / "h", {"note": "test"})
    back, config = load_part_head(tmp_path / "h", net)
    code = torch.randn(3, 32)
    assert torch.equal(back(code), head(code)) and config["facts"]["note"] == "test"
    other = InverseGraphicsNet(NetworkConfig(sphere_level=1, latent=32))
    with pytest.raises(PartHeadError, match="faces"):
        load_part_head(tmp_path / "h", other)
    with pytest.raises(PartHeadError, match="not a part-head directory"):
        load_part_head(tmp_path / "missing", net)


def test_builtin_part_head_loads_on_its_model():
    from ganfactory.inverse.model import load_model

    net, _ = load_model("cars64-3d")
    head, config = load_part_head("cars64-3d-parts", net)
    assert head.config.classes == CARS8 and config["part_head"]["base_model"] == "cars64-3d"
    labels = head.face_labels(torch.zeros(1, net.config.latent))[0]
    # The base layout has wheels low on the template and towards its ends, windows high.
    centroid = net.template.verts[net.faces].mean(1)
    wheel, window = labels == CARS8.index("wheel"), labels == CARS8.index("window")
    assert wheel.any() and window.any()
    assert centroid[wheel, 2].mean() < -0.2 < 0.2 < centroid[window, 2].mean()
    assert centroid[wheel, 0].abs().min() > 0.1 and centroid[wheel, 0].abs().mean() > 0.3


def test_reconstruct_parts_cli(tmp_path):
    """`ganfactory reconstruct --parts` on a bundled test image: the animated GLB (read back, 4 wheels, checked
    animations), the part PNG, the JSON and the camera the viewer uses."""
    import json

    import trimesh

    from ganfactory.cli import main
    from ganfactory.cli.demo import demo_data
    from ganfactory.inverse.animate import WHEEL_NAMES, check_animations, read_glb

    image = sorted((demo_data() / "test" / "images").rglob("*.png"))[0]
    assert main(["reconstruct", str(image), "--parts", "--out", str(tmp_path)]) in (0, None)
    stem = image.stem
    record = json.loads((tmp_path / f"{stem}.parts.json").read_text())
    assert [w["name"] for w in record["wheels"]] == list(WHEEL_NAMES)
    assert sum(record["face_counts"].values()) == 1280 and record["face_counts"]["background"] == 0
    gltf, _ = read_glb(tmp_path / f"{stem}.parts.glb")
    check_animations(gltf)
    scene = trimesh.load(tmp_path / f"{stem}.parts.glb")
    assert sum(len(g.faces) for k, g in scene.geometry.items() if k.startswith("body_")) == 1280  # the body whole
    assert set(WHEEL_NAMES) <= set(scene.geometry)
    assert (tmp_path / f"{stem}.parts.png").is_file() and (tmp_path / f"{stem}.parts.camera.json").is_file()
    assert main(["reconstruct", str(image), "--part-head", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
