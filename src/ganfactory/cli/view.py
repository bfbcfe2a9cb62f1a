"""``ganfactory view MESH.glb|DIR``: the mesh viewer page (three.js, served by our own server on this machine)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "view", help="look at a GLB (or a reconstruction directory) in the browser: orbit, input image, nodes",
        description="Reads a .glb file, or every .glb of a directory (a `ganfactory reconstruct` output: each mesh "
                    "with its input image and predicted camera, picked from a list), and serves a three.js viewer "
                    "on 127.0.0.1: orbit controls, the input image beside the canvas, a reset button back to the "
                    "input view, the GLB's nodes and animations. Writes nothing. Needs three.js from npm "
                    "(`make js`).")
    p.add_argument("mesh", help="a .glb file or a directory of them")
    p.add_argument("--image", help="the input image shown beside a single GLB (default: its <stem>.render.png's "
                                   "input half, when there is one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8767, help="port (default 8767; 0 picks a free one)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ganfactory.inverse.view_page import serve

    serve(args.mesh, args.image, args.host, args.port)
