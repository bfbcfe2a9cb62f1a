"""``ganfactory bench cars``: the end-to-end cars benchmark (four arms, results.json, an HTML report)."""

from __future__ import annotations

import argparse
import json
import time

from ganfactory.cli import bench_cars3d
from ganfactory.cli.options import add_device, add_generator, check_out_dir
from ganfactory.errors import GanfactoryError


def register(sub) -> None:
    from ganfactory.cli.demo import DEFAULT_GENERATOR

    p = sub.add_parser("bench", help="end-to-end benchmarks", description="End-to-end benchmarks.")
    verbs = p.add_subparsers(dest="verb", metavar="BENCHMARK")
    verbs.required = True
    c = verbs.add_parser(
        "cars", help="the cars benchmark: few-shot, DatasetGAN (inversion, annotator, + real labels), fully supervised",
        description="Reads the generator (--generator) and the cars splits few/full/test (seen cars) and "
                    "few-u/full-u/test-u (unseen cars) (--data DIR holding them, or built into OUT/data with the cars "
                    "builder). For each protocol trains one network per arm with the same budget, scores each on its "
                    "test split (mIoU, per-class IoU, PCK@0.1), sweeps the number of synthetic samples with and "
                    "without uncertainty filtering, optionally runs the annotator route with other generators "
                    "(--sweep-generators) against their KID, and writes OUT/results.json and OUT/report/index.html. "
                    "Sampling follows DatasetGAN (truncation 0.7 on the coarse layers, per-image noise); each change "
                    "has a switch to turn it off alone (the ablation). Every stage is skipped when its result exists: "
                    "run the same command again to resume.")
    c.add_argument("--out", required=True, help="run directory")
    add_generator(c, default=DEFAULT_GENERATOR, help=f"generator (default: {DEFAULT_GENERATOR})")
    c.add_argument("--data", default=None, help="directory holding the splits (few, full, test, few-u, full-u, test-u; "
                                                "default: build)")
    c.add_argument("--protocols", default=None, help="comma-separated protocols (default: seen,unseen)")
    c.add_argument("--quick", action="store_true", help="tiny splits and budgets (CI: proves the wiring)")
    c.add_argument("--arms", default=None, help="comma-separated arms (default: few,inversion,annotator,mixed,full)")
    c.add_argument("--arch", choices=["unet", "deeplabv3"], default=None, help="the network of every arm")
    c.add_argument("--iterations", type=int, default=None, help="training iterations of every arm")
    c.add_argument("--samples", type=int, default=None, help="synthetic candidates of the DatasetGAN arms")
    c.add_argument("--sweep", default=None, help="comma-separated candidate counts of the sweep")
    c.add_argument("--synth-workers", type=int, default=None, help="synthesis processes")
    c.add_argument("--threads", type=int, default=None, help="intra-op threads (default 1: fastest on a busy CPU)")
    c.add_argument("--interpreter-models", type=int, default=None, help="interpreter ensemble size (default 10)")
    c.add_argument("--interpreter-epochs", type=int, default=None, help="interpreter epochs at most (default 100)")
    c.add_argument("--interpreter-pixels", type=int, default=None,
                   help="training pixels per annotated image (default 8192: every pixel at 64 px)")
    c.add_argument("--inversion-steps", default=None, help="W,W+ steps of the inversion route (default 300,300)")
    c.add_argument("--sweep-generators", default=None,
                   help="comma-separated generator checkpoints: the annotator route with each, against its KID")
    c.add_argument("--kid-samples", type=int, default=None, help="images per KID of the generator sweep")
    g = c.add_argument_group("ablation switches (defaults: DatasetGAN's sampling and the fixes)")
    g.add_argument("--truncation-psi", type=float, default=None, help="truncation psi (default 0.7; 1 = none)")
    g.add_argument("--truncation-layers", choices=["coarse", "all"], default=None,
                   help="truncate the coarse half of the style layers (default) or all of them")
    g.add_argument("--noise-mode", choices=["random", "const"], default=None,
                   help="per-image noise from each seed (default) or one constant noise map for every image")
    g.add_argument("--no-keypoint-fix", action="store_true",
                   help="the old keypoint rules (every point on the car visible, heads on every point, peak > 0.3)")
    g.add_argument("--class-weighting", choices=["sqrt", "inverse", "none"], default=None,
                   help="the interpreter's class weights (default sqrt)")
    g.add_argument("--no-final-fit", action="store_true",
                   help="keep the early-stopped interpreter (no final fit on every annotated pixel)")
    g.add_argument("--mixed-real-share", type=float, default=None, help="arm 4's share of real images per batch")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    add_device(c)
    c.set_defaults(func=run_cars)
    bench_cars3d.register(verbs)


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
    if args.protocols:
        overrides["protocols"] = tuple(p.strip() for p in args.protocols.split(",") if p.strip())
    if args.sweep_generators:
        overrides["sweep_generators"] = tuple(g.strip() for g in args.sweep_generators.split(",") if g.strip())
    for flag in ("kid_samples", "truncation_psi", "truncation_layers", "noise_mode", "class_weighting",
                 "mixed_real_share"):
        if getattr(args, flag) is not None:
            overrides[flag] = getattr(args, flag)
    for flag, field in (("interpreter_models", "interpreter_models"), ("interpreter_epochs", "interpreter_epochs"),
                        ("interpreter_pixels", "interpreter_pixels")):
        if getattr(args, flag) is not None:
            if getattr(args, flag) < 1:
                raise GanfactoryError(f"--{flag.replace('_', '-')} must be at least 1")
            overrides[field] = getattr(args, flag)
    if args.inversion_steps is not None:
        steps = _ints(args.inversion_steps, "--inversion-steps")
        if len(steps) != 2 or min(steps) < 0:
            raise GanfactoryError(f"--inversion-steps takes W,W+ (two non-negative integers), got "
                                  f"{args.inversion_steps}")
        overrides["inversion_steps"] = steps
    if args.no_keypoint_fix:
        overrides["keypoint_fix"] = False
    if args.no_final_fit:
        overrides["final_fit"] = False
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
    def summary(arms: dict) -> dict:
        return {arm: {"miou": round(s["miou"], 4), **({"pck": round(s["pck"]["pck"], 4)} if "pck" in s else {})}
                for arm, s in arms.items()}

    print(json.dumps({"quick": results["quick"], "arms": summary(results["arms"]),
                      "protocols": {p: summary(r["arms"]) for p, r in results["protocols"].items()},
                      "seconds": round(time.perf_counter() - t0, 1)}))
