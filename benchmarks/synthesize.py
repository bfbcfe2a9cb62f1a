"""Synthesis throughput of the factory: samples/s, split into generator time, labelling time and writing time.

For each resolution, one shard is written by ``ganfactory.synth.write_synth_shard`` (the function every worker
runs), which times its three stages, after one warm-up shard. The generator is a StyleGAN2 with random weights
at NVlabs' paper256 widths (channel_base 16384) and at config-f widths (32768, DatasetGAN's generators),
channel_max 512, 8 mapping layers. The interpreter is DatasetGAN's classifier with random weights (timing does
not depend on them) over every conv layer, as an ensemble of 10 and of 1, eager and with the resize-and-sum
fused by ``torch.compile`` (``SynthConfig.compile``; the warm-up shard pays the compilation). Next to it, the
labelling time of the naive path (resize all layers, concatenate, full first layer) for one image shows what the
factorisation saves. One intra-op thread, as the factory's workers use.

The FLOP ratio column counts matrix products and convolutions of one sample (FlopCounterMode): the time ratio an
implementation of the same ensemble reaches when it runs as many FLOP/s as the generator.

Run: ``.venv/bin/python benchmarks/synthesize.py [--res 64 256] [--samples 4]``. Writes
benchmarks/results/synthesize.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from ganfactory.gan import Generator, GeneratorConfig
from ganfactory.label import FeatureTaps, Interpreter, PixelMLP
from ganfactory.label.features import concat_resized
from ganfactory.schema import Schema
from ganfactory.synth import SynthConfig, plan_synthesis, write_synth_shard

RESULTS = Path(__file__).resolve().parent / "results"


def generator(res: int, channel_base: int) -> Generator:
    torch.manual_seed(0)
    return Generator(GeneratorConfig(img_resolution=res, channel_base=channel_base, channel_max=512,
                                     mapping_layers=8)).eval()


def interpreter(G: Generator, models: int, classes: int = 8) -> Interpreter:
    taps = FeatureTaps().resolve(G)
    schema = Schema.from_names(["background"] + [f"part{i}" for i in range(1, classes)])
    nets = []
    for m in range(models):
        net = PixelMLP(taps.dim, classes, (128, 32))
        net.reset(torch.Generator().manual_seed(m))
        nets.append(net.eval())
    return Interpreter(taps, schema, nets)


@torch.no_grad()
def naive_label_seconds(G: Generator, interp: Interpreter) -> float:
    """One image labelled the DatasetGAN way: the dense [D, S, S] tensor, then every full model per pixel."""
    from ganfactory.gan.latent import Latent, synthesize_latents

    _, feats = synthesize_latents(G, [Latent.from_seed(G, 0)], return_features=True)
    t0 = time.perf_counter()
    rows = concat_resized(feats, interp.taps.layers, interp.taps.label_resolution)[0]
    rows = rows.reshape(rows.shape[0], -1).t()
    for model in interp.classifiers:
        for start in range(0, rows.shape[0], 16384):
            torch.softmax(model(rows[start:start + 16384]), -1)
    return time.perf_counter() - t0


@torch.no_grad()
def flop_ratio(G: Generator, interp: Interpreter) -> tuple[float, float]:
    """(generator GFLOP, labelling GFLOP) of one sample, as torch's FlopCounterMode counts them (matrix products
    and convolutions only; resizing and elementwise work are left out). Why: the ensemble's arithmetic is fixed
    by DatasetGAN's architecture, so this ratio is what the measured one approaches as the code gets faster."""
    from torch.utils.flop_counter import FlopCounterMode

    from ganfactory.gan.latent import Latent, synthesize_latents

    with FlopCounterMode(display=False) as gen:
        _, feats = synthesize_latents(G, [Latent.from_seed(G, 0)], return_features=True)
    with FlopCounterMode(display=False) as lab:
        interp.predict_features({k: feats[k] for k in interp.taps.layers})
    return gen.get_total_flops() / 1e9, lab.get_total_flops() / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--res", type=int, nargs="+", default=[64, 256])
    p.add_argument("--samples", type=int, default=4, help="samples per measurement (one shard)")
    p.add_argument("--models", type=int, nargs="+", default=[10, 1], help="ensemble sizes")
    p.add_argument("--channel-base", type=int, nargs="+", default=[16384, 32768],
                   help="generator widths: 16384 = NVlabs paper256, 32768 = config-f (DatasetGAN's generators)")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for res, channel_base in [(r, c) for r in args.res for c in args.channel_base]:
        G = generator(res, channel_base)
        for models, compiled in [(m, c) for m in args.models for c in (False, True)]:
            interp = interpreter(G, models)
            with tempfile.TemporaryDirectory() as tmp:
                interp.save(Path(tmp) / "interp")
                config = SynthConfig(generator=f"random-paper256-{res}", interpreter=str(Path(tmp) / "interp"),
                                     seeds=tuple(range(args.samples)), candidates_per_shard=args.samples,
                                     batch_size=2, coco_object=None, compile=compiled)
                interp.compile = compiled
                warm = plan_synthesis(config, Path(tmp) / "warm", interp.schema, res)
                write_synth_shard(warm, config, 0, G, interp)                # first calls allocate and page in
                plan = plan_synthesis(config, Path(tmp) / "ds", interp.schema, res)
                t0 = time.perf_counter()
                stats = write_synth_shard(plan, config, 0, G, interp)
                total = time.perf_counter() - t0
            naive = naive_label_seconds(G, interp) if models == args.models[0] and not compiled else None
            gen_gflop, label_gflop = flop_ratio(G, interp)
            n = stats.samples
            rows.append({"res": res, "channel_base": channel_base, "models": models, "compiled": compiled,
                         "dim": interp.taps.dim,
                         "samples": n,
                         "samples_per_s": n / total, "generator_s_per_sample": stats.generator_seconds / n,
                         "label_s_per_sample": stats.label_seconds / n, "write_s_per_sample": stats.write_seconds / n,
                         "label_over_generator": stats.label_seconds / stats.generator_seconds,
                         "generator_gflop": gen_gflop, "label_gflop": label_gflop,
                         "naive_label_s_per_sample": naive})
            print(json.dumps(rows[-1]))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "synthesize.json"
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1) + "\n")
    print("| res | channel_base | D | models | labeller | samples/s | generator s/sample | labelling s/sample | "
          "writing s/sample | labelling / generator | FLOP ratio | naive labelling s/sample |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        naive = "" if r["naive_label_s_per_sample"] is None else f"{r['naive_label_s_per_sample']:.2f}"
        cells = [r["res"], r["channel_base"], r["dim"], r["models"], "compiled" if r["compiled"] else "eager",
                 f"{r['samples_per_s']:.3f}",
                 f"{r['generator_s_per_sample']:.3f}",
                 f"{r['label_s_per_sample']:.3f}", f"{r['write_s_per_sample']:.3f}",
                 f"{r['label_over_generator']:.2f}", f"{r['label_gflop'] / r['generator_gflop']:.2f}", naive]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
