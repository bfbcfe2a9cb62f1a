"""``ganfactory annotate invert``: labels of real images become annotations by inverting the images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganfactory.cli.options import add_device, add_generator
from ganfactory.errors import GanfactoryError


def register_verb(verbs) -> None:
    p = verbs.add_parser(
        "invert", help="invert labeled real images into the generator",
        description="Finds for each real image of the project a latent (W, then W+ with noise) whose image matches "
                    "it, and pairs the reconstruction with the real labels, so the item can train the interpreter. "
                    "Reads real images from --images/--labels (a folder import; see 'annotate import'), from a "
                    "LabeledDataset (--dataset), or the project's real items not inverted yet. Writes the latents "
                    "and reconstructions into the project (an AnnotationSet) and per-image PSNR to "
                    "PROJECT/inversion.json. A rerun resumes.")
    add_generator(p, help="generator checkpoint path or built-in name")
    p.add_argument("--project", required=True, help="AnnotationSet directory (created if new)")
    p.add_argument("--images", help="directory of real images (with --labels)")
    p.add_argument("--labels", help="directory of label PNGs named like the images (with --images)")
    p.add_argument("--schema", help="schema.json for --images/--labels into a new project")
    p.add_argument("--dataset", help="a LabeledDataset directory instead of --images/--labels")
    p.add_argument("--w-steps", type=int, default=300, help="steps of the W phase")
    p.add_argument("--wplus-steps", type=int, default=300, help="steps of the W+ (and noise) phase")
    p.add_argument("--batch", type=int, default=16, help="images inverted together")
    p.add_argument("--no-discriminator", action="store_true",
                   help="pixel losses only (default: also the discriminator's features, when the checkpoint has one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    add_device(p)
    p.set_defaults(func=run_invert)


def run_invert(args: argparse.Namespace) -> None:
    from ganfactory.annotate import AnnotationSet
    from ganfactory.annotate.inversion import REPORT, invert_annotations, invert_labeled_dataset
    from ganfactory.gan.invert import InversionConfig
    from ganfactory.gan.io import read_any

    if (args.images is None) != (args.labels is None):
        raise GanfactoryError("--images and --labels go together")
    if args.dataset and args.images:
        raise GanfactoryError("pass either --dataset or --images/--labels, not both")
    if min(args.w_steps, args.wplus_steps) < 0 or args.batch < 1:
        raise GanfactoryError("--w-steps and --wplus-steps must be >= 0 and --batch positive")
    ckpt = read_any(args.generator, device=args.device)
    G, D = ckpt.generator, None if args.no_discriminator else ckpt.discriminator
    config = InversionConfig(w_steps=args.w_steps, wplus_steps=args.wplus_steps, seed=args.seed)
    progress = not args.quiet
    if args.dataset:
        invert_labeled_dataset(G, args.dataset, args.project, config=config, D=D, generator=args.generator,
                               batch=args.batch, progress=progress)
    else:
        exists = (Path(args.project) / "schema.json").is_file()
        if args.images and not exists:
            from ganfactory.annotate import importers
            from ganfactory.cli.annotate import read_schema

            importers.import_label_folder(args.project, args.images, args.labels, read_schema(args.schema),
                                          G.img_resolution)
        elif args.images:  # a rerun: importing again would drop the latents found so far
            print(f"annotate invert: {args.project} exists, so --images are not imported again (add images with "
                  "'annotate import'); inverting its real items that have no latent yet")
        elif not exists:
            raise GanfactoryError(f"{args.project} is not an AnnotationSet; pass --images/--labels or --dataset")
        invert_annotations(G, AnnotationSet(args.project), config, D=D, batch=args.batch, progress=progress)
    report_path = Path(args.project) / REPORT
    report = json.loads(report_path.read_text())
    if report["items"]:
        print(f"annotate invert: {len(report['items'])} images, mean PSNR {report['mean_psnr_w']:.2f} dB (W), "
              f"{report['mean_psnr']:.2f} dB (W+); per image in {report_path}")
    else:
        print(f"annotate invert: no real images without a latent in {args.project}")
