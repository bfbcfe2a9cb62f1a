"""``ganfactory multiview labeller|layers|annotate|build``: a generator as a multi-view dataset with cameras."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganfactory.cli.options import add_device, add_generator, add_truncation
from ganfactory.errors import GanfactoryError


def _settings_args(p: argparse.ArgumentParser) -> None:
    """The flags that name the view codes (shared by annotate and build, which must agree)."""
    add_generator(p, default="cars64", help="generator checkpoint path or built-in name (default cars64)")
    cut = p.add_mutually_exclusive_group(required=True)
    cut.add_argument("--cutoff", type=int, default=None,
                     help="layers [0, cutoff) come from the view code")
    cut.add_argument("--layers", default=None,
                     help="layers.json of 'multiview layers': take its measured cutoff (and store its evidence)")
    p.add_argument("--view-codes", type=int, default=30)
    p.add_argument("--content-codes", type=int, default=32)
    p.add_argument("--first-view-seed", type=int, default=10_000_000)
    p.add_argument("--first-content-seed", type=int, default=20_000_000)
    add_truncation(p, help="truncation psi of view and content codes", default=0.7)


def _cutoff(args: argparse.Namespace) -> tuple[int, dict | None]:
    """The cutoff of --cutoff, or of --layers with the sweep's evidence for it."""
    if args.layers is None:
        return args.cutoff, None
    try:
        sweep = json.loads(Path(args.layers).read_text())
        cutoff = int(sweep["cutoff"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise GanfactoryError(f"{args.layers}: not a layers.json of 'multiview layers' ({e})") from None
    if sweep.get("generator") not in (None, args.generator):
        raise GanfactoryError(f"{args.layers} measured generator {sweep.get('generator')!r}, not {args.generator!r}")
    row = next(r for r in sweep["variants"] if r["kind"] == "first" and len(r["layers"]) == cutoff)
    return cutoff, {"layers_json": str(args.layers), "rule": sweep.get("rule"), "row": row,
                    "settings": sweep.get("settings")}


def _settings(args: argparse.Namespace, interpreter: str = ""):
    from ganfactory.inverse.multiview import MultiviewSettings

    return MultiviewSettings(generator=args.generator, interpreter=interpreter, cutoff=_cutoff(args)[0],
                             view_codes=args.view_codes, content_codes=args.content_codes,
                             first_view_seed=args.first_view_seed, first_content_seed=args.first_content_seed,
                             truncation_psi=args.truncation_psi)


def register(sub) -> None:
    p = sub.add_parser("multiview", help="multi-view data from a generator's view codes (GANverse3D's first step)",
                       description="Fix the first style layers (the camera) and resample the rest: many cars seen "
                                   "from one view; a person puts each view code into an azimuth bin.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    lab = verbs.add_parser(
        "labeller", help="make the interpreter that labels the generator's samples (masks, parts)",
        description="Trains a segmenter on real renders (--real, trusted part labels), lets it label --annotated "
                    "generated images, and trains an interpreter on them. Writes OUT/segmenter, OUT/annotations and "
                    "OUT/interpreter (use that one); resumable.")
    add_generator(lab, default="cars64")
    lab.add_argument("--real", required=True, help="LabeledDataset of real renders with part labels")
    lab.add_argument("--out", required=True)
    lab.add_argument("--iterations", type=int, default=400, help="segmenter iterations")
    lab.add_argument("--annotated", type=int, default=24, help="generated images the segmenter labels")
    lab.add_argument("--models", type=int, default=3, help="interpreter ensemble size")
    add_truncation(lab, default=0.7)
    lab.add_argument("--quiet", action="store_true")
    lab.set_defaults(func=run_labeller)

    lay = verbs.add_parser(
        "layers", help="measure which style layers carry the view; choose the cutoff",
        description="Swaps style layers between seed pairs and reads, with the viewpoint regressor and the "
                    "labeller, how much the azimuth, the car's colour, the background and the part layout follow "
                    "the donor. Writes OUT/layers.json (numbers, the chosen cutoff) and OUT/layers.svg (the chart).")
    add_generator(lay, default="cars64")
    lay.add_argument("--interpreter", required=True, help="labeller interpreter directory")
    lay.add_argument("--regressor", default="cars", help="viewpoint regressor (built-in name or run directory)")
    lay.add_argument("--pairs", type=int, default=64)
    add_truncation(lay, default=0.7)
    lay.add_argument("--out", required=True, help="output directory")
    add_device(lay)
    lay.add_argument("--quiet", action="store_true")
    lay.set_defaults(func=run_layers)

    b = verbs.add_parser(
        "build", help="write the multi-view LabeledDataset",
        description="V view codes x C content codes, labelled by the interpreter, filtered (one object, mask at "
                    "least --min-mask of the image), with every view code's camera from --cameras. Writes a "
                    "LabeledDataset at --out (meta: view_code, content, camera, mask facts, regressor reading); "
                    "run again to resume.")
    _settings_args(b)
    b.add_argument("--interpreter", required=True, help="labeller interpreter directory")
    b.add_argument("--cameras", required=True, help="cameras file of 'multiview annotate'")
    b.add_argument("--min-mask", type=float, default=0.10)
    b.add_argument("--out", required=True)
    b.add_argument("--backend", choices=["local", "ray"], default="local")
    b.add_argument("--workers", type=int, default=1)
    b.add_argument("--address", default=None, help="Ray cluster address (with --backend ray)")
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=run_build)

    r = verbs.add_parser(
        "report", help="measure a multi-view dataset: azimuth spread within and across view codes, contact sheet",
        description="Reads a multi-view LabeledDataset; writes OUT/spread.json (median absolute deviation of the "
                    "regressed azimuth within each view code against the spread across view codes; the filter's "
                    "kept share) and OUT/contact.png (rows = view codes, columns = content codes).")
    r.add_argument("--data", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--rows", type=int, default=10, help="view codes on the contact sheet")
    r.add_argument("--cols", type=int, default=12, help="samples per view code on the contact sheet")
    r.add_argument("--scale", type=int, default=2)
    r.set_defaults(func=run_report)

    a = verbs.add_parser(
        "annotate", help="put each view code into one of 12 azimuth bins (a page, or simulated)",
        description="Serves a page that shows a grid of samples per view code and takes one click among 12 azimuth "
                    "bins and an elevation guess; answers are saved to PROJECT/cameras.json at once. With "
                    "--simulate the viewpoint regressor answers instead (the benchmark's annotator).")
    _settings_args(a)
    a.add_argument("--project", required=True, help="directory of the annotation (cameras.json)")
    a.add_argument("--grid", type=int, default=8, help="samples shown per view code")
    a.add_argument("--simulate", action="store_true", help="let the viewpoint regressor annotate")
    a.add_argument("--regressor", default="cars")
    a.add_argument("--host", default="127.0.0.1")
    a.add_argument("--port", type=int, default=8766)
    a.set_defaults(func=run_annotate)


def run_labeller(args: argparse.Namespace) -> None:
    from ganfactory.inverse.labeller import LabellerSettings, build_labeller

    settings = LabellerSettings(generator=args.generator, real_data=str(Path(args.real).resolve()),
                                segmenter_iterations=args.iterations, annotated=args.annotated,
                                interpreter_models=args.models, truncation_psi=args.truncation_psi)
    print(json.dumps({"interpreter": str(build_labeller(settings, args.out, progress=not args.quiet))}))


def run_layers(args: argparse.Namespace) -> None:
    import torch

    from ganfactory.atomic import write_atomic, write_json
    from ganfactory.gan import load_generator
    from ganfactory.inverse.view_layers import LayerSweepSettings, sweep_chart_svg, sweep_view_layers
    from ganfactory.inverse.viewpoint import load_viewpoint_regressor
    from ganfactory.label.interpreter import load_interpreter

    torch.set_num_threads(1)
    G = load_generator(args.generator, args.device)
    sweep = sweep_view_layers(G, load_viewpoint_regressor(args.regressor, args.device),
                              load_interpreter(args.interpreter),
                              LayerSweepSettings(pairs=args.pairs, truncation_psi=args.truncation_psi),
                              progress=not args.quiet)
    sweep.update(generator=args.generator, regressor=args.regressor, interpreter=str(args.interpreter))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "layers.json", sweep)
    write_atomic(out / "layers.svg", sweep_chart_svg(sweep))
    print(json.dumps({"cutoff": sweep["cutoff"], "json": str(out / "layers.json"), "chart": str(out / "layers.svg")}))


def run_build(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from ganfactory.inverse.multiview import build_multiview

    settings = replace(_settings(args, str(args.interpreter)), min_mask=args.min_mask)
    summary = build_multiview(settings, args.cameras, args.out, backend=args.backend, workers=args.workers,
                              address=args.address, progress=not args.quiet, cutoff_evidence=_cutoff(args)[1])
    print(json.dumps(summary))


def run_report(args: argparse.Namespace) -> None:
    from PIL import Image

    from ganfactory.atomic import atomic_path, write_json
    from ganfactory.datasets.labeled import LabeledDataset
    from ganfactory.inverse.multiview import contact_sheet, view_code_spread

    ds = LabeledDataset(args.data)
    if "view_code" not in ds.meta(0):
        raise GanfactoryError(f"{args.data}: not a multi-view dataset (samples have no view_code)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spread = {**view_code_spread(ds), "filter": ds.provenance.get("summary")}
    write_json(out / "spread.json", spread)
    codes = sorted({int(ds._line(i)["view_code"]) for i in range(len(ds))})[:args.rows]
    with atomic_path(out / "contact.png") as tmp:
        Image.fromarray(contact_sheet(ds, codes, args.cols, args.scale)).save(tmp, format="PNG")
    print(json.dumps({k: v for k, v in spread.items() if k != "azimuth_mad_within_per_code_deg"}))


def run_annotate(args: argparse.Namespace) -> None:
    from ganfactory.gan import load_generator
    from ganfactory.inverse.multiview import simulate_cameras, write_cameras

    settings = _settings(args)
    project = Path(args.project)
    project.mkdir(parents=True, exist_ok=True)
    if args.simulate:
        from ganfactory.inverse.viewpoint import load_viewpoint_regressor

        G = load_generator(args.generator)
        cameras = simulate_cameras(G, load_viewpoint_regressor(args.regressor), settings,
                                   list(range(settings.view_codes)), args.grid, args.regressor)
        path = write_cameras(project / "cameras.json", settings, cameras)
        print(json.dumps({"cameras": str(path), "view_codes": len(cameras)}))
        return
    from ganfactory.inverse.annotate_page import serve

    if args.grid < 1:
        raise GanfactoryError("--grid must be at least 1")
    serve(settings, project, grid=args.grid, host=args.host, port=args.port)
