"""``ganfactory cars build|preview``: the cars benchmark's splits (LabeledDatasets) and a contact sheet."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ganfactory.datasets.labeled import DEFAULT_SHARD_SIZE
from ganfactory.datasets.parts import CLASS_SETS
from ganfactory.datasets.variation import SPLITS
from ganfactory.errors import GanfactoryError


def register(sub) -> None:
    p = sub.add_parser("cars", help="the cars benchmark: build splits, preview the cars",
                       description="Render TORCS cars (Debian torcs-data) into the benchmark's labeled splits.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    b = verbs.add_parser(
        "build", help="render a split as a LabeledDataset",
        description="Reads the TORCS cars; writes --out as a LabeledDataset: images/<shard>/<id>.png, "
                    "labels/<shard>/<id>.png (uint8 class ids), meta/<shard>.jsonl (keypoints, camera, car, seed, "
                    "light, background), coco.json, dataset.json (written last); test3d also writes "
                    "meshes/<car>.glb (each car its samples show). Same split and seeds give the same bytes for "
                    "any --workers. A killed build resumes at its first missing shard when run again with the same "
                    "arguments.")
    b.add_argument("--split", required=True, choices=list(SPLITS))
    b.add_argument("--res", type=int, default=64, help="image side in pixels (64 default, 128 supported)")
    b.add_argument("--n", type=int, default=None, help="only the split's first N seeds (quick runs)")
    b.add_argument("--classes", choices=sorted(CLASS_SETS), default="cars-13", help="label class set")
    b.add_argument("--torcs-root", default=None, help="TORCS data directory (default /usr/share/games/torcs)")
    b.add_argument("--out", required=True, help="output directory (new, empty, or a build to resume)")
    b.add_argument("--workers", type=int, default=2, help="render processes (1 = in this process)")
    b.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help="samples per shard")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=run_build)

    v = verbs.add_parser(
        "preview", help="a contact sheet of every car",
        description="Reads the TORCS cars; writes --out, a PNG with one row per car of (image, label overlay with "
                    "keypoints: filled = visible, hollow = hidden; red = wheel hubs, green = lamps) pairs.")
    v.add_argument("--out", required=True, help="PNG path")
    v.add_argument("--res", type=int, default=128, help="render resolution of each tile")
    v.add_argument("--seeds-per-car", type=int, default=4)
    v.add_argument("--first-seed", type=int, default=0)
    v.add_argument("--classes", choices=sorted(CLASS_SETS), default="cars-13")
    v.add_argument("--torcs-root", default=None, help="TORCS data directory (default /usr/share/games/torcs)")
    v.set_defaults(func=run_preview)


def run_build(args: argparse.Namespace) -> None:
    from ganfactory.datasets.build import BuildSettings, build_split

    settings = BuildSettings(split=args.split, resolution=args.res, n=args.n, class_set=args.classes,
                             shard_size=args.shard_size, torcs_root=args.torcs_root)
    if args.shard_size < 1:
        raise GanfactoryError(f"--shard-size must be at least 1, got {args.shard_size}")
    start = time.perf_counter()
    path = build_split(args.out, settings, workers=args.workers, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    print(f"cars build: {args.split} complete in {path.parent} ({seconds:.1f} s this run)")


def run_preview(args: argparse.Namespace) -> None:
    import torch

    from ganfactory.datasets.car_assembly import CAR_IDS, assemble_car
    from ganfactory.datasets.cars import RenderSettings, contact_sheet
    from ganfactory.datasets.torcs import find_torcs_root

    if args.res < 8 or args.seeds_per_car < 1:
        raise GanfactoryError("--res must be at least 8 and --seeds-per-car at least 1")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise GanfactoryError(f"--out must be a .png path, got {out}")
    root = find_torcs_root(args.torcs_root)
    torch.set_num_threads(1)
    cars = [assemble_car(c, root) for c in CAR_IDS]
    sheet = contact_sheet(cars, args.seeds_per_car, RenderSettings(resolution=args.res, class_set=args.classes),
                          first_seed=args.first_seed, scale=1 if args.res >= 128 else 2)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"cars preview: wrote {out} ({sheet.width}x{sheet.height})")
