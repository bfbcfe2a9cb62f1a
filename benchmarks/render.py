"""DIB-R renderer speed and memory: this tree ("after") against a baseline commit ("before"), in one run.

    python benchmarks/render.py [--reps 15] [--cases sphere textured train-step] [--threads 1]
                                [--before 94c9d7e] [--no-dense-check]

Cases:
  sphere      the 1280-face icosphere template, vertex colours + a directional light, 64x64, batch 16
  textured    a 6000-face textured torus (256x256 texture), 128x128, batch 4
  train-step  one inverse-graphics training step as GANverse3D trains: the template sphere plus
              per-sample vertex offsets, a 64x64 UV texture per sample, unlit, 64x64, batch 16; loss
              20 x masked L1 (colour) + 3 x soft-silhouette IoU against fixed targets; backward and an
              Adam step on offsets and texture
"forward" runs under no_grad; "forward+backward" backpropagates ``image.mean() + soft_mask.mean()`` to
the vertices (and texture); train-step times the whole step.

"before" is the renderer at a baseline commit (default: the commit before the hand-written backward
passes), read with ``git archive`` into a temporary package, so both run in the same process: each
measurement subprocess alternates before and after runs so both see the same load from other work on
a shared machine. Times are wall clock and process CPU time, best (and median) of the repetitions; on
a loaded machine the CPU time is the number to read. Peak resident memory (max RSS minus the RSS before
the first render) comes from a fresh subprocess per (case, version, mode).

Checks before timing: after against before (values, and gradients of the loss above; the gradients of
texture lookups jump where a UV crosses a texel boundary, so a few components may differ where float
rounding puts a sample on the other side), and, unless --no-dense-check, the binned fast path against
the dense reference (face ids identical, soft mask and gradients equal). Prints a table and writes
benchmarks/results/render.json.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = {
    "sphere": dict(faces="icosphere3", size=64, batch=16),
    "textured": dict(faces="torus6000", size=128, batch=4),
    "train-step": dict(faces="icosphere3+uv", size=64, batch=16, texture=64),
}
MODES = ("forward", "forward+backward")
VERSIONS = ("before", "after")
BEFORE = "94c9d7e"
"""The last commit of the renderer before the hand-written backward passes."""


def load_render(version: str, before: str):
    """The ``ganfactory.render`` package of this tree, or of commit ``before`` as ``render_before``."""
    if version == "after":
        return importlib.import_module("ganfactory.render")
    root = Path(tempfile.mkdtemp(prefix="render_before_"))
    tar = subprocess.run(["git", "-C", str(REPO), "archive", before, "src/ganfactory/render"],
                         capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(root, filter="data")
    (root / "src" / "ganfactory" / "render").rename(root / "render_before")
    for py in (root / "render_before").rglob("*.py"):  # the package imports only itself
        py.write_text(py.read_text().replace("ganfactory.render", "render_before"))
    sys.path.insert(0, str(root))
    return importlib.import_module("render_before")


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


def sphere_uvs(verts, faces):
    """Per-corner equirectangular UVs of a unit sphere (u from the azimuth, v from the height)."""
    import torch

    u = torch.atan2(verts[:, 2], verts[:, 0]) / (2 * math.pi) + 0.5
    v = torch.asin(verts[:, 1].clamp(-1, 1)) / math.pi + 0.5
    return torch.stack([u, v], -1)[faces]


class Case:
    """The inputs of one case for one renderer version; ``run(mode)`` renders (and backpropagates)."""

    def __init__(self, case: str, lib) -> None:
        import torch

        cfg = CASES[case]
        self.case, self.lib, self.torch = case, lib, torch
        B, S = cfg["batch"], cfg["size"]
        g = torch.Generator().manual_seed(0)
        az = torch.arange(B, dtype=torch.float32) * 2 * math.pi / B
        self.camera = lib.Camera.orbit(az, torch.full((B,), 0.4), torch.full((B,), 2.8), 0.8, (S, S))
        self.lights = lib.DirectionalLights(
            direction=torch.nn.functional.normalize(torch.tensor([[[0.3, 1.0, 0.5]]]), dim=-1).expand(B, 1, 3),
            diffuse=torch.full((B, 1, 3), 0.7), ambient=torch.full((B, 3), 0.3),
            specular=torch.full((B, 1, 3), 0.2))
        self.renderer = lib.Renderer(lib.RasterSettings((S, S)))
        if cfg["faces"] == "icosphere3":
            v, f = lib.icosphere(3)
            self.verts = v[None].repeat(B, 1, 1).requires_grad_(True)
            self.params = [self.verts]
            self.mesh = lambda: lib.Mesh(self.verts, f, vert_colors=(self.verts.detach() * 0.5 + 0.5))
        elif cfg["faces"] == "torus6000":
            v, f, uvs = torus()
            self.verts = v[None].repeat(B, 1, 1).requires_grad_(True)
            self.tex = torch.rand(B, 3, 256, 256, generator=g).requires_grad_(True)
            self.params = [self.verts, self.tex]
            face_texture = torch.zeros(f.shape[0], dtype=torch.long)
            self.mesh = lambda: lib.Mesh(self.verts, f, face_uvs=uvs, textures=(self.tex,),
                                         face_texture=face_texture)
        else:
            v, f = lib.icosphere(3)
            T = cfg["texture"]
            self.offsets = (torch.randn(B, v.shape[0], 3, generator=g) * 0.01).requires_grad_(True)
            self.tex = torch.rand(B, 3, T, T, generator=g).requires_grad_(True)
            self.params = [self.offsets, self.tex]
            uvs, face_texture = sphere_uvs(v, f), torch.zeros(f.shape[0], dtype=torch.long)
            self.mesh = lambda: lib.Mesh(v[None] + self.offsets, f, face_uvs=uvs, textures=(self.tex,),
                                         face_texture=face_texture)
            self.lights = None
            with torch.no_grad():  # targets: a squashed sphere with a smooth colour field
                squash = torch.tensor([1.0, 0.7, 0.85])
                target = self.renderer(lib.Mesh(v[None].repeat(B, 1, 1) * squash, f,
                                                vert_colors=(v[None].repeat(B, 1, 1) * 0.5 + 0.5)), self.camera)
            self.target_image, self.target_mask = target.image, target.alpha
            self.optimizer = torch.optim.Adam(self.params, lr=1e-3)

    def loss(self, out):
        if self.case == "train-step":
            return (20 * self.lib.masked_l1(out.image, self.target_image, self.target_mask)
                    + 3 * self.lib.silhouette_iou_loss(out.soft_mask, self.target_mask))
        return out.image.mean() + out.soft_mask.mean()

    def run(self, mode: str):
        if mode == "forward":
            with self.torch.no_grad():
                return self.renderer(self.mesh(), self.camera, self.lights)
        out = self.renderer(self.mesh(), self.camera, self.lights)
        self.loss(out).backward()
        if self.case == "train-step":
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return out

    def gradients(self):
        """Loss gradients of the parameters at the initial values (no optimizer step)."""
        out = self.renderer(self.mesh(), self.camera, self.lights)
        self.loss(out).backward()
        grads = [p.grad.detach().clone() for p in self.params]
        for p in self.params:
            p.grad = None
        return self.lib.RenderOutput(**{k: getattr(out, k).detach() for k in out.__dataclass_fields__}), grads


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def measure_pair(case: str, mode: str, reps: int, threads: int, before: str) -> dict:
    """Before and after alternately in one process (same load for both); best and median of ``reps``."""
    import torch

    torch.set_num_threads(threads)
    cases = {v: Case(case, load_render(v, before)) for v in VERSIONS}
    wall = {v: [] for v in VERSIONS}
    cpu = {v: [] for v in VERSIONS}
    for v in VERSIONS:  # warm-up
        cases[v].run(mode)
    for _ in range(reps):
        for v in VERSIONS:
            t, c = time.perf_counter(), time.process_time()
            cases[v].run(mode)
            wall[v].append(time.perf_counter() - t)
            cpu[v].append(time.process_time() - c)
    out = dict(case=case, mode=mode, threads=threads, reps=reps, loadavg_1min=os.getloadavg()[0])
    for v in VERSIONS:
        out.update({f"{v}_min_s": min(wall[v]), f"{v}_median_s": statistics.median(wall[v]),
                    f"{v}_cpu_s": min(cpu[v]), f"{v}_cpu_median_s": statistics.median(cpu[v])})
    return out


def measure_memory(case: str, version: str, mode: str, threads: int, before: str) -> dict:
    import torch

    torch.set_num_threads(threads)
    c = Case(case, load_render(version, before))
    rss_before = _rss_kb()
    for _ in range(2):
        c.run(mode)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(case=case, version=version, mode=mode, peak_mb=(peak - rss_before) / 1024)


def _grad_agreement(a, b) -> dict:
    """Max |a - b| over max |b|, and the share of components within 1e-4 of max |b|."""
    scale = float(b.abs().max()) or 1.0
    d = (a - b).abs() / scale
    return dict(max_rel=float(d.max()), share_within_1e4=float((d <= 1e-4).double().mean()))


def check(case: str, before: str, dense: bool) -> dict:
    """After against before, and the binned fast path against the dense reference."""
    import torch

    torch.manual_seed(0)
    after_case, before_case = Case(case, load_render("after", before)), Case(case, load_render("before", before))
    (oa, ga), (ob, gb) = after_case.gradients(), before_case.gradients()
    result = dict(after_vs_before=dict(
        face_idx_equal=bool(torch.equal(oa.face_idx, ob.face_idx)),
        image_max_diff=float((oa.image - ob.image).abs().max()),
        soft_mask_max_diff=float((oa.soft_mask - ob.soft_mask).abs().max()),
        grads=[_grad_agreement(x, y) for x, y in zip(ga, gb, strict=True)]))
    if dense:
        lib = after_case.lib
        cfg = CASES[case]
        ref = Case(case, lib)
        ref.renderer = lib.Renderer(lib.RasterSettings((cfg["size"],) * 2, impl="dense"))
        od, gd = ref.gradients()
        result["binned_vs_dense"] = dict(
            face_idx_equal=bool(torch.equal(oa.face_idx, od.face_idx)),
            image_max_diff=float((oa.image - od.image).abs().max()),
            soft_mask_max_diff=float((oa.soft_mask - od.soft_mask).abs().max()),
            grads=[_grad_agreement(x, y) for x, y in zip(ga, gd, strict=True)])
    result["coverage"] = float((oa.face_idx >= 0).float().mean())
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--before", default=BEFORE, help="git commit of the baseline renderer")
    ap.add_argument("--no-dense-check", action="store_true", help="skip the (slow) dense reference check")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "render.json")
    ap.add_argument("--pair", nargs=2, metavar=("CASE", "MODE"), help=argparse.SUPPRESS)
    ap.add_argument("--memory", nargs=3, metavar=("CASE", "VERSION", "MODE"), help=argparse.SUPPRESS)
    ap.add_argument("--check", metavar="CASE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.pair:
        print(json.dumps(measure_pair(*args.pair, args.reps, args.threads, args.before)))
        return
    if args.memory:
        print(json.dumps(measure_memory(*args.memory, args.threads, args.before)))
        return
    if args.check:
        print(json.dumps(check(args.check, args.before, not args.no_dense_check)))
        return

    def child(*extra: str) -> dict:
        cmd = [sys.executable, __file__, "--reps", str(args.reps), "--threads", str(args.threads),
               "--before", args.before, *(["--no-dense-check"] if args.no_dense_check else []), *extra]
        run = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return json.loads(run.stdout.strip().splitlines()[-1])

    pairs, memory, checks = [], [], {}
    for case in args.cases:
        checks[case] = child("--check", case)
        print(f"{case}: {json.dumps(checks[case])}", flush=True)
        modes = ("forward+backward",) if case == "train-step" else MODES
        for mode in modes:
            pr = child("--pair", case, mode)
            pairs.append(pr)
            print(f"  {mode:16s} before {pr['before_cpu_s'] * 1000:8.1f} ms CPU  after {pr['after_cpu_s'] * 1000:8.1f}"
                  f" ms CPU  load {pr['loadavg_1min']:.1f}", flush=True)
            for v in VERSIONS:
                memory.append(child("--memory", case, v, mode))

    rows = ["| case | mode | before CPU ms | after CPU ms | CPU speed-up | before wall ms | after wall ms "
            "| wall speed-up | before peak MB | after peak MB |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for pr in pairs:
        mb = {m["version"]: m["peak_mb"] for m in memory if m["case"] == pr["case"] and m["mode"] == pr["mode"]}
        rows.append(f"| {pr['case']} | {pr['mode']} | {pr['before_cpu_s'] * 1000:.1f} | {pr['after_cpu_s'] * 1000:.1f} "
                    f"| {pr['before_cpu_s'] / pr['after_cpu_s']:.2f}x | {pr['before_min_s'] * 1000:.1f} "
                    f"| {pr['after_min_s'] * 1000:.1f} | {pr['before_min_s'] / pr['after_min_s']:.2f}x "
                    f"| {mb['before']:.0f} | {mb['after']:.0f} |")
    table = "\n".join(rows)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(python=platform.python_version(), machine=platform.machine(), cases=CASES, before=args.before,
                threads=args.threads, reps=args.reps,
                note="times: best of reps, before/after alternated in one process; peak_mb = max RSS during "
                     "two runs minus RSS before the first, in a fresh process")
    args.out.write_text(json.dumps(dict(meta=meta, checks=checks, timings=pairs, memory=memory, table=table),
                                   indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
