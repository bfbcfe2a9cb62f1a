"""``ganfactory annotate serve|import``: the browser annotator over an AnnotationSet, and importers of labeled
real images into one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganfactory.cli.annotate_invert import register_verb as register_invert
from ganfactory.cli.options import add_device, add_generator, add_truncation
from ganfactory.errors import GanfactoryError


def register(sub) -> None:
    p = sub.add_parser("annotate", help="annotate generated samples in the browser, or import labeled real images",
                       description="Fill an AnnotationSet: paint generated samples in the browser, or import "
                                   "labeled real images (label PNG folders, COCO, LabelMe) and invert them into "
                                   "the generator.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    s = verbs.add_parser(
        "serve", help="the browser annotator",
        description="Reads a generator and a project directory (an AnnotationSet; created when new or empty). "
                    "Serves one page on http://HOST:PORT/ and writes only inside the project: each item's "
                    "label.png, item.json (keypoints, status) and new samples (the next seed). With active "
                    "learning on, an interpreter retrains in the background and pre-fills new samples.")
    add_generator(s, help="generator checkpoint path or built-in name")
    s.add_argument("--project", required=True, help="AnnotationSet directory (created if new)")
    s.add_argument("--schema", default=None,
                   help="schema.json for a new project: {\"classes\": [{\"id\", \"name\", \"color\"}], "
                        "\"keypoints\": [names]} (default: background and object)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8765)
    add_truncation(s, help="truncation psi of new samples")
    s.add_argument("--no-active", action="store_true", help="no background interpreter, no pre-filling")
    s.add_argument("--threads", type=int, default=1, help="torch CPU threads (the page stays responsive at 1)")
    add_device(s)
    s.set_defaults(func=run_serve)
    i = verbs.add_parser(
        "import", help="import labeled real images",
        description="Reads labeled real images and writes them into an AnnotationSet as items of origin 'real' "
                    "without a latent (status annotated); 'annotate invert' finds their latents later. "
                    "Formats: folder (--images DIR with --labels DIR of uint8 label PNGs, same file stems), "
                    "coco (--coco instances.json, --images DIR), labelme (--labelme DIR of LabelMe .json files).")
    i.add_argument("--project", required=True, help="AnnotationSet directory (created if new)")
    i.add_argument("--format", required=True, choices=["folder", "coco", "labelme"])
    i.add_argument("--images", help="image directory (folder, coco)")
    i.add_argument("--labels", help="label PNG directory (folder)")
    i.add_argument("--coco", help="COCO instances JSON (coco)")
    i.add_argument("--labelme", help="directory of LabelMe JSON files (labelme)")
    i.add_argument("--schema", default=None, help="schema.json (required for 'folder' into a new project; coco "
                                                  "and labelme infer one from their categories and labels)")
    i.add_argument("--size", type=int, default=None,
                   help="resize images (bilinear), labels (nearest) and keypoints to SIZE x SIZE, e.g. the "
                        "generator's resolution")
    i.set_defaults(func=run_import)
    register_invert(verbs)


def read_schema(path: str | None):
    """A Schema from a JSON file (the ``schema`` object of an AnnotationSet header, or such a header)."""
    from ganfactory.schema import Schema, SchemaError

    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise GanfactoryError(f"{path}: no such schema file") from None
    except json.JSONDecodeError as e:
        raise GanfactoryError(f"{path}: not JSON ({e})") from None
    data = data.get("schema", data) if isinstance(data, dict) else data
    if not isinstance(data, dict):
        raise GanfactoryError(f"{path}: a schema is an object {{\"classes\": [...], \"keypoints\": [...]}}")
    try:
        return Schema.from_json(data)
    except SchemaError as e:
        raise GanfactoryError(f"{path}: {e}") from None


def run_serve(args: argparse.Namespace) -> None:
    import torch

    from ganfactory.annotate.active import ActiveConfig
    from ganfactory.annotate.server import ServerConfig, create_app
    from ganfactory.annotate.store import open_project
    from ganfactory.gan import load_generator
    from ganfactory.web import bind, project_lock, serve
    from ganfactory.web.serve import base_url

    if args.threads < 1:
        raise GanfactoryError("--threads must be positive")
    schema = read_schema(args.schema)
    sock = bind(args.host, args.port)            # first: a port in use fails before the project is created
    try:
        G = load_generator(args.generator, device=args.device)
        store = open_project(args.project, schema, args.generator)
        torch.set_num_threads(args.threads)
        active = None if args.no_active else ActiveConfig(truncation_psi=args.truncation_psi)
        app = create_app(store, G, ServerConfig(truncation_psi=args.truncation_psi, active=active), host=args.host)
        with project_lock(store.root):
            print(f"annotating {store.root} ({len(store)} items) on {base_url(sock)}/  (Ctrl-C stops)", flush=True)
            serve(app, sock)
    finally:
        sock.close()


def run_import(args: argparse.Namespace) -> None:
    from ganfactory.annotate import importers

    schema = read_schema(args.schema)
    if args.size is not None and args.size < 1:
        raise GanfactoryError("--size must be positive")
    needs = {"folder": ("images", "labels"), "coco": ("coco", "images"), "labelme": ("labelme",)}[args.format]
    missing = [f"--{n}" for n in needs if getattr(args, n) is None]
    if missing:
        raise GanfactoryError(f"--format {args.format} needs {' and '.join(missing)}")
    if args.format == "folder":
        report = importers.import_label_folder(args.project, args.images, args.labels, schema, args.size)
    elif args.format == "coco":
        report = importers.import_coco(args.project, args.coco, args.images, schema, args.size)
    else:
        report = importers.import_labelme(args.project, args.labelme, schema, args.size)
    print(json.dumps(report))
