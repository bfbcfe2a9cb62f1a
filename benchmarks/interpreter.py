"""Train the interpreter on 16 annotated images: ours against DatasetGAN's dense per-pixel table.

What is compared (same generator, same labels, same classifier, same optimiser, same batches of 64 pixels, same
evaluation): only how the training rows are made.

* ours: ``ganfactory.label.collect_pixels`` synthesizes one annotated image at a time and gathers features at
  ``--pixels-per-image`` sampled positions from the native-resolution maps (plus held-out pixels).
* naive (DatasetGAN's train_interpreter.py): every layer of every annotated image resized to the label
  resolution and concatenated into one table of every pixel x every feature, kept in float16, then converted to a
  float32 training copy (both alive at the peak, as in the original).

Each (method, resolution) runs in its own child process. Memory: the child's peak RSS during the method (the
high-water mark is reset when the method starts and after each evaluation, which is the harness's), and that
peak minus the RSS just before the method starts
(after imports, the generator, the evaluation set, one evaluation and one synthesis): what the method adds.
Time: wall time of making the rows plus the optimiser steps, with evaluation paused. The held-out accuracy (all
pixels of 4 other annotated images, predicted with the factorised first layer) is measured every
``--eval-every`` steps; "time to target" is the first evaluation at which a method reaches
``min(best ours, best naive) - 0.5 points``. Where the naive table cannot fit in the memory available, the naive
run is skipped and the bytes it would need are stated.

Annotations are made without a person: k-means colour clusters (4 classes) of the generator's own images
(``ganfactory.annotate.synthetic``) at truncation 0.5. The generator is a StyleGAN2 with random weights and
channels ``min(4096 // res, 128)``, read at every layer (conv and ToRGB: D = 1039 / 1141 / 1160 at 64 / 256 /
512 px): not a trained model, but the feature shapes and the pipeline are the real ones. Numbers for the
trained cars generator remain to be measured when cars64 lands.

Run: ``.venv/bin/python benchmarks/interpreter.py`` (about 5-10 minutes on 2 busy cores); ``--quick`` for 64 px
only. Writes benchmarks/results/interpreter.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def trim() -> None:
    """Give freed heap memory back to the OS (glibc ``malloc_trim``), so that RSS shows what is in use."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak() -> bool:
    """Reset this process's RSS high-water mark (Linux: ``echo 5 > /proc/self/clear_refs``), so that the peak
    measured afterwards belongs to the method, not to the setup before it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    """VmHWM (the high-water mark since the last reset), else ru_maxrss."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def bench_generator(res: int):
    import torch

    from ganfactory.gan import Generator, GeneratorConfig

    torch.manual_seed(0)
    config = GeneratorConfig(z_dim=128, w_dim=128, img_resolution=res, channel_base=4096, channel_max=128,
                             mapping_layers=2)
    return Generator(config).eval()


def bench_taps(G):
    """Every layer, conv and ToRGB: the colour-cluster labels are a function of the image, which the ToRGB
    outputs carry directly (with conv layers only, 16 random-generator images leave colour poorly learnable)."""
    from ganfactory.label import FeatureTaps

    return FeatureTaps(tuple(G.synthesis.layer_names())).resolve(G)


# ------------------------------------------------------------------------------------------ child

