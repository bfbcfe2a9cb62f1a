"""``ganfactory bench cars``: the end-to-end cars benchmark (four arms, results.json, an HTML report)."""

from __future__ import annotations

import argparse
import json
import time

from ganfactory.cli.options import add_device, add_generator, check_out_dir
from ganfactory.errors import GanfactoryError


def register(sub) -> None:
    from ganfactory.cli.demo import DEFAULT_GENERATOR

    p = sub.add_parser("bench", help="end-to-end benchmarks", description="End-to-end benchmarks.")
    verbs = p.add_subparsers(dest="verb", metavar="BENCHMARK")
    verbs.required = True
    c = verbs.add_parser(
        "cars", help="the cars benchmark: few-shot, DatasetGAN (inversion, annotator), fully supervised",
        description="Reads the generator (--generator) and the cars splits few/full/test (--data DIR holding them, or "
                    "built into OUT/data with the cars builder). Trains one network per arm with the same budget, "
                    "scores each on test (mIoU, per-class IoU, PCK@0.1), sweeps the number of synthetic samples with "
                    "and without uncertainty filtering, and writes OUT/results.json and OUT/report/index.html. "
                    "Every stage is skipped when its result exists: run the same command again to resume.")
    c.add_argument("--out", required=True, help="run directory")
    add_generator(c, default=DEFAULT_GENERATOR, help=f"generator (default: {DEFAULT_GENERATOR})")
    c.add_argument("--data", default=None, help="directory holding the few, full and test splits (default: build)")
    c.add_argument("--quick", action="store_true", help="tiny splits and budgets (CI: proves the wiring)")
    c.add_argument("--arms", default=None, help="comma-separated arms (default: few,inversion,annotator,full)")
    c.add_argument("--arch", choices=["unet", "deeplabv3"], default=None, help="the network of every arm")
    c.add_argument("--iterations", type=int, default=None, help="training iterations of every arm")
    c.add_argument("--samples", type=int, default=None, help="synthetic candidates of the DatasetGAN arms")
    c.add_argument("--sweep", default=None, help="comma-separated candidate counts of the sweep")
    c.add_argument("--synth-workers", type=int, default=None, help="synthesis processes")
    c.add_argument("--threads", type=int, default=None, help="intra-op threads (default 1: fastest on a busy CPU)")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    add_device(c)
    c.set_defaults(func=run_cars)


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise GanfactoryError(f"{flag} takes integers separated by commas, got {text!r}") from None


def run_cars(args: argparse.Namespace) -> None:
    check_out_dir(args.out)
    import dataclasses

    from ganfactory.bench import bench_config, run_bench

    overrides = {"device": args.device}
    if args.arms:
        overrides["arms"] = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    if args.samples is not None:
        overrides["synthetic_samples"] = args.samples
    if args.sweep is not None:
        overrides["sweep_sizes"] = _ints(args.sweep, "--sweep")
    elif args.samples is not None:           # the default sweep, cut at the number of samples
        default = bench_config(args.generator, args.quick).sweep_sizes
        overrides["sweep_sizes"] = tuple(n for n in default if n <= args.samples) or (args.samples,)
    if args.synth_workers is not None:
        overrides["synth_workers"] = args.synth_workers
    if args.threads is not None:
        if args.threads < 1:
            raise GanfactoryError(f"--threads must be at least 1, got {args.threads}")
        overrides["threads"] = args.threads
    config = bench_config(args.generator, args.quick, **overrides)
    train = {}
    if args.arch:
        train["architecture"] = args.arch
    if args.iterations is not None:
        train["iterations"] = args.iterations
    if args.threads is not None:
        train["threads"] = args.threads
    if train:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, **train))
    t0 = time.perf_counter()
    results = run_bench(config, args.out, args.data, progress=not args.quiet)
    summary = {arm: {"miou": round(s["miou"], 4), **({"pck": round(s["pck"]["pck"], 4)} if "pck" in s else {})}
               for arm, s in results["arms"].items()}
    print(json.dumps({"quick": results["quick"], "arms": summary,
                      "seconds": round(time.perf_counter() - t0, 1)}))
