"""Multi-view data: view/content mixing, the object filter, cameras files, and the build (deterministic, resumable,
same bytes for in-process and several workers)."""

import json

import numpy as np
import pytest
import torch

from ganfactory.cli import main
from ganfactory.datasets.labeled import LabeledDataset
from ganfactory.errors import GanfactoryError
from ganfactory.inverse.multiview import (
    MultiviewSettings,
    ViewCodeCamera,
    bin_azimuth,
    build_multiview,
    count_objects,
    multiview_latents,
    read_cameras,
    write_cameras,
)


def test_bins_of_azimuths():
    assert bin_azimuth(np.array([0, 14.9, 15.1, 90, 180, 344, 346, 359.9, -30])).tolist() == [0, 0, 1, 3, 6, 11, 0, 0,
                                                                                              11]


def test_count_objects():
    m = np.zeros((12, 12), bool)
    assert count_objects(m) == 0
    m[1:4, 1:4] = True
    assert count_objects(m) == 1
    m[8:11, 2:10] = True                                 # a second blob
    assert count_objects(m) == 2
    m[4, 4] = True                                       # touches the first diagonally: 8-neighbourhood joins it
    assert count_objects(m) == 2
    m[6, 11] = True                                      # a speck of one pixel
    assert count_objects(m) == 3 and count_objects(m, min_pixels=2) == 2
    snake = np.zeros((9, 9), bool)                       # one long winding component
    for part in (np.s_[0, :], np.s_[:, 8], np.s_[8, :], np.s_[2:, 0], np.s_[2, :7], np.s_[2:7, 6]):
        snake[part] = True
    assert count_objects(snake) == 1


def test_view_code_takes_first_layers(tiny_G):
    s = MultiviewSettings(generator="tiny32", cutoff=3, view_codes=2, content_codes=3)
    ws = multiview_latents(tiny_G, s, 1, range(3))
    from ganfactory.gan.sampling import seeds_to_z

    w_view = tiny_G.mapping(seeds_to_z([s.first_view_seed + 1], tiny_G.z_dim), None, truncation_psi=0.7)
    w_cont = tiny_G.mapping(seeds_to_z([s.first_content_seed + c for c in range(3)], tiny_G.z_dim), None,
                            truncation_psi=0.7)
    assert torch.equal(ws[:, :3], w_view[:, :3].expand(3, -1, -1)) and torch.equal(ws[:, 3:], w_cont[:, 3:])
    with pytest.raises(GanfactoryError, match="cutoff"):
        multiview_latents(tiny_G, MultiviewSettings(cutoff=99), 0, range(1))


def test_cameras_file_round_trip_and_mismatch(tmp_path):
    s = MultiviewSettings(generator="tiny32", cutoff=4, view_codes=3)
    cams = [ViewCodeCamera(0, 3, 10.0, "person"), ViewCodeCamera(2, 11, 0.0, "person")]
    write_cameras(tmp_path / "c.json", s, cams)
    back = read_cameras(tmp_path / "c.json", s)
    assert back == {0: cams[0], 2: cams[1]} and back[0].azimuth_deg == 90.0 and back[2].azimuth_deg == 330.0
    with pytest.raises(GanfactoryError, match="cutoff=4"):
        read_cameras(tmp_path / "c.json", MultiviewSettings(generator="tiny32", cutoff=5))


