"""``ganfactory segment train|eval``: a downstream segmentation (and keypoint) network on LabeledDatasets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganfactory.cli.options import add_device, check_out_dir
from ganfactory.errors import GanfactoryError


def register(sub) -> None:
    p = sub.add_parser("segment", help="train or score a downstream segmentation/keypoint network",
                       description="A standard network (small UNet or DeepLabv3-ResNet50) trained on any "
                                   "LabeledDataset, real or synthesized, and scored on real data.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    t = verbs.add_parser(
        "train", help="train on one or more LabeledDatasets",
        description="Reads LabeledDataset directories (--data, repeatable; their schemas must agree). Writes the run "
                    "directory --out: config.json (settings, schema, data), log.jsonl (loss, validation), "
                    "checkpoint.pt while training, then model.safetensors and model.json (written last). Run the "
                    "same command again to resume a killed run.")
    t.add_argument("--data", action="append", required=True, help="LabeledDataset directory (repeatable)")
    t.add_argument("--out", required=True, help="run directory")
    t.add_argument("--val", default=None, help="validation LabeledDataset (default: --val-fraction of --data)")
    t.add_argument("--val-fraction", type=float, default=0.0, help="share of --data held out for validation")
    t.add_argument("--arch", choices=["unet", "deeplabv3"], default="unet", help="network (default unet)")
    t.add_argument("--res", type=int, default=None, help="train at this side (default: the data's)")
    t.add_argument("--classes", choices=sorted(_class_merges()), default=None,
                   help="merge the data's classes into this set first (default: keep them)")
    t.add_argument("--iterations", type=int, default=2000)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--no-keypoints", action="store_true", help="segmentation only")
    t.add_argument("--no-augment", action="store_true", help="no flips, zoom, shifts or colour jitter")
    t.add_argument("--max-uncertainty", type=float, default=None,
                   help="skip samples whose stored uncertainty exceeds this (synthesized data)")
    t.add_argument("--widths", default="16,32,64,128", help="UNet channels per level")
    t.add_argument("--checkpoint-every", type=int, default=250, help="iterations between resume checkpoints")
    t.add_argument("--threads", type=int, default=1, help="intra-op threads (1 is fastest on a busy CPU)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--quiet", action="store_true")
    add_device(t)
    t.set_defaults(func=run_train)
    e = verbs.add_parser(
        "eval", help="score a trained network on a LabeledDataset",
        description="Reads a run directory (model.json) and a LabeledDataset; prints and writes (--out) JSON: mIoU, "
                    "pixel accuracy and per-class IoU from the dataset-level confusion matrix (background "
                    "included), and PCK at --alpha of the object's bounding-box size over visible keypoints.")
    e.add_argument("--model", required=True, help="run directory of 'segment train'")
    e.add_argument("--data", required=True, help="LabeledDataset to score on")
    e.add_argument("--out", default=None, help="JSON file to write the scores to")
    e.add_argument("--alpha", type=float, default=0.1, help="PCK threshold as a share of the box size")
    add_device(e)
    e.set_defaults(func=run_eval)


def _class_merges() -> dict:
    from ganfactory.datasets.parts import CLASS_MERGES

    return CLASS_MERGES


def run_train(args: argparse.Namespace) -> None:
    check_out_dir(args.out)
    from ganfactory.datasets.labeled import LabeledDataset
    from ganfactory.downstream import TrainConfig, load_data, train_network
    from ganfactory.downstream.data import AugmentConfig, relabelled

    datasets = [LabeledDataset(d) for d in args.data]
    schemas = {json.dumps(d.schema.to_json(), sort_keys=True) for d in datasets}
    if len(schemas) != 1:
        raise GanfactoryError("the --data directories have different schemas; pass datasets of one class set")
    config = TrainConfig(architecture=args.arch, keypoints=not args.no_keypoints, iterations=args.iterations,
                         batch_size=args.batch, learning_rate=args.lr, val_fraction=args.val_fraction,
                         augment=None if args.no_augment else AugmentConfig(), seed=args.seed,
                         widths=_widths(args.widths), checkpoint_every=args.checkpoint_every, threads=args.threads,
                         log_every=min(50, args.checkpoint_every))
    schema, table = relabelled(datasets[0].schema, args.classes)
    parts = []
    for d in datasets:
        keep = None
        if args.max_uncertainty is not None:
            keep = [i for i in range(len(d)) if (d.meta(i).get("uncertainty") or 0.0) <= args.max_uncertainty]
        parts.append(load_data(d, args.res or _first_size(d), keep, table, schema))
    data = parts[0] if len(parts) == 1 else _concat(parts)
    val = None
    if args.val:
        vd = LabeledDataset(args.val)
        vschema, vtable = relabelled(vd.schema, args.classes)
        val = load_data(vd, data.images.shape[1], None, vtable, vschema)
    result = train_network(data, args.out, config, val,
                           provenance={"data": [str(Path(d).resolve()) for d in args.data], "classes": args.classes,
                                       "max_uncertainty": args.max_uncertainty},
                           progress=not args.quiet, device=args.device)
    print(json.dumps({"out": str(result.out), "iterations": result.iterations, "final_loss": result.final_loss,
                      "validation": result.validation, "seconds": round(result.seconds, 1)}))


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(v) for v in text.split(","))
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise GanfactoryError(f"--widths must be positive integers separated by commas, got {text!r}")
    return widths


def _first_size(dataset) -> int:
    return int(dataset.label(0).shape[0])


def _concat(parts):
    import torch

    from ganfactory.downstream.data import SegmentationData

    return SegmentationData(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]),
                            torch.cat([p.keypoints for p in parts]), parts[0].schema,
                            tuple(i for p in parts for i in p.ids))


def run_eval(args: argparse.Namespace) -> None:
    from ganfactory.datasets.labeled import LabeledDataset
    from ganfactory.downstream import evaluate, load_data, load_segmenter
    from ganfactory.downstream.data import table_between

    if not 0 < args.alpha <= 1:
        raise GanfactoryError(f"--alpha must be in (0, 1], got {args.alpha}")
    seg = load_segmenter(args.model, device=args.device)
    dataset = LabeledDataset(args.data)
    from ganfactory.schema import Schema

    schema = Schema(seg.schema.classes, dataset.schema.keypoints)
    data = load_data(dataset, None, None, table_between(dataset.schema, seg.schema), schema)
    scores = evaluate(seg, data, alpha=args.alpha)
    scores = {"model": str(args.model), "data": str(args.data), **scores}
    text = json.dumps(scores, indent=1)
    if args.out:
        from ganfactory.atomic import write_atomic

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out, text + "\n")
    summary = {"miou": round(scores["miou"], 4), "pixel_accuracy": round(scores["pixel_accuracy"], 4),
               "per_class_iou": {k: None if v is None else round(v, 4) for k, v in scores["per_class_iou"].items()}}
    if "pck" in scores:
        summary["pck"] = round(scores["pck"]["pck"], 4)
    print(json.dumps(summary))