def child(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from ganfactory.annotate.synthetic import cluster_centroids, colour_clusters
    from ganfactory.gan.latent import Latent, synthesize_latents
    from ganfactory.gan.sampling import to_uint8
    from ganfactory.label import FeatureTaps, InterpreterConfig, PixelMLP, TrainingImage, collect_pixels
    from ganfactory.label.features import concat_resized, factorised_first_layer_nhwc
    from ganfactory.schema import Schema

    torch.set_num_threads(args.threads)
    res = args.res
    G = bench_generator(res)
    taps = bench_taps(G)
    seeds = list(range(args.images + args.test_images))
    latents = [Latent.from_seed(G, s, args.psi) for s in seeds]
    images = np.concatenate([to_uint8(synthesize_latents(G, [lat])) for lat in latents])
    centres = colour_clusters(images[:, ::max(1, res // 64), ::max(1, res // 64)], args.classes)
    labels = cluster_centroids(images, centres)
    schema = Schema.from_names(["background"] + [f"c{i}" for i in range(1, args.classes + 1)])
    train = [TrainingImage(latents[i], labels[i]) for i in range(args.images)]
    test_feats = []
    for i in range(args.images, len(seeds)):
        _, f = synthesize_latents(G, [latents[i]], return_features=True)
        test_feats.append({k: f[k] for k in taps.layers})
    test_labels = torch.from_numpy(labels[args.images:].astype(np.int64))
    del images

    @torch.no_grad()
    def accuracy(model: PixelMLP) -> float:
        model.eval()
        correct = 0
        for feats, lab in zip(test_feats, test_labels, strict=True):
            h = factorised_first_layer_nhwc(feats, taps.layers, res, model.fc1.weight, model.fc1.bias)
            pred = model.head(h.reshape(-1, h.shape[-1])).argmax(1)
            correct += int((pred == lab.reshape(-1)).sum())
        model.train()
        return correct / test_labels.numel()

    warm = PixelMLP(taps.dim, args.classes + 1, (128, 32))
    warm.reset(torch.Generator().manual_seed(0))
    accuracy(warm)                       # the harness's evaluation buffers belong to the baseline, not the method
    warm_opt = torch.optim.Adam(warm.parameters(), lr=1e-3)
    for _ in range(3):                   # page in the code of the training step (shared-library pages count in RSS)
        warm_opt.zero_grad()
        torch.nn.functional.cross_entropy(warm(torch.randn(64, taps.dim)), torch.zeros(64, dtype=torch.long)).backward()
        warm_opt.step()
    _, f = synthesize_latents(G, [latents[0]], return_features=True)     # and so do the generator's
    del f, warm, warm_opt
    setup_peak = peak_rss()
    trim()
    reset = reset_peak()
    rss_before = rss_bytes()
    t0 = time.perf_counter()
    if args.method == "ours":
        config = InterpreterConfig(taps=FeatureTaps(taps.layers), pixels_per_image=args.pixels_per_image,
                                   holdout_pixels_per_image=256, seed=args.seed)
        pixels = collect_pixels(G, train, schema, config)
        x, y = pixels.x, pixels.y
    else:
        rows = res * res
        table = torch.empty(args.images * rows, taps.dim, dtype=torch.float16)     # DatasetGAN: fp16 features
        for i, im in enumerate(train):
            _, f = synthesize_latents(G, [im.latent], return_features=True)
            dense = concat_resized(f, taps.layers, res)[0]                       # [D, S, S] one image
            table[i * rows:(i + 1) * rows] = dense.reshape(taps.dim, rows).t().half()
            del f, dense
        y = torch.from_numpy(labels[:args.images].astype(np.int64)).reshape(-1)
        x = table.float()                                                        # its float32 training copy
    setup = time.perf_counter() - t0

    gen = torch.Generator().manual_seed(args.seed + 1)
    model = PixelMLP(taps.dim, args.classes + 1, (128, 32))
    model.reset(gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = torch.nn.CrossEntropyLoss()
    curve, step, best, stale, clock, peaks = [], 0, 0.0, 0, setup, []
    model.train()
    while step < args.max_steps and stale < args.patience:
        order = torch.randperm(x.shape[0], generator=gen)
        t = time.perf_counter()
        for start in range(0, x.shape[0] - 1, 64):
            idx = order[start:start + 64]
            opt.zero_grad(set_to_none=True)
            crit(model(x[idx]), y[idx]).backward()
            opt.step()
            step += 1
            if step % args.eval_every == 0:
                clock += time.perf_counter() - t
                peaks.append(peak_rss())          # the method's peak so far; the evaluation is the harness's
                acc = accuracy(model)
                trim()
                reset_peak()
                curve.append([round(clock, 3), step, round(acc, 5)])
                best, stale = (acc, 0) if acc > best + 1e-4 else (best, stale + 1)
                if step >= args.max_steps or stale >= args.patience:
                    break
                t = time.perf_counter()
        else:
            clock += time.perf_counter() - t
    peak = max([*peaks, peak_rss()])
    return {"setup_peak_rss": setup_peak, "peak_reset": reset, "method": args.method, "res": res, "dim": taps.dim,
            "rows": int(x.shape[0]), "setup_seconds": setup,
            "peak_rss": peak, "rss_before": rss_before, "added_peak": peak - rss_before, "curve": curve,
            "best_accuracy": best, "steps": step, "threads": args.threads}


# ------------------------------------------------------------------------------------------ a trained generator

def trained_generator_report(args: argparse.Namespace) -> dict:
    """The library end to end on a trained generator: train the interpreter (ensemble of 10; conv taps as
    DatasetGAN, and every layer) and its keypoint heads on 16 annotated images, score 16 held-out annotated
    images (pixel accuracy, mIoU, keypoint error), synthesize samples and draw their label overlays into
    benchmarks/results/overlays_<name>.png. The 32 annotated images are labelled by colour clusters (one
    keypoint per cluster: its centroid), or with ``--annotator RUN`` by that segmentation network (the cars
    benchmark's simulated annotator: real part names and keypoints)."""
    import tempfile

    import numpy as np
    import torch
    from PIL import Image

    from ganfactory.annotate.synthetic import make_cluster_annotations, make_network_annotations
    from ganfactory.annotate.training import training_images
    from ganfactory.cli.interpreter import overlay
    from ganfactory.datasets.labeled import LabeledDataset
    from ganfactory.gan import load_generator
    from ganfactory.gan.sampling import image_grid
    from ganfactory.label import FeatureTaps, InterpreterConfig, train_interpreter
    from ganfactory.metrics import pixel_metrics
    from ganfactory.synth import SynthConfig, synthesize

    torch.set_num_threads(args.threads)
    name = args.generator
    G = load_generator(name)
    out: dict = {"generator": name, "annotations": args.annotator or f"{args.classes} colour clusters",
                 "truncation_psi": args.psi}
    with tempfile.TemporaryDirectory() as tmp:
        if args.annotator:
            from ganfactory.downstream import load_segmenter

            store = make_network_annotations(G, Path(tmp) / "ann", range(32), load_segmenter(args.annotator),
                                             truncation_psi=args.psi)
        else:
            store = make_cluster_annotations(G, Path(tmp) / "ann", range(32), args.classes, truncation_psi=args.psi,
                                             keypoints=True)
        images = training_images(store, G)
        for taps_name, taps in (("conv", FeatureTaps()), ("all", FeatureTaps(tuple(G.synthesis.layer_names())))):
            config = InterpreterConfig(taps=taps, num_models=10, seed=args.seed)
            t0 = time.perf_counter()
            interp, report = train_interpreter(G, images[:16], store.schema, config, progress=False)
            seconds = time.perf_counter() - t0
            _, pred = interp.predict(G, [im.latent for im in images[16:]])
            metrics = pixel_metrics(pred.labels, np.stack([im.label for im in images[16:]]), store.schema.class_ids)
            truth = np.array([[p[:2] if p[2] else [np.nan, np.nan] for p in im.keypoints]   # visible ones
                              for im in images[16:]], dtype=float)
            err = np.linalg.norm(pred.keypoints[..., :2] - truth, axis=-1)
            out[taps_name] = {"train_seconds": seconds, "heldout_pixel_accuracy_of_train_images":
                              report.heldout_accuracy, **metrics,
                              "keypoint_median_error_px": float(np.nanmedian(err)),
                              "keypoints_within_3px": float(np.nanmean(err <= 3))}
            interp.save(Path(tmp) / f"interp-{taps_name}")
        cfg = SynthConfig(generator=name, interpreter=str(Path(tmp) / "interp-all"), seeds=tuple(range(1000, 1064)),
                          truncation_psi=args.psi, candidates_per_shard=32, filter_fraction=0.1)
        synthesize(cfg, Path(tmp) / "ds", progress=False)
        ds = LabeledDataset(Path(tmp) / "ds")
        colors = {c.id: c.color for c in ds.schema.classes}
        table = np.zeros((256, 3), np.uint8)
        for k, c in colors.items():
            table[k] = c
        tiles = [np.concatenate([ds.image(i), table[ds.label(i)], overlay(ds.image(i), ds.label(i), colors, 0.5)],
                                axis=1) for i in range(len(ds))]
        grid = image_grid(np.stack(tiles), cols=4)
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"overlays_{Path(name).name}.png"
        Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(path)
        out["overlays"] = str(path)
        out["synthesized"] = len(ds)
    return out


# ------------------------------------------------------------------------------------------ parent

def run_child(method: str, res: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", method, "--res-child", str(res), "--images", str(args.images),
           "--test-images", str(args.test_images), "--pixels-per-image", str(args.pixels_per_image),
           "--max-steps", str(args.max_steps), "--eval-every", str(args.eval_every), "--patience", str(args.patience),
           "--threads", str(args.threads), "--classes", str(args.classes), "--seed", str(args.seed),
           "--psi", str(args.psi)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_to(curve: list, target: float) -> float | None:
    return next((t for t, _, acc in curve if acc >= target), None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--res", type=int, nargs="+", default=[64, 256, 512])
    p.add_argument("--quick", action="store_true", help="64 px only, fewer steps")
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--test-images", type=int, default=4)
    p.add_argument("--pixels-per-image", type=int, default=2048, help="ours: sampled training pixels per image")
    p.add_argument("--max-steps", type=int, default=6000)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--patience", type=int, default=6, help="evaluations without improvement before stopping")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--psi", type=float, default=0.5, help="truncation of the annotated samples")
    p.add_argument("--trained", action="store_true",
                   help="instead: train and score the interpreter on a trained generator (--generator) and draw "
                        "synthesized label overlays")
    p.add_argument("--generator", default="tiny32", help="with --trained: checkpoint or built-in name")
    p.add_argument("--annotator", default=None,
                   help="with --trained: a segmentation run (ganfactory segment train, e.g. the cars benchmark's "
                        "arms/full/net) that labels the annotated images, instead of colour clusters")
    p.add_argument("--child", choices=["ours", "naive"], help=argparse.SUPPRESS)
    p.add_argument("--res-child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.method, args.res = args.child, args.res_child
        print(json.dumps(child(args)))
        return
    if args.trained:
        result = trained_generator_report(args)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"interpreter_{Path(args.generator).name}.json").write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result, indent=1))
        return
    if args.quick:
        args.res, args.max_steps = [64], 1500
    rows = []
    for res in args.res:
        ours = run_child("ours", res, args)
        need = args.images * res * res * ours["dim"] * 6                     # fp16 table + fp32 copy
        avail = mem_available()
        naive = None
        if need < 0.7 * avail:
            naive = run_child("naive", res, args)
        row = {"res": res, "dim": ours["dim"], "ours": ours, "naive": naive, "naive_table_bytes": need,
               "mem_available": avail}
        if naive is not None:
            target = min(ours["best_accuracy"], naive["best_accuracy"]) - 0.005
            row.update(target=target, ours_time_to_target=time_to(ours["curve"], target),
                       naive_time_to_target=time_to(naive["curve"], target),
                       memory_ratio_added=naive["added_peak"] / max(ours["added_peak"], 1),
                       memory_ratio_peak=naive["peak_rss"] / ours["peak_rss"])
        rows.append(row)
        print(f"done {res} px", file=sys.stderr)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "interpreter.json"
    out.write_text(json.dumps({"args": {k: v for k, v in vars(args).items() if not k.endswith("child")},
                               "rows": rows}, indent=1) + "\n")
    gib = 2**30
    print(f"16 annotated images, D = every layer, 1 model (batch 64, Adam 1e-3), {args.threads} thread(s)")
    print("| res | D | method | training rows | peak RSS GiB | added by method GiB | rows built s | best held-out acc "
          "| time to target s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        for name in ("ours", "naive"):
            m = r[name]
            if m is None:
                print(f"| {r['res']} | {r['dim']} | naive | {args.images * r['res'] ** 2} | skipped: its table needs "
                      f"{r['naive_table_bytes'] / gib:.1f} GiB (fp16 + fp32 copy), {r['mem_available'] / gib:.1f} "
                      "GiB available | | | | |")
                continue
            t = r.get(f"{name}_time_to_target")
            print(f"| {r['res']} | {r['dim']} | {name} | {m['rows']} | {m['peak_rss'] / gib:.2f} | "
                  f"{m['added_peak'] / gib:.3f} | {m['setup_seconds']:.1f} | {m['best_accuracy']:.4f} | "
                  f"{'-' if t is None else f'{t:.1f}'} |")
        if r["naive"] is not None:
            print(f"| {r['res']} | | ratio naive/ours | | {r['memory_ratio_peak']:.1f}x | "
                  f"{r['memory_ratio_added']:.1f}x | | target {r['target']:.4f} | |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
