"""Which automatic score finds the blobs a person sees? Each candidate scored against eye labels.

    python benchmarks/blob_measures.py --train /work/data/cars64/gan-train --real /work/data/cars64/test \
        --labels docs/cars64/eye-labels-182.json [--generator cars64] [--samples 1000] \
        [--out benchmarks/results/blob_measures.json]

Why: issue 15 asks for the share of blobs a generator draws, defined from data that can be checked. The rule in
``generator_quality.py`` (no car, not one object, no wheel or window, from a part segmenter) flags 0.2% of cars64's
samples where a person counts a third, so before another rule is trusted it has to agree with people. The eye
labels (``--labels``: which of seeds 0..63 of the generator a person called a blob or smear) are the truth here;
every candidate is a per-sample score, higher = more blob-like:

- ``realism-featurenet``, ``realism-segmenter``: minus the realism score of Kynkaenniemi et al. 2019 (improved
  precision): the largest ratio, over real reference samples, of the reference's distance to its 3rd nearest real
  neighbour over its distance to the sample (the half of the references with the largest radii dropped), in
  standardised features of KID's fixed random ResNet-18, or of the part segmenter's deepest encoder level (mean
  and std per channel). Below 1 = outside every real sample's neighbourhood.
- ``entropy``: the segmenter's mean per-pixel entropy over the pixels it calls car (a smear confuses it).
- ``silhouette``: minus the best IoU of the sample's car mask with any of 10,000 real renders' masks (both from
  the segmenter, each cropped to its bounding box and resized to 32x32): a melted body has no real twin.
- ``rule``: generator_quality's current rule (0 or 1).

Each score's threshold is its 99th percentile on the held-out renders (``--real``: 1% of real images flagged);
the table gives the AUC against the eye labels (0.5 = chance), the share flagged among the labelled seeds and
among ``--samples`` seeds, and precision and recall against the people. Prints the table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganfactory.atomic import write_json
from ganfactory.downstream.train import load_segmenter
from ganfactory.errors import GanfactoryError
from ganfactory.gan.io import read_any
from ganfactory.gan.metrics import FeatureNet
from generator_quality import blob_flags, generated_images, read_renders, train_part_segmenter

K_NEIGHBOUR = 3
MASK_SIDE = 32
REAL_QUANTILE = 0.99


def realism(reference: torch.Tensor, query: torch.Tensor, k: int = K_NEIGHBOUR) -> np.ndarray:
    """Kynkaenniemi et al.'s realism score of each query row against the reference rows (standardised by the
    reference), the half of the reference neighbourhoods with the largest radii dropped."""
    mu, sd = reference.mean(0), reference.std(0) + 1e-8
    ref, q = (reference - mu) / sd, (query - mu) / sd
    radii = torch.cdist(ref, ref).kthvalue(k + 1, 1).values  # the 0th neighbour is the point itself
    keep = radii <= radii.median()
    return (radii[keep][None] / torch.cdist(q, ref[keep]).clamp_min(1e-12)).max(1).values.numpy()


class Segmenter:
    """The part segmenter's labels, entropy and bottleneck features of uint8 images [N, 3, H, W]."""

    def __init__(self, seg) -> None:
        self.seg, self.classes = seg, len(seg.class_names)

    @torch.no_grad()
    def run(self, images: torch.Tensor, batch: int = 128) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
        model, feats, labels, entropy = self.seg.model, [], [], []
        hook = model.down[-1].register_forward_hook(
            lambda _m, _i, o: feats.append(torch.cat([o.mean((2, 3)), o.std((2, 3))], 1)))
        try:
            for i in range(0, len(images), batch):
                p = model(images[i:i + batch].float() / 127.5 - 1)[:, :self.classes].softmax(1)
                lab = p.argmax(1)
                car = lab > 0
                ent = -(p * p.clamp_min(1e-12).log()).sum(1)
                labels.append(lab)
                entropy.append((ent * car).sum((1, 2)) / car.sum((1, 2)).clamp_min(1))
        finally:
            hook.remove()
        return torch.cat(labels), torch.cat(entropy).numpy(), torch.cat(feats).double()


def box_masks(labels: torch.Tensor, side: int = MASK_SIDE) -> torch.Tensor:
    """[N, side * side] car masks, each cropped to its bounding box and resized (nearest); empty stays empty."""
    out = torch.zeros(len(labels), side, side)
    for i, lab in enumerate(labels):
        ys, xs = torch.nonzero(lab > 0, as_tuple=True)
        if len(ys) >= 4:
            crop = (lab[ys.min():ys.max() + 1, xs.min():xs.max() + 1] > 0).float()[None, None]
            out[i] = nn.functional.interpolate(crop, size=(side, side), mode="nearest")[0, 0]
    return out.flatten(1)


