"""The colour term on held-out images: masked L1 between the input and its reconstruction, per model.

The training log's colour loss is measured on training batches of 8; this one is on the first N samples of a
held-out split (test3d), rendered from the true camera (so a wrong predicted camera does not count as a colour
error) and from the predicted one, each model with its own predicted light if it has one.

    python benchmarks/colour_loss.py --data /work/data/inverse/test3d --n 100 MODEL [MODEL ...]
"""

from __future__ import annotations

import argparse
import json

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from ganfactory.inverse.camera import OrbitCamera
    from ganfactory.inverse.data import load_views
    from ganfactory.inverse.model import load_model
    from ganfactory.render import RasterSettings, Renderer, masked_l1

    views = load_views(args.data, range(args.n), progress=False)
    for name in args.models:
        net, _ = load_model(name)
        size = net.config.image_size
        renderer = Renderer(RasterSettings((size, size)))
        true_cam, pred_cam = [], []
        with torch.no_grad():
            for start in range(0, args.n, 20):
                b = views.batch(torch.arange(start, min(start + 20, args.n)), "cpu")
                pred = net(b["images"])
                mesh = net.mesh(pred)
                for cam, out in ((OrbitCamera(b["azimuth"], b["elevation"], b["t"], views.fov_y), true_cam),
                                 (pred.camera, pred_cam)):
                    image = renderer(mesh, cam.to_camera((size, size)), pred.light).image
                    out.extend(float(masked_l1(image[i:i + 1], b["images"][i:i + 1], b["masks"][i:i + 1]))
                               for i in range(image.shape[0]))
        print(json.dumps({"model": name, "samples": args.n, "sh_lighting": net.config.sh_lighting,
                          "colour_l1_true_camera": sum(true_cam) / len(true_cam),
                          "colour_l1_predicted_camera": sum(pred_cam) / len(pred_cam)}))


if __name__ == "__main__":
    main()
