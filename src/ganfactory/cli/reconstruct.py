"""``ganfactory reconstruct IMAGE...``: textured meshes (GLB, OBJ) and cameras from single images."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ganfactory.cli.options import add_device


def register(sub) -> None:
    from ganfactory.inverse.model import BUILTIN_MODELS, DEFAULT_MODEL

    p = sub.add_parser(
        "reconstruct", help="single-image 3-D: a textured mesh and a camera per image",
        description="Reads images (any size: centre-cropped to a square and resized to the model's input) and the "
                    "inverse-graphics model (--model: a built-in name, a `ganfactory inverse train` run or a model "
                    "directory). Writes per image OUT/<stem>.glb, <stem>.obj (+ .mtl, texture PNG), "
                    "<stem>.camera.json (predicted camera) and <stem>.render.png (input | render), and "
                    "OUT/reconstruct.json (files and seconds per image). Meshes and cameras are in the renderer's "
                    "world frame, y up as glTF expects (the car's front along +z, its left along +x); the OBJ holds "
                    "the same vertices as the GLB. Look at them with `ganfactory view OUT`.")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"model name ({', '.join(BUILTIN_MODELS)}), run or model directory (default {DEFAULT_MODEL})")
    p.add_argument("--out", default="reconstructions", help="output directory (default ./reconstructions)")
    p.add_argument("--parts", action="store_true",
                   help="also label the mesh with cars-8 parts and write OUT/<stem>.parts.glb (body parts and four "
                        "wheels as nodes, animations 'spin' and 'steer'; y up), .parts.png, .parts.json (docs/parts)")
    p.add_argument("--part-head", default=None,
                   help="part head (a built-in name or a directory; default the one trained on --model)")
    add_device(p)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    import torch

    from ganfactory.atomic import write_json
    from ganfactory.errors import GanfactoryError
    from ganfactory.inverse.model import load_model
    from ganfactory.inverse.reconstruct import reconstruct_images

    paths = [Path(p) for p in args.images]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise GanfactoryError(f"no such image: {', '.join(missing[:3])}")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    net, _ = load_model(args.model, args.device)
    head = None
    if args.parts or args.part_head:
        from ganfactory.inverse.parts import default_part_head, load_part_head

        head, _ = load_part_head(args.part_head or default_part_head(str(args.model)), net)
    load_s = time.perf_counter() - t0
    records = reconstruct_images(net, paths, args.out, args.device)
    if head is not None:
        from ganfactory.inverse.parts import reconstruct_parts

        for record, parts in zip(records, reconstruct_parts(net, head, paths, args.out, args.device), strict=True):
            record["parts"] = parts
    total = time.perf_counter() - t0
    per_image = sum(r["seconds_predict"] + r["seconds_export"] for r in records) / len(records)
    write_json(Path(args.out) / "reconstruct.json", {"model": str(args.model), "images": records,
                                                     "seconds_load_model": round(load_s, 3),
                                                     "seconds_per_image": round(per_image, 4)})
    for r in records:
        cam = r["camera"]
        if "parts" in r:
            print(f"{r['parts']['glb']}  {len(r['parts']['wheels'])} wheel(s) split off")
        print(f"{r['glb']}  azimuth {cam['azimuth_deg']:.0f} elevation {cam['elevation_deg']:.0f} "
              f"distance {cam['distance']:.2f}")
    print(f"{len(records)} image(s) in {total:.2f} s ({per_image:.3f} s per image after loading the model)")
