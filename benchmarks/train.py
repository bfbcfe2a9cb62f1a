"""Training speed: one full StyleGAN2 iteration of our Trainer against NVlabs' own training step, in one run.

    PYTHONPATH=/path/with/requests python benchmarks/train.py --nvlabs-repo PATH [--res 32 64] [--reps 3]
        [--steps 2] [--threads 1] [--variants diffaug channels_last threads=2]

PATH is a checkout of NVlabs/stylegan2-ada-pytorch (never committed here; it needs `requests` importable).
One iteration = G main step, D main step, lazy R1 every ``r1_interval`` D steps (amortised), G_ema update:
presets cpu32 (32 px) and cpu64 (64 px), synthetic uint8 images, no augmentation and no mirroring for the
comparison. NVlabs' side is their own step on the same architecture and hyper-parameters:
``training.networks.Generator/Discriminator``, ``training.loss.StyleGAN2Loss.accumulate_gradients`` phases
Gmain, Dmain and Dreg (same interval, gain = interval), their Adam settings (lr and betas corrected for
lazy regularisation), nan_to_num of the gradients and their G_ema update; no path length, no mixing, no
augment pipe. On a CPU their custom ops run their reference implementations: the baseline a CPU user gets.

Time: every implementation in one process, iterations interleaved, the best of --reps counts, so that other
load on the machine hits all alike. Each rep runs --steps iterations without R1 and one with it:
s/iteration = best iteration without R1 + best R1 phase / r1_interval; s/kimg = s/iteration * 1000 / batch.
Variants are our optimisations, each a row with its ratio against plain ``ours`` in the same process:
``diffaug`` (DiffAugment on; an extra cost, not an optimisation), ``channels_last`` (TrainConfig.channels_last)
and ``threads=N`` (ours at N intra-op threads; the others run at --threads). On a CPU busy with other work,
``threads=2`` is by far the slowest row and takes most of the run time: drop it with --variants for a quick run.
Memory: each implementation in a fresh subprocess, peak resident set after two iterations (one with R1).
Prints a table and writes benchmarks/results/train.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

PHASES = ("G", "D", "R1", "EMA")


def _images(res: int, n: int = 256):
    import torch

    return torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def _config(res: int, variant: str):
    from ganfactory.gan import augment as aug
    from ganfactory.gan.train import TrainConfig

    return TrainConfig(data="synthetic", out="unused", preset=f"cpu{res}", mirror=False, metric_generated=0,
                       augment=aug.POLICIES if variant == "diffaug" else (),
                       channels_last=variant == "channels_last")


class _Ours:
    """Our Trainer; ``iteration(r1)`` runs Trainer.step() and returns its phase times from the calls it makes
    (G optimiser step, D optimiser step, [R1 optimiser step], G_ema update)."""

    def __init__(self, res: int, variant: str):
        from ganfactory.gan.train import Trainer

        self.trainer = t = Trainer(_config(res, variant), _images(res), progress=False)
        self.batch, self.r1_interval = t.cfg.batch, t.cfg.r1_interval
        self.threads = int(variant.split("=")[1]) if variant.startswith("threads=") else None
        self.marks: list[float] = []
        apply, ema = t._apply, t._update_ema

        def timed_apply(module, opt, loss):
            apply(module, opt, loss)
            self.marks.append(time.perf_counter())

        def timed_ema():
            start = time.perf_counter()
            ema()
            self.ema = time.perf_counter() - start

        t._apply, t._update_ema = timed_apply, timed_ema

    def iteration(self, r1: bool) -> dict:
        t = self.trainer
        t.step_index = 0 if r1 else 1  # R1 runs when step_index % r1_interval == 0
        self.marks = []
        start = time.perf_counter()
        t.step()
        total = time.perf_counter() - start
        m = self.marks
        return {"total": total, "G": m[0] - start, "D": m[1] - m[0], "R1": m[2] - m[1] if r1 else 0.0,
                "EMA": self.ema}


class _Nvlabs:
    """NVlabs' training step assembled from their modules, as their training_loop runs the phases."""

    def __init__(self, res: int, nvlabs_repo: str, ours: _Ours | None):
        import torch

        sys.path.insert(0, nvlabs_repo)
        from torch_utils import misc
        from training.loss import StyleGAN2Loss
        from training.networks import Discriminator, Generator

        cfg = _config(res, "").resolved(res)
        self.cfg, self.batch, self.r1_interval, self.misc = cfg, cfg.batch, cfg.r1_interval, misc
        self.G = Generator(z_dim=cfg.z_dim, c_dim=0, w_dim=cfg.w_dim, img_resolution=res, img_channels=3,
                           mapping_kwargs=dict(num_layers=cfg.mapping_layers),
                           synthesis_kwargs=dict(channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                                                 conv_clamp=cfg.conv_clamp, num_fp16_res=0))
        self.D = Discriminator(c_dim=0, img_resolution=res, img_channels=3, channel_base=cfg.channel_base,
                               channel_max=cfg.channel_max, conv_clamp=cfg.conv_clamp, num_fp16_res=0,
                               epilogue_kwargs=dict(mbstd_group_size=cfg.mbstd_group_size,
                                                    mbstd_num_channels=cfg.mbstd_num_channels))
        if ours is not None:  # the same initial weights as ours
            self.G.load_state_dict(ours.trainer.G.state_dict())
            self.D.load_state_dict(ours.trainer.D.state_dict())
        self.G.train().requires_grad_(False)
        self.D.train().requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.loss = StyleGAN2Loss(torch.device("cpu"), self.G.mapping, self.G.synthesis, self.D,
                                  style_mixing_prob=cfg.style_mixing, r1_gamma=cfg.r1_gamma, pl_weight=0)
        # Their phase setup: lazy regularisation only where a regulariser is on (path length is off here).
        self.phases = {}
        for name, module, lr, interval in (("G", self.G, cfg.glr, None), ("D", self.D, cfg.dlr, cfg.r1_interval)):
            ratio = interval / (interval + 1) if interval else 1.0
            opt = torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=[b**ratio for b in (0.0, 0.99)],
                                   eps=1e-8)
            if interval is None:
                self.phases[name] = (name + "both", module, opt, 1)
            else:
                self.phases[name] = (name + "main", module, opt, 1)
                self.phases["R1"] = (name + "reg", module, opt, interval)
        self.images = _images(res)
        self.rng = torch.Generator().manual_seed(0)
        self.nimg = 0

    def _phase(self, key: str, real, z) -> None:
        import torch

        name, module, opt, interval = self.phases[key]
        c = torch.zeros([z.shape[0], 0])
        opt.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        self.loss.accumulate_gradients(phase=name, real_img=real, real_c=c, gen_z=z, gen_c=c, sync=True,
                                       gain=interval)
        module.requires_grad_(False)
        for p in module.parameters():
            if p.grad is not None:
                self.misc.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()

    def iteration(self, r1: bool) -> dict:
        import torch

        cfg, times = self.cfg, {}
        start = time.perf_counter()
        idx = torch.randint(0, len(self.images), (cfg.batch,), generator=self.rng)
        real = self.images[idx].to(torch.float32) / 127.5 - 1
        zs = torch.randn([3 * cfg.batch, cfg.z_dim], generator=self.rng).split(cfg.batch)
        mark = start
        for key, z in zip(("G", "D", "R1"), zs, strict=True):
            if key == "R1" and not r1:
                times[key] = 0.0
                continue
            self._phase(key, real, z)
            times[key], mark = time.perf_counter() - mark, time.perf_counter()
        self.nimg += cfg.batch
        with torch.no_grad():  # their G_ema update
            ema_nimg = min(cfg.ema_kimg * 1000, self.nimg * cfg.ema_rampup)
            beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
                b_ema.copy_(b)
        times["EMA"] = time.perf_counter() - mark
        times["total"] = time.perf_counter() - start
        return times


