"""Generator forward speed: ours against NVlabs' own code on the same weights, in one run.

    python benchmarks/generator.py --nvlabs-repo PATH [--res 64 256] [--batch 8] [--reps 5]

PATH is a checkout of NVlabs/stylegan2-ada-pytorch (never committed here; it needs `requests` importable).
Time: both implementations in one process, calls interleaved, best of --reps, so that other load on
the machine hits both alike. Memory: each implementation in a fresh subprocess, peak resident set after
a forward pass. Both get identical weights; the table shows how far their images differ.
Prints a table and writes benchmarks/results/generator.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {
    # The CPU preset scale: what the built-in cars generator uses.
    64: dict(z_dim=128, w_dim=128, img_resolution=64, mapping_layers=2, channel_base=4096, channel_max=128,
             conv_clamp=256),
    # NVlabs' paper256 configuration.
    256: dict(z_dim=512, w_dim=512, img_resolution=256, mapping_layers=8, channel_base=16384, channel_max=512,
              conv_clamp=256),
}


def _nvlabs_kwargs(cfg: dict) -> dict:
    return dict(z_dim=cfg["z_dim"], w_dim=cfg["w_dim"], c_dim=0, img_resolution=cfg["img_resolution"], img_channels=3,
                mapping_kwargs=dict(num_layers=cfg["mapping_layers"]),
                synthesis_kwargs=dict(channel_base=cfg["channel_base"], channel_max=cfg["channel_max"],
                                      conv_clamp=cfg["conv_clamp"], num_fp16_res=0))


def _build(impl: str, res: int, nvlabs_repo: str | None):
    """(forward function, ws, our generator) for one implementation with the shared seeded weights."""
    import torch

    from ganfactory.gan import Generator, GeneratorConfig

    torch.manual_seed(0)
    ours = Generator(GeneratorConfig(**CONFIGS[res])).eval()
    with torch.no_grad():
        for name, p in ours.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
    if impl == "ours":
        return (lambda ws: ours.synthesis(ws, noise_mode="const")), ours
    sys.path.insert(0, nvlabs_repo)
    from training.networks import Generator as NvGenerator

    nv = NvGenerator(**_nvlabs_kwargs(CONFIGS[res])).eval()
    nv.load_state_dict(ours.state_dict())
    return (lambda ws: nv.synthesis(ws, noise_mode="const", force_fp32=True)), ours


def measure(mode: str, impls: list[str], res: int, batch: int, reps: int, nvlabs_repo: str | None) -> dict:
    """Runs inside a subprocess. mode 'time': all impls in this process, calls interleaved so that load
    from other processes hits them alike; the best of ``reps`` counts. mode 'memory': one impl, peak RSS."""
    import torch

    built = {impl: _build(impl, res, nvlabs_repo) for impl in impls}
    ours = built[impls[0]][1]
    ws = ours.mapping(torch.randn(batch, ours.z_dim, generator=torch.Generator().manual_seed(1)),
                      truncation_psi=0.7).detach()
    out = {}
    with torch.no_grad():
        reference = ours.synthesis(ws)
        for impl, (forward, _) in built.items():
            out[impl] = {"max_diff_vs_ours": float((forward(ws) - reference).abs().max()), "times": []}
        if mode == "memory":
            return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        for _ in range(reps):
            for impl, (forward, _) in built.items():
                t0 = time.perf_counter()
                forward(ws)
                out[impl]["times"].append(time.perf_counter() - t0)
    return {impl: {"seconds_per_batch": min(v["times"]), "max_diff_vs_ours": v["max_diff_vs_ours"]}
            for impl, v in out.items()}


def _child(args_list: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args_list], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nvlabs-repo", default=os.environ.get("NVLABS_SG2ADA"),
                    help="checkout of NVlabs/stylegan2-ada-pytorch (or set NVLABS_SG2ADA)")
    ap.add_argument("--res", type=int, nargs="+", default=[64, 256], choices=sorted(CONFIGS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "generator.json"))
    ap.add_argument("--child", nargs=3, metavar=("MODE", "IMPLS", "RES"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        mode, impls, res = args.child[0], args.child[1].split(","), int(args.child[2])
        print(json.dumps(measure(mode, impls, res, args.batch, args.reps, args.nvlabs_repo)))
        return
    impls = ["ours"]
    if args.nvlabs_repo and (Path(args.nvlabs_repo) / "training" / "networks.py").exists():
        impls.append("nvlabs")
    else:
        print("note: no --nvlabs-repo given (or not a stylegan2-ada-pytorch checkout): measuring ours alone")
    common = ["--batch", str(args.batch), "--reps", str(args.reps)]
    common += ["--nvlabs-repo", args.nvlabs_repo] if args.nvlabs_repo else []
    rows = []
    for res in args.res:
        timing = _child(["--child", "time", ",".join(impls), str(res), *common])
        for impl in impls:
            mem = _child(["--child", "memory", impl, str(res), *common])
            t = timing[impl]["seconds_per_batch"]
            rows.append(dict(impl=impl, res=res, batch=args.batch, seconds_per_batch=t,
                             images_per_s=args.batch / t, peak_rss_mb=mem["peak_rss_mb"],
                             max_diff_vs_ours=timing[impl]["max_diff_vs_ours"]))
    header = ("res", "impl", "img/s", "s/batch", "peak RSS MB", "max |diff|", "ours/nvlabs")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (4, 7, 8, 8, 12, 10, 12), strict=True)))
    for r in rows:
        base = next((b for b in rows if b["res"] == r["res"] and b["impl"] == "nvlabs"), None)
        ratio = f"{r['images_per_s'] / base['images_per_s']:.2f}x" if base and r["impl"] == "ours" else ""
        print(f"{r['res']:>4} {r['impl']:>7} {r['images_per_s']:>8.2f} {r['seconds_per_batch']:>8.3f} "
              f"{r['peak_rss_mb']:>12.0f} {r['max_diff_vs_ours']:>10.1e} {ratio:>12}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    import torch

    Path(args.out).write_text(json.dumps({"rows": rows, "machine": platform.processor() or platform.machine(),
                                          "threads": torch.get_num_threads(), "torch": torch.__version__}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
