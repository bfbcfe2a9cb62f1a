"""How honest is the simulated annotator's keypoint visibility? Both rules against the renderer's truth.

The cars benchmark's simulated annotator (a network trained on ``full``) marks keypoints on generated images. The
old rule called a point visible when the network's label there was not background, which marks nearly every point
on the car visible, the far side's wheels included; the rule of ``make_network_annotations(keypoint_classes=...)``
calls it visible when the network's labels within one pixel carry the point's part (the renderer's own rule,
``datasets/cars.py``). Here both rules run on real test renders, whose true visibility the renderer knows, with the
network's predicted positions; reported: accuracy, precision and recall of "visible" per rule.

Run: ``.venv/bin/python benchmarks/visibility.py --model RUN/arms/full/net --data /work/data/cars64/test``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ganfactory.bench import keypoint_classes
from ganfactory.bench.cars import BenchConfig, _load
from ganfactory.downstream import load_segmenter
from ganfactory.label.interpreter import on_classes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="a trained downstream network (the simulated annotator)")
    p.add_argument("--data", required=True, help="a real split with true visibility (test or test-u)")
    p.add_argument("--n", type=int, default=1000)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    seg = load_segmenter(args.model)
    data = _load(Path(args.data), BenchConfig("unused"), range(args.n))
    labels, kps = seg.predict(data.images.numpy())
    truth = (data.keypoints[..., 2] > 0).numpy() & np.isfinite(data.keypoints[..., 0].numpy())
    classes = keypoint_classes(seg.schema)
    old, new = np.zeros_like(truth), np.zeros_like(truth)
    h, w = labels.shape[1:]
    for i in range(len(labels)):
        xy = kps[i, :, :2]
        for k, (x, y) in enumerate(xy):
            old[i, k] = labels[i, min(max(round(y), 0), h - 1), min(max(round(x), 0), w - 1)] > 0
        new[i] = on_classes(torch.from_numpy(labels[i]), torch.from_numpy(xy[:, 0]), torch.from_numpy(xy[:, 1]),
                            classes).numpy()
    available = np.isfinite(data.keypoints[..., 0].numpy())
    out = {"images": len(labels), "true_visible_share": float(truth[available].mean())}
    for name, rule in (("old (on the car)", old), ("new (on its part)", new)):
        t, r = truth[available], rule[available]
        out[name] = {"accuracy": float((t == r).mean()), "visible_share": float(r.mean()),
                     "precision": float((t & r).sum() / max(r.sum(), 1)),
                     "recall": float((t & r).sum() / max(t.sum(), 1))}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