def _build(impl: str, res: int, nvlabs_repo: str | None, ours: _Ours | None = None):
    if impl == "nvlabs":
        return _Nvlabs(res, nvlabs_repo, ours)
    return _Ours(res, impl.partition("+")[2])


def measure(mode: str, impls: list[str], res: int, reps: int, steps: int, threads: int,
            nvlabs_repo: str | None) -> dict:
    """Runs inside a subprocess. mode 'time': all impls in this process, iterations interleaved so that load
    from other processes hits them alike; the best of ``reps`` counts. mode 'memory': one impl, peak RSS."""
    import torch

    torch.set_num_threads(threads)
    base_rss_mb = _rss_mb()
    built: dict = {}
    for impl in sorted(impls, key=lambda i: i == "nvlabs"):  # ours first: NVlabs' networks get the same weights
        built[impl] = _build(impl, res, nvlabs_repo, built.get("ours"))

    def run(impl: str, r1: bool) -> dict:
        b = built[impl]
        torch.set_num_threads(getattr(b, "threads", None) if mode == "time" and getattr(b, "threads", None)
                              else threads)
        try:
            return b.iteration(r1)
        finally:
            torch.set_num_threads(threads)

    for impl in impls:  # warm-up: allocator, oneDNN primitives, Adam state
        run(impl, r1=True)
        run(impl, r1=False)
    if mode == "memory":
        return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "base_rss_mb": base_rss_mb}
    samples: dict = {impl: {"plain": [], "r1": []} for impl in impls}
    for _ in range(reps):
        for impl in impls:
            for _ in range(steps):
                samples[impl]["plain"].append(run(impl, r1=False))
            samples[impl]["r1"].append(run(impl, r1=True))
    out = {}
    for impl in impls:
        b, plain, with_r1 = built[impl], samples[impl]["plain"], samples[impl]["r1"]
        best = {k: min(s[k] for s in plain) for k in ("total", "G", "D", "EMA")}
        best["R1"] = min(s["R1"] for s in with_r1)
        per_iter = best["total"] + best["R1"] / b.r1_interval
        out[impl] = {"seconds_per_iteration": per_iter, "s_per_kimg": per_iter * 1000 / b.batch,
                     "batch": b.batch, "r1_interval": b.r1_interval,
                     "phases": {k: best[k] for k in PHASES},
                     "threads": getattr(b, "threads", None) or threads}
    return out