def tree_bytes(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def settings_for(interp_dir, **kw):
    return MultiviewSettings(**{**dict(generator="tiny32", interpreter=str(interp_dir), cutoff=4, view_codes=3,
                                       content_codes=5, batch_size=4, shard_size=4, min_mask=0.5), **kw})


def test_build_meta_filter_resume(interp_dir, tmp_path):
    s = settings_for(interp_dir)
    cams = tmp_path / "cameras.json"
    write_cameras(cams, s, [ViewCodeCamera(v, 2 * v, 10.0 * v, "person") for v in range(3)])
    summary = build_multiview(s, cams, tmp_path / "a", progress=False)
    ds = LabeledDataset(tmp_path / "a")
    ds.validate()
    assert summary["candidates"] == 15 and summary["kept"] == len(ds) > 0
    assert summary["kept"] + summary["dropped_small_mask"] >= 15 - summary["dropped_objects"]
    # inverse training reads it: one object per content code, the view codes, a framed camera per sample
    from ganfactory.inverse.data import load_views

    views = load_views(tmp_path / "a", progress=False)
    assert views.view_code.tolist() == [ds.meta(i)["view_code"] for i in range(len(ds))]
    assert [views.groups[g] for g in views.group.tolist()] == [str(ds.meta(i)["content"]) for i in range(len(ds))]
    assert torch.allclose(torch.rad2deg(views.azimuth), torch.tensor([60.0 * c for c in views.view_code.tolist()]))
    assert (views.t[:, 2] < -3).all()
    for i in range(len(ds)):
        meta, label = ds.meta(i), ds.label(i)
        v = meta["view_code"]
        assert meta["camera"]["azimuth_deg"] == 60.0 * v and meta["camera"]["elevation_deg"] == 10.0 * v
        assert meta["latent"] == {"view_seed": s.first_view_seed + v, "content_seed": s.first_content_seed +
                                  meta["content"], "cutoff": 4, "truncation_psi": 0.7, "noise_mode": "const"}
        assert meta["mask_fraction"] >= 0.5 and meta["objects"] == 1
        assert abs((label > 0).mean() - meta["mask_fraction"]) < 1e-6
        assert 0 <= meta["regressed"]["azimuth_deg"] < 360
    # the image regenerates from its latent
    from ganfactory.gan import load_generator
    from ganfactory.gan.sampling import to_uint8

    G = load_generator("tiny32")
    m = ds.meta(0)
    ws = multiview_latents(G, s, m["view_code"], [m["content"]])
    assert np.array_equal(to_uint8(G.synthesis(ws, noise_mode="const"))[0], ds.image(0))
    ids = ds.ids
    assert ids == sorted(ids)                            # view-code order
    # resume: a build cut after its scan of view code 0 ends with the same bytes
    from ganfactory.inverse.multiview import _load_models, scan_view_code

    scan_view_code(*_load_models(s), s, 0, tmp_path / "b")
    build_multiview(s, cams, tmp_path / "b", progress=False)
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    with pytest.raises(GanfactoryError, match="other settings"):
        build_multiview(settings_for(interp_dir, min_mask=0.2), cams, tmp_path / "a", progress=False)


def test_build_needs_every_camera(interp_dir, tmp_path, capsys):
    s = settings_for(interp_dir)
    write_cameras(tmp_path / "c.json", s, [ViewCodeCamera(0, 0, 0.0, "person")])
    with pytest.raises(GanfactoryError, match=r"view codes \[1, 2\] have no camera"):
        build_multiview(s, tmp_path / "c.json", tmp_path / "o", progress=False)
    code = main(["multiview", "build", "--ckpt", "tiny32", "--cutoff", "4", "--view-codes", "3", "--interpreter",
                 str(interp_dir), "--cameras", str(tmp_path / "c.json"), "--out", str(tmp_path / "o2")])
    assert code == 2 and "have no camera" in capsys.readouterr().err


@pytest.mark.slow
def test_workers_and_ray_write_the_same_bytes(interp_dir, tmp_path):
    s = settings_for(interp_dir)
    cams = tmp_path / "cameras.json"
    write_cameras(cams, s, [ViewCodeCamera(v, v, 0.0, "person") for v in range(3)])
    build_multiview(s, cams, tmp_path / "one", progress=False)
    build_multiview(s, cams, tmp_path / "two", workers=2, progress=False)
    build_multiview(s, cams, tmp_path / "ray", backend="ray", workers=2, progress=False)
    one = tree_bytes(tmp_path / "one")
    assert one == tree_bytes(tmp_path / "two") == tree_bytes(tmp_path / "ray")
    assert json.loads(one["dataset.json"])["provenance"]["settings"]["view_codes"] == 3