def best_iou(query: torch.Tensor, reference: torch.Tensor, batch: int = 256) -> np.ndarray:
    """Each query mask's highest IoU with any reference mask (rows of 0/1)."""
    out, area = [], reference.sum(1)[None]
    for i in range(0, len(query), batch):
        q = query[i:i + batch]
        inter = q @ reference.T
        out.append((inter / (q.sum(1, keepdim=True) + area - inter).clamp_min(1)).max(1).values)
    return torch.cat(out).numpy()


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos, neg = score[positive][:, None], score[~positive][None]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True, help="real renders: the reference and the segmenter's training data")
    p.add_argument("--real", required=True, help="held-out real renders (where each threshold is set)")
    p.add_argument("--labels", required=True, help="eye labels: JSON with generator_kimg, seeds [0, n-1], blobs")
    p.add_argument("--generator", default="cars64")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--segmenter-iterations", type=int, default=400)
    p.add_argument("--work", default="/work/runs/generator-quality")
    p.add_argument("--out", default="benchmarks/results/blob_measures.json")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    labels = json.loads(Path(args.labels).read_text())
    ckpt = read_any(args.generator)
    if abs(float(ckpt.extra.get("kimg", -1)) - float(labels["generator_kimg"])) > 1e-6:
        raise GanfactoryError(f"{args.labels} labels the {labels['generator_kimg']}-kimg generator, but "
                              f"{args.generator} is at {ckpt.extra.get('kimg')} kimg")
    n_labelled = labels["seeds"][1] + 1
    eye = np.zeros(n_labelled, bool)
    eye[labels["blobs"]] = True

    train_images, _, _, _, train_ds = read_renders(args.train)
    real_images, *_ = read_renders(args.real)
    work = Path(args.work) / f"part-segmenter-{args.segmenter_iterations}"
    seg = Segmenter(load_segmenter(work) if (work / "model.json").is_file()
                    else train_part_segmenter(train_ds, work, args.segmenter_iterations))
    G = ckpt.generator.eval()
    sets = {"real": real_images, "labelled": generated_images(G, list(range(n_labelled))),
            "samples": generated_images(G, list(range(args.samples)))}
    rng = np.random.default_rng(0)
    reference = train_images[torch.from_numpy(rng.choice(len(train_images), min(5000, len(train_images)),
                                                         replace=False))]
    print("images ready", flush=True)

    net = FeatureNet()
    ref_labels, _, ref_seg = seg.run(reference)
    silhouettes = box_masks(seg.run(train_images[:10000])[0])
    ref_net = net.features(reference)
    scores: dict[str, dict[str, np.ndarray]] = {k: {} for k in
                                                 ("realism-featurenet", "realism-segmenter", "entropy",
                                                  "silhouette", "rule")}
    for name, images in sets.items():
        lab, entropy, feats = seg.run(images)
        scores["realism-featurenet"][name] = -realism(ref_net, net.features(images))
        scores["realism-segmenter"][name] = -realism(ref_seg, feats)
        scores["entropy"][name] = entropy
        scores["silhouette"][name] = -best_iou(box_masks(lab), silhouettes)
        scores["rule"][name] = blob_flags(lab.numpy().astype(np.uint8), seg.seg.class_names).astype(float)
        print(f"scored {name}", flush=True)

    rows = {}
    for name, s in scores.items():
        threshold = float(np.quantile(s["real"], REAL_QUANTILE))
        flagged = s["labelled"] > threshold
        rows[name] = {"auc_vs_eye": round(auc(s["labelled"], eye), 3), "threshold": threshold,
                      "real_share": round(float((s["real"] > threshold).mean()), 4),
                      "labelled_share": round(float(flagged.mean()), 4),
                      "samples_share": round(float((s["samples"] > threshold).mean()), 4),
                      "precision": round(float(flagged[eye].sum() / max(1, flagged.sum())), 3),
                      "recall": round(float(flagged[eye].mean()), 3)}
    print(f"\neye labels: {eye.sum()} of {n_labelled} seeds are blobs ({eye.mean():.2f})\n")
    header = ["score", "AUC vs eye", "real flagged", "labelled flagged", f"{args.samples} samples flagged",
              "precision", "recall"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for name, r in rows.items():
        print(f"| {name} | {r['auc_vs_eye']:.3f} | {r['real_share']:.3f} | {r['labelled_share']:.3f} | "
              f"{r['samples_share']:.3f} | {r['precision']:.2f} | {r['recall']:.2f} |")
    result = {"settings": vars(args), "eye_blob_share": round(float(eye.mean()), 4), "rows": rows,
              "seconds": round(time.perf_counter() - start, 1),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    write_json(Path(args.out), result)
    print(f"wrote {args.out} ({result['seconds']} s, peak RSS {result['peak_rss_mb']} MB)")


if __name__ == "__main__":
    main()
