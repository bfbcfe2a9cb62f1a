"""kaolin_compat against kaolin's own CUDA outputs (tests/fixtures/kaolin-dibr, see its README)."""

from pathlib import Path

import pytest
import torch

from ganfactory.render import kaolin_compat as K

FIX = Path(__file__).parents[1] / "fixtures" / "kaolin-dibr"
H, W = 35, 31

FACE_VERTICES_IMAGE = [
    [[[-0.7, 0.0], [0.0, -0.7], [0.0, 0.7]],
     [[-0.7, 0.0], [0.0, 0.7], [0.0, -0.7]],
     [[0.0, -0.7], [0.0, 0.7], [0.7, 0.0]]],
    [[[-0.7, -0.7], [0.7, -0.7], [-0.7, 0.7]],
     [[-0.7, -0.7], [0.7, -0.7], [-0.7, 0.7]],
     [[-0.7, -0.7], [0.7, -0.7], [-0.7, 0.7]]]]
FACE_VERTICES_Z = [
    [[-2.0, -1.0, -1.0], [-2.5, -3.0, -3.0], [-2.0, -2.0, -2.0]],
    [[-2.0, -1.0, -3.0], [-2.0, -2.0, -2.0], [-2.0, -3.0, -1.0]]]


def load(name):
    return torch.load(FIX / name, map_location="cpu")


def inputs(dtype):
    return (torch.tensor(FACE_VERTICES_IMAGE, dtype=dtype), torch.tensor(FACE_VERTICES_Z, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rasterize_face_index_is_identical(dtype):
    fvi, fz = inputs(dtype)
    feats = torch.rand(2, 3, 3, 4, dtype=dtype)
    image, face_idx = K.rasterize(H, W, fz, fvi, feats)
    assert image.shape == (2, H, W, 4)
    assert torch.equal(face_idx, load("new_face_idx_35_31.pt"))


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize(("sigmainv", "boxlen", "name"), [
    (7000, 0.02, "soft_mask_35_31_7000_0.02.pt"), (70, 0.2, "soft_mask_35_31_70_0.2.pt")])
def test_soft_mask_equals_kaolin(dtype, tol, sigmainv, boxlen, name):
    fvi, _ = inputs(dtype)
    face_idx = load("new_face_idx_35_31.pt")
    mask = K.dibr_soft_mask(fvi, face_idx, sigmainv=sigmainv, boxlen=boxlen, knum=30)
    ref = load(name)
    assert mask.dtype == dtype
    assert (mask.double() - ref.double()).abs().max().item() <= tol


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_soft_mask_gradient_equals_kaolin(dtype, tol):
    fvi, _ = inputs(dtype)
    fvi.requires_grad_(True)
    face_idx = load("new_face_idx_35_31.pt")
    mask = K.dibr_soft_mask(fvi, face_idx)  # kaolin's defaults: 7000, 0.02, 30
    covered = (face_idx != -1).to(dtype)
    target = torch.zeros_like(covered)
    target[:, :, :26] = covered[:, :, 5:]
    loss = K.mask_iou(mask, target)
    loss.backward()
    ref = load("grad_face_vertices_image_35_31_7000_0.02.pt")
    assert (fvi.grad.double() - ref.double()).abs().max().item() <= tol


def test_dibr_rasterization_culls_and_composes():
    fvi, fz = inputs(torch.float64)
    feats = torch.rand(2, 3, 3, 3, dtype=torch.float64)
    normals_z = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    image, soft, face_idx = K.dibr_rasterization(H, W, fz, fvi, feats, normals_z)
    _, ref_idx = K.rasterize(H, W, fz, fvi, feats, valid_faces=normals_z >= 0)
    assert torch.equal(face_idx, ref_idx)
    assert not (face_idx[0] == 1).any()
    assert torch.equal(soft, K.dibr_soft_mask(fvi, face_idx))
    assert image.shape == (2, H, W, 3)
