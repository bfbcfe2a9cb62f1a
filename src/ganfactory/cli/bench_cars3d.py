"""``ganfactory bench cars3d``: the 3-D arms on test3d (silhouette IoUs, Chamfer-L1, F-score, azimuth error)."""

from __future__ import annotations

import argparse

from ganfactory.cli.options import add_device
from ganfactory.errors import GanfactoryError


def register(verbs) -> None:
    """Add ``cars3d`` to the ``bench`` subcommand's verbs."""
    c = verbs.add_parser(
        "cars3d", help="single-image 3-D on test3d: the inverse-graphics arms",
        description="Scores inverse-graphics models on test3d (built into OUT/data/test3d, or --test3d): input-view "
                    "silhouette IoU with the predicted camera, 12-view silhouette IoU against the true mesh, "
                    "Chamfer-L1 and F-score at 5% on exterior surface samples, azimuth error. Each arm is trained "
                    "here (real: --train-data cars renders; gan-multiview / gan-single: --multiview-data) or given "
                    "as --model ARM=MODEL. Writes OUT/arms/<arm>/{run/,scores.json,sheet.png}, OUT/results.json and "
                    "OUT/report.html. Every stage is skipped when its result exists: run again to resume.")
    c.add_argument("--out", required=True, help="run directory")
    c.add_argument("--arms", default="real", help="comma-separated arms: real, gan-multiview, gan-single")
    c.add_argument("--model", action="append", default=[], metavar="ARM=MODEL",
                   help="score this trained model (name, run or model directory) for ARM instead of training")
    c.add_argument("--train-data", default=None, help="cars renders with cameras (the real arm)")
    c.add_argument("--multiview-data", default=None, help="GAN multi-view data (the gan-* arms)")
    c.add_argument("--test3d", default=None, help="a built test3d split (default: build into OUT/data/test3d)")
    c.add_argument("--test-samples", type=int, default=None, help="score only the first N test3d samples")
    c.add_argument("--iterations", type=int, default=None, help="training iterations of every trained arm")
    c.add_argument("--batch", type=int, default=None, help="training batch of every trained arm")
    c.add_argument("--quick", action="store_true", help="12 test samples, 48 training renders, 20 iterations")
    add_device(c)
    c.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    c.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ganfactory.inverse.bench3d import Bench3DConfig, run_bench3d

    models = {}
    for item in args.model:
        arm, sep, model = item.partition("=")
        if not sep or not model:
            raise GanfactoryError(f"--model takes ARM=MODEL, got {item!r}")
        models[arm.strip()] = model.strip()
    arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    config = Bench3DConfig(quick=args.quick, arms=arms, models=models, train_data=args.train_data,
                           multiview_data=args.multiview_data, test3d=args.test3d, test_samples=args.test_samples,
                           iterations=args.iterations, batch=args.batch, device=args.device, threads=args.threads)
    results = run_bench3d(config, args.out, progress=not args.quiet)
    for arm, r in results["arms"].items():
        s = r["summary"]
        print(f"{arm}: input IoU {s['input_iou']:.3f}, 12-view IoU {s['multiview_iou']:.3f}, Chamfer-L1 "
              f"{s['chamfer_l1']:.4f}, F@5% {s['fscore_5']:.3f}, median azimuth error "
              f"{s['azimuth_error_median_deg']:.1f}")
    print(f"report: {args.out}/report.html")
