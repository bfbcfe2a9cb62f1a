"""DIB-R renderer speed and memory: the binned rasterizer against the dense reference, in one run.

    python benchmarks/render.py [--reps 10] [--dense-reps 2] [--cases sphere textured] [--threads 2]

Cases (the issue's):
  sphere    the 1280-face icosphere template, vertex colours + a directional light, 64x64, batch 16
  textured  a 6000-face textured torus (256x256 texture), 128x128, batch 4
Each is rendered by ``Renderer`` (rasterize, shade, soft silhouette) with ``impl="binned"`` and with
``impl="dense"`` (every face against every pixel for face selection and for the soft mask's pairs).
"forward" runs under no_grad; "forward+backward" backpropagates ``image.mean() + soft_mask.mean()`` to the
vertices (and texture). The two implementations' outputs are checked to be identical first.
Times come from one subprocess per (case, mode) that alternates binned and dense runs, so that both see
the same load from other work on a shared machine; they are the best of the repetitions, wall clock and
process CPU time (all threads). Peak resident memory (max RSS minus the RSS before the first render)
comes from a fresh subprocess per (case, impl, mode). Prints a table and writes
benchmarks/results/render.json (with medians and the 1-minute load average).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "sphere": dict(faces="icosphere3", size=64, batch=16),
    "textured": dict(faces="torus6000", size=128, batch=4),
}
MODES = ("forward", "forward+backward")
IMPLS = ("binned", "dense")


def torus(major: int = 60, minor: int = 50, R: float = 0.8, r: float = 0.35):
    """A (major x minor x 2)-face torus with UVs that run past 1 at the seams (the sampler wraps)."""
    import torch

    i = torch.arange(major + 1, dtype=torch.float32) / major
    j = torch.arange(minor + 1, dtype=torch.float32) / minor
    a, b = torch.meshgrid(i * 2 * math.pi, j * 2 * math.pi, indexing="ij")
    ring = R + r * torch.cos(b)
    verts = torch.stack([ring * torch.cos(a), r * torch.sin(b), ring * torch.sin(a)], -1).reshape(-1, 3)
    uv = torch.stack(torch.meshgrid(i, j, indexing="ij"), -1).reshape(-1, 2)
    idx = torch.arange((major + 1) * (minor + 1)).view(major + 1, minor + 1)
    q00, q10, q01, q11 = idx[:-1, :-1], idx[1:, :-1], idx[:-1, 1:], idx[1:, 1:]
    faces = torch.cat([torch.stack([q00, q01, q11], -1).reshape(-1, 3),
                       torch.stack([q00, q11, q10], -1).reshape(-1, 3)])
    return verts, faces, uv[faces]


def build(case: str):
    import torch

    from ganfactory.render import Camera, DirectionalLights, Mesh, icosphere

    cfg = CASES[case]
    B, S = cfg["batch"], cfg["size"]
    g = torch.Generator().manual_seed(0)
    if cfg["faces"] == "icosphere3":
        v, f = icosphere(3)
        verts = v[None].repeat(B, 1, 1).requires_grad_(True)
        params = [verts]

        def mesh():
            return Mesh(verts, f, vert_colors=(verts.detach() * 0.5 + 0.5))
    else:
        v, f, uvs = torus()
        assert f.shape[0] == 6000
        verts = v[None].repeat(B, 1, 1).requires_grad_(True)
        tex = torch.rand(B, 3, 256, 256, generator=g).requires_grad_(True)
        params = [verts, tex]
        face_texture = torch.zeros(f.shape[0], dtype=torch.long)

        def mesh():
            return Mesh(verts, f, face_uvs=uvs, textures=(tex,), face_texture=face_texture)
    az = torch.arange(B, dtype=torch.float32) * 2 * math.pi / B
    cam = Camera.orbit(az, torch.full((B,), 0.4), torch.full((B,), 2.8), 0.8, (S, S))
    lights = DirectionalLights(direction=torch.nn.functional.normalize(torch.tensor([[[0.3, 1.0, 0.5]]]), dim=-1)
                               .expand(B, 1, 3), diffuse=torch.full((B, 1, 3), 0.7), ambient=torch.full((B, 3), 0.3),
                               specular=torch.full((B, 1, 3), 0.2))
    return mesh, cam, lights, params


def measure(case: str, impl: str, mode: str, reps: int, threads: int) -> dict:
    """Runs in the child process."""
    import torch

    from ganfactory.render import RasterSettings, Renderer

    torch.set_num_threads(threads)
    mesh, cam, lights, params = build(case)
    renderer = Renderer(RasterSettings((CASES[case]["size"],) * 2, impl=impl))
    rss_before = _rss_kb()

    def once():
        if mode == "forward":
            with torch.no_grad():
                out = renderer(mesh(), cam, lights)
        else:
            out = renderer(mesh(), cam, lights)
            (out.image.mean() + out.soft_mask.mean()).backward()
            for p in params:
                p.grad = None
        return out

    once()  # warm-up
    times, cpu = [], []
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        once()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(case=case, impl=impl, mode=mode, reps=reps, threads=threads, median_s=statistics.median(times),
                min_s=min(times), cpu_s=min(cpu), peak_mb=(peak - rss_before) / 1024,
                loadavg_1min=os.getloadavg()[0])


def measure_pair(case: str, mode: str, reps: int, dense_reps: int, threads: int) -> dict:
    """Times binned and dense alternately in one process, so both see the same load from other work."""
    import torch

    from ganfactory.render import RasterSettings, Renderer

    torch.set_num_threads(threads)
    mesh, cam, lights, params = build(case)
    renderers = {impl: Renderer(RasterSettings((CASES[case]["size"],) * 2, impl=impl)) for impl in IMPLS}

    def once(impl: str) -> tuple[float, float]:
        t, c = time.perf_counter(), time.process_time()
        if mode == "forward":
            with torch.no_grad():
                renderers[impl](mesh(), cam, lights)
        else:
            out = renderers[impl](mesh(), cam, lights)
            (out.image.mean() + out.soft_mask.mean()).backward()
            for p in params:
                p.grad = None
        return time.perf_counter() - t, time.process_time() - c

    once("binned")
    once("dense")
    wall = {impl: [] for impl in IMPLS}
    cpu = {impl: [] for impl in IMPLS}
    per_dense = max(1, reps // dense_reps)
    for _ in range(dense_reps):
        for impl, n in (("binned", per_dense), ("dense", 1)):
            for _ in range(n):
                w, c = once(impl)
                wall[impl].append(w)
                cpu[impl].append(c)
    return dict(case=case, mode=mode, threads=threads, loadavg_1min=os.getloadavg()[0],
                **{f"{impl}_{k}": v for impl in IMPLS for k, v in (("min_s", min(wall[impl])),
                                                                    ("median_s", statistics.median(wall[impl])),
                                                                    ("cpu_s", min(cpu[impl])))})


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def check_identical(case: str) -> dict:
    """Binned and dense give the same face ids, images and soft masks (and vertex gradients)."""
    import torch

    from ganfactory.render import RasterSettings, Renderer

    mesh, cam, lights, params = build(case)
    outs, grads = [], []
    for impl in IMPLS:
        out = Renderer(RasterSettings((CASES[case]["size"],) * 2, impl=impl))(mesh(), cam, lights)
        (out.image.mean() + out.soft_mask.mean()).backward()
        outs.append(out)
        grads.append(params[0].grad.clone())
        params[0].grad = None
    a, b = outs
    a, b = (o.__class__(**{k: getattr(o, k).detach() for k in o.__dataclass_fields__}) for o in (a, b))
    return dict(face_idx_equal=bool(torch.equal(a.face_idx, b.face_idx)),
                image_max_diff=float((a.image - b.image).abs().max()),
                soft_mask_max_diff=float((a.soft_mask - b.soft_mask).abs().max()),
                vert_grad_max_diff=float((grads[0] - grads[1]).abs().max()),
                coverage=float((a.face_idx >= 0).float().mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--dense-reps", type=int, default=2, help="repetitions for the (slow) dense reference")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "render.json")
    ap.add_argument("--child", nargs=3, metavar=("CASE", "IMPL", "MODE"), help=argparse.SUPPRESS)
    ap.add_argument("--check", metavar="CASE", help=argparse.SUPPRESS)
    ap.add_argument("--pair", nargs=2, metavar=("CASE", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        case, impl, mode = args.child
        reps = args.reps if impl == "binned" else 1
        print(json.dumps(measure(case, impl, mode, reps, args.threads)))
        return
    if args.check:
        print(json.dumps(check_identical(args.check)))
        return
    if args.pair:
        print(json.dumps(measure_pair(*args.pair, args.reps, args.dense_reps, args.threads)))
        return

    def child(*extra: str) -> dict:
        cmd = [sys.executable, __file__, "--reps", str(args.reps), "--dense-reps", str(args.dense_reps),
               "--threads", str(args.threads), *extra]
        run = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return json.loads(run.stdout.strip().splitlines()[-1])

    results, pairs, checks = [], [], {}
    for case in args.cases:
        checks[case] = child("--check", case)
        print(f"{case}: binned vs dense {checks[case]}", flush=True)
        for mode in MODES:
            pr = child("--pair", case, mode)
            pairs.append(pr)
            print(f"  {mode:16s} binned {pr['binned_min_s'] * 1000:9.1f} ms (cpu {pr['binned_cpu_s'] * 1000:9.1f})"
                  f"  dense {pr['dense_min_s'] * 1000:9.1f} ms (cpu {pr['dense_cpu_s'] * 1000:9.1f})"
                  f"  load {pr['loadavg_1min']:.1f}", flush=True)
            for impl in IMPLS:
                r = child("--child", case, impl, mode)
                results.append(r)
                print(f"  {impl:6s} {mode:16s} peak {r['peak_mb']:8.1f} MB", flush=True)

    rows = ["| case | mode | binned ms | dense ms | speed-up | binned CPU ms | dense CPU ms | CPU ratio "
            "| binned peak MB | dense peak MB | memory ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in args.cases:
        for mode in MODES:
            pr = next(p for p in pairs if p["case"] == case and p["mode"] == mode)
            b = next(r for r in results if r["case"] == case and r["mode"] == mode and r["impl"] == "binned")
            d = next(r for r in results if r["case"] == case and r["mode"] == mode and r["impl"] == "dense")
            rows.append(f"| {case} | {mode} | {pr['binned_min_s'] * 1000:.1f} | {pr['dense_min_s'] * 1000:.1f} | "
                        f"{pr['dense_min_s'] / pr['binned_min_s']:.0f}x | {pr['binned_cpu_s'] * 1000:.1f} | "
                        f"{pr['dense_cpu_s'] * 1000:.1f} | {pr['dense_cpu_s'] / pr['binned_cpu_s']:.0f}x | "
                        f"{b['peak_mb']:.0f} | {d['peak_mb']:.0f} | {d['peak_mb'] / max(b['peak_mb'], 1e-9):.1f}x |")
    table = "\n".join(rows)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(python=platform.python_version(), machine=platform.machine(), cases=CASES,
                note="peak_mb = max RSS during the runs minus RSS before the first render")
    args.out.write_text(json.dumps(dict(meta=meta, checks=checks, timings=pairs, memory=results, table=table),
                                   indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