def _rss_mb() -> float:
    """Resident set now (Linux), MB: the interpreter, torch and the imports, before any network exists."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _child(args_list: list[str]) -> dict:
    res = subprocess.run([sys.executable, __file__, *args_list], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"child {' '.join(args_list[:4])} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nvlabs-repo", default=os.environ.get("NVLABS_SG2ADA"),
                    help="checkout of NVlabs/stylegan2-ada-pytorch (or set NVLABS_SG2ADA)")
    ap.add_argument("--res", type=int, nargs="+", default=[32, 64], choices=[32, 64])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2, help="iterations without R1 per rep (plus one with R1)")
    ap.add_argument("--threads", type=int, default=1,
                    help="intra-op threads of the comparison (1: on a busy CPU more threads wait on each other)")
    ap.add_argument("--variants", nargs="*", default=["diffaug", "channels_last", "threads=2"],
                    help="our variants: diffaug, channels_last, threads=N")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "train.json"))
    ap.add_argument("--child", nargs=3, metavar=("MODE", "IMPLS", "RES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    for v in args.variants:
        if v not in ("diffaug", "channels_last") and not (v.startswith("threads=") and v[8:].isdigit()):
            ap.error(f"unknown variant {v!r}; choose from diffaug, channels_last, threads=N")

    if args.child:
        mode, impls, res = args.child[0], args.child[1].split(","), int(args.child[2])
        print(json.dumps(measure(mode, impls, res, args.reps, args.steps, args.threads, args.nvlabs_repo)))
        return
    impls = ["ours"] + [f"ours+{v}" for v in args.variants]
    if args.nvlabs_repo and (Path(args.nvlabs_repo) / "training" / "loss.py").exists():
        impls.insert(0, "nvlabs")
    else:
        print("note: no --nvlabs-repo given (or not a stylegan2-ada-pytorch checkout): measuring ours alone")
    common = ["--reps", str(args.reps), "--steps", str(args.steps), "--threads", str(args.threads)]
    common += ["--nvlabs-repo", args.nvlabs_repo] if args.nvlabs_repo else []
    rows = []
    for res in args.res:
        timing = _child(["--child", "time", ",".join(impls), str(res), *common])
        for impl in impls:
            mem = None if args.no_memory else _child(["--child", "memory", impl, str(res), *common])
            rows.append(dict(impl=impl, res=res, **timing[impl], **(mem or {})))
    header = ("res", "impl", "threads", "s/kimg", "s/iter", "G", "D", "R1/step", "EMA", "peak RSS MB",
              "(base)", "vs nvlabs", "vs ours")
    widths = (4, 19, 7, 7, 7, 7, 7, 7, 6, 11, 6, 9, 7)
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for r in rows:
        same = {b["impl"]: b for b in rows if b["res"] == r["res"]}
        vs_nv = f"{same['nvlabs']['s_per_kimg'] / r['s_per_kimg']:.2f}x" if "nvlabs" in same else ""
        vs_ours = f"{same['ours']['s_per_kimg'] / r['s_per_kimg']:.2f}x"
        ph = r["phases"]
        rss = [f"{r[k]:.0f}" if k in r else "" for k in ("peak_rss_mb", "base_rss_mb")]
        cells = (r["res"], r["impl"], r["threads"], f"{r['s_per_kimg']:.2f}", f"{r['seconds_per_iteration']:.3f}",
                 f"{ph['G']:.3f}", f"{ph['D']:.3f}", f"{ph['R1']:.3f}", f"{ph['EMA']:.4f}", *rss, vs_nv, vs_ours)
        print(" ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))
    print("vs: times faster than that implementation (higher is better). Phases: best seconds per step (G, D and")
    print("EMA every iteration, R1 every r1_interval-th, amortised in s/iter). base: RSS after imports, before the")
    print("networks. Other processes share this CPU: compare within a resolution, not absolute values across runs.")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    import torch

    Path(args.out).write_text(json.dumps({
        "rows": rows, "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg(), "torch": torch.__version__,
        "settings": {"reps": args.reps, "steps": args.steps, "threads": args.threads}}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
