"""``ganfactory interpreter train|predict``: the style interpreter from an AnnotationSet, and its labels."""

from __future__ import annotations

import argparse
import json

import numpy as np

from ganfactory.cli.options import add_device, add_generator, add_truncation, check_out_dir
from ganfactory.errors import GanfactoryError
from ganfactory.gan.networks import NOISE_MODES


def register(sub) -> None:
    p = sub.add_parser("interpreter", help="train the style interpreter, or label images with it",
                       description="Per-pixel classifiers (and keypoint heads) on a generator's features.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    t = verbs.add_parser(
        "train", help="train from an AnnotationSet",
        description="Reads a generator and an AnnotationSet directory (items with status 'annotated'). Writes "
                    "an interpreter directory: interpreter.json (taps, schema, settings, report) and "
                    "weights.safetensors.")
    add_generator(t, help="generator checkpoint path or built-in name")
    t.add_argument("--annotations", required=True, help="AnnotationSet directory")
    t.add_argument("--out", required=True, help="interpreter directory to write")
    t.add_argument("--layers", default=None, help="comma-separated feature layers (default: every conv layer)")
    t.add_argument("--label-res", type=int, default=None, help="label resolution (default: the image's)")
    t.add_argument("--models", type=int, default=10, help="ensemble size")
    t.add_argument("--pixels-per-image", type=int, default=8192, help="sampled training pixels per image (0 = all)")
    t.add_argument("--holdout-pixels", type=int, default=1024, help="held-out pixels per image (early stopping)")
    t.add_argument("--class-balanced", action="store_true", help="sample every class about equally")
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--epochs", type=int, default=100, help="maximum epochs")
    t.add_argument("--patience", type=int, default=3, help="epochs without a better held-out accuracy")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--quiet", action="store_true")
    add_device(t)
    t.set_defaults(func=run_train)
    q = verbs.add_parser(
        "predict", help="label seeds or stored latents",
        description="Reads a generator and an interpreter; labels --seeds, the ws of a latents.npz written by "
                    "'ganfactory generate', or the items of an AnnotationSet. Writes per image NAME.png (image), "
                    "NAME.label.png (uint8 ids), NAME.overlay.png, a grid of overlays and scores.json "
                    "(per-image uncertainty, keypoints; with --annotations also pixel accuracy and mean IoU "
                    "against the stored labels).")
    add_generator(q)
    q.add_argument("--interpreter", required=True, help="interpreter directory")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--seeds", help="seed list, e.g. 0-15")
    src.add_argument("--latents", help="latents.npz from 'ganfactory generate'")
    src.add_argument("--annotations", help="AnnotationSet directory (every item)")
    add_truncation(q, help="truncation psi (with --seeds)")
    q.add_argument("--noise-mode", choices=NOISE_MODES, default="const", help="noise mode (with --seeds)")
    q.add_argument("--out", required=True, help="output directory")
    add_device(q)
    q.set_defaults(func=run_predict)


def run_train(args: argparse.Namespace) -> None:
    check_out_dir(args.out)
    from ganfactory.annotate import AnnotationSet
    from ganfactory.annotate.training import training_images
    from ganfactory.gan import load_generator
    from ganfactory.label import FeatureTaps, InterpreterConfig, train_interpreter

    layers = None if args.layers is None else tuple(s.strip() for s in args.layers.split(",") if s.strip())
    config = InterpreterConfig(taps=FeatureTaps(layers, args.label_res), num_models=args.models,
                               batch_size=args.batch, learning_rate=args.lr, max_epochs=args.epochs,
                               patience=args.patience, pixels_per_image=args.pixels_per_image or None,
                               holdout_pixels_per_image=args.holdout_pixels, class_balanced=args.class_balanced,
                               seed=args.seed)
    if config.num_models < 1 or config.max_epochs < 1 or config.batch_size < 1:
        raise GanfactoryError("--models, --epochs and --batch must be positive")
    store = AnnotationSet(args.annotations)
    G = load_generator(args.generator, device=args.device)
    interp, report = train_interpreter(G, training_images(store, G), store.schema, config, progress=not args.quiet)
    interp.save(args.out, provenance={"generator": args.generator, "annotations": str(args.annotations),
                                      "items": store.annotated_ids(), "report": report.__dict__})
    print(json.dumps({"out": args.out, "heldout_accuracy": report.heldout_accuracy, "epochs": report.epochs,
                      "seconds": round(report.seconds, 2)}))


def run_predict(args: argparse.Namespace) -> None:
    check_out_dir(args.out)
    from ganfactory.annotate import AnnotationSet
    from ganfactory.gan import load_generator
    from ganfactory.gan.latent import Latent
    from ganfactory.gan.sampling import load_latents, parse_seeds, seed_file_stem
    from ganfactory.label import load_interpreter
    from ganfactory.synth.predict import predict_to_folder

    G = load_generator(args.generator, device=args.device)
    interp = load_interpreter(args.interpreter, device=args.device)
    truth = None
    if args.seeds:
        seeds = parse_seeds(args.seeds)
        names = [seed_file_stem(s) for s in seeds]
        latents = [Latent.from_seed(G, s, args.truncation_psi, args.noise_mode) for s in seeds]
    elif args.latents:
        ws, mode, noise, _ = load_latents(args.latents)
        with np.load(args.latents) as data:
            seeds = data["seeds"].tolist() if "seeds" in data.files else []
        names = ([seed_file_stem(s) for s in seeds] if len(seeds) == len(ws) else
                 [f"latent{i:04d}" for i in range(len(ws))])
        latents = [Latent(ws[i], mode, None if noise is None else {k: v[i:i + 1] for k, v in noise.items()})
                   for i in range(len(ws))]
    else:
        store = AnnotationSet(args.annotations)
        items = [store.item(i, G) for i in store.ids]
        skipped = [item.id for item in items if item.latent is None]
        if skipped:  # real images not inverted yet: the generator has no features of them
            print(f"interpreter predict: skipping {len(skipped)} real items without a latent "
                  "(run 'ganfactory annotate invert' first)")
        items = [item for item in items if item.latent is not None]
        names = [item.id for item in items]
        latents = [item.latent for item in items]
        truth = {item.id: item.label for item in items}
    scores = predict_to_folder(G, interp, latents, names, args.out, truth)
    if "summary" in scores:
        summary = scores["summary"]
        print(f"against the stored labels of {summary['items']} items: pixel accuracy "
              f"{summary['pixel_accuracy']:.4f}, mean IoU {summary['mean_iou']:.4f}")
    print(f"labelled {len(names)} images into {args.out}")
