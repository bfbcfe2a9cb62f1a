"""What a cars generator draws, measured: KID, the share of blobs, the viewpoints and the backgrounds.

    python benchmarks/generator_quality.py --train /work/data/cars64/gan-train-4k --real /work/data/cars64/test \
        --generators cars64 RUN/snapshots/S ... [--samples 1000] [--out benchmarks/results/generator_quality.json] \
        [--svg docs/cars64/views.svg]

Every measure is also taken on the held-out real renders (``--real``), where the truth is known, so that each
instrument's own error is in the table beside what it says about a generator:

- **KID** (``ganfactory.gan.metrics``, the training run's metric): ``--kid-samples`` generated images (seeds
  10**6..., psi 1, const noise, as in training) against the features of every ``--train`` render, with its
  sampling noise (the standard error over blocks of 1,000: a training run's KID uses one such block). Real
  against real: the held-out renders against the reference (not 0 when they show other cars).
- **Blob share**: a part segmenter (a downstream UNet in cars-8, trained here on the ``--train`` renders whose part
  labels are trusted, seed 0) labels each sample; a sample is a blob when its car mask covers under 3% of the
  image, when its largest 4-connected component holds under 90% of the car pixels (not one object), or when it
  shows neither a wheel nor a window (under 3 pixels of each): every view of a real car at 64 px shows one.
- **Viewpoints**: the built-in viewpoint regressor (trained on real renders with their true cameras) reads each
  sample's azimuth; the histogram has 12 bins of 30 degrees; "end-on" = within 45 degrees of the front (0) or the
  back (180), which is half of the views when azimuth is uniform, as in the renders.
- **Backgrounds**: two statistics of the pixels outside the dilated car mask, per image: their colour spread
  (standard deviation) and what is left of it after fitting a plane per channel (a gradient is a plane, a noise
  texture is not). Two thresholds fitted on the ``--train`` renders (whose kind is known) name the kind: noise
  when the residual is high, else gradient when the spread is high, else plain. Plain statistics rather than a
  trained classifier, because a classifier meets the generator's images out of its domain (a CNN tried first
  called 70% of cars64's smooth, mottled backgrounds "noise").

Prints a table and writes JSON (and an SVG of the azimuth histograms).
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganfactory.atomic import write_atomic, write_json
from ganfactory.datasets.labeled import LabeledDataset
from ganfactory.datasets.variation import BACKGROUND_KINDS
from ganfactory.downstream.data import load_data, relabelled
from ganfactory.downstream.train import TrainConfig, load_segmenter, train_network
from ganfactory.gan import load_generator
from ganfactory.gan.metrics import FeatureNet, generated_features, kid
from ganfactory.gan.sampling import seeds_to_z
from ganfactory.schema import Schema

BLOB_MIN_AREA = 0.03
BLOB_MIN_MAIN_COMPONENT = 0.90
BLOB_MIN_PART_PIXELS = 3
END_ON_DEG = 45.0
AZIMUTH_BINS = 12
REAL = "real renders (held out)"


def components(masks: torch.Tensor) -> torch.Tensor:
    """4-connected component labels of boolean masks [N, H, W]: each pixel of a component carries the component's
    smallest flat pixel index + 1, background 0 (min-label propagation until nothing changes)."""
    n, h, w = masks.shape
    big = h * w + 1
    labels = torch.where(masks, torch.arange(1, h * w + 1).reshape(1, h, w).expand(n, h, w), torch.full_like(
        masks, big, dtype=torch.long))
    while True:
        padded = nn.functional.pad(labels, (1, 1, 1, 1), value=big)
        neighbours = torch.stack([padded[:, 1:-1, :-2], padded[:, 1:-1, 2:], padded[:, :-2, 1:-1],
                                  padded[:, 2:, 1:-1], labels])
        new = torch.where(masks, neighbours.min(0).values, labels)
        if torch.equal(new, labels):
            return torch.where(masks, labels, torch.zeros_like(labels))
        labels = new


def blob_flags(labels: np.ndarray, class_names: list[str]) -> np.ndarray:
    """[N] bool from cars-8 labels [N, H, W]: no car (under BLOB_MIN_AREA of the image), not one object (main
    component under BLOB_MIN_MAIN_COMPONENT of the car pixels), or neither a wheel nor a window."""
    labels = torch.from_numpy(labels)
    comp = components(labels > 0)
    wheel = (labels == class_names.index("wheel")).flatten(1).sum(1)
    window = (labels == class_names.index("window")).flatten(1).sum(1)
    flags = []
    for c, n_wheel, n_window in zip(comp, wheel.tolist(), window.tolist(), strict=True):
        ids, counts = torch.unique(c[c > 0], return_counts=True)
        total = int(counts.sum()) if len(ids) else 0
        flags.append(total < BLOB_MIN_AREA * c.numel() or int(counts.max()) < BLOB_MIN_MAIN_COMPONENT * total
                     or max(n_wheel, n_window) < BLOB_MIN_PART_PIXELS)
    return np.array(flags)


def background_statistics(images: torch.Tensor, car: torch.Tensor) -> np.ndarray:
    """[N, 2]: (colour spread, spread left after a per-channel plane fit) of the pixels outside the car mask
    dilated by 2 pixels; images uint8 [N, 3, H, W], car bool [N, H, W]."""
    n, _, h, w = images.shape
    grown = nn.functional.max_pool2d(car[:, None].float(), 5, stride=1, padding=2)[:, 0] > 0
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    design = torch.stack([torch.ones(h * w), xx.flatten(), yy.flatten()], 1).double()
    out = np.zeros((n, 2))
    for i in range(n):
        keep = ~grown[i].flatten()
        if keep.sum() < 16:
            continue
        pixels = images[i].flatten(1).T[keep].double() / 255
        a = design[keep]
        coef = torch.linalg.lstsq(a, pixels).solution
        out[i] = [float(pixels.std(0).mean()), float((pixels - a @ coef).std(0).mean())]
    return out


def fit_background_thresholds(stats: np.ndarray, kinds: np.ndarray) -> tuple[float, float]:
    """(noise threshold on the residual, gradient threshold on the spread) that name the most training renders
    right, by a grid over the observed values' quantiles."""
    def accuracy(t_noise: float, t_grad: float) -> float:
        return float((classify_backgrounds(stats, (t_noise, t_grad)) == kinds).mean())

    grid_noise = np.quantile(stats[:, 1], np.linspace(0.05, 0.95, 91))
    grid_grad = np.quantile(stats[:, 0], np.linspace(0.05, 0.95, 91))
    return max(((tn, tg) for tn in grid_noise for tg in grid_grad), key=lambda t: accuracy(*t))


def classify_backgrounds(stats: np.ndarray, thresholds: tuple[float, float]) -> np.ndarray:
    """Index into BACKGROUND_KINDS (plain, gradient, noise) per image."""
    t_noise, t_grad = thresholds
    return np.where(stats[:, 1] > t_noise, 2, np.where(stats[:, 0] > t_grad, 1, 0))


def azimuth_summary(azimuth_deg: np.ndarray) -> dict:
    a = np.mod(azimuth_deg, 360.0)
    hist = np.bincount((a // (360 / AZIMUTH_BINS)).astype(int) % AZIMUTH_BINS, minlength=AZIMUTH_BINS)
    end_on = np.minimum(np.abs((a + 180) % 360 - 180), np.abs(a - 180)) < END_ON_DEG
    return {"histogram": (hist / len(a)).round(4).tolist(), "end_on_share": round(float(end_on.mean()), 4)}


def measure(images: torch.Tensor, segmenter, thresholds: tuple[float, float], viewpoint) -> dict:
    """Blob share, azimuth histogram and background shares of uint8 images [N, 3, H, W]."""
    labels, _ = segmenter.predict(images.permute(0, 2, 3, 1).numpy())
    blobs = blob_flags(labels, segmenter.class_names)
    kinds = classify_backgrounds(background_statistics(images, torch.from_numpy(labels > 0)), thresholds)
    out = {"blob_share": round(float(blobs.mean()), 4), "blob_indices": np.flatnonzero(blobs)[:64].tolist(),
           "background_share": {k: round(float((kinds == i).mean()), 4) for i, k in enumerate(BACKGROUND_KINDS)},
           "background_kinds": kinds}
    if viewpoint is not None:
        with torch.no_grad():
            az = np.concatenate([viewpoint.predict(images[i:i + 256].float() / 127.5 - 1)["azimuth_deg"].numpy()
                                 for i in range(0, len(images), 256)])
        out["azimuth"] = azimuth_summary(az)
        out["azimuth_deg"] = az
    return out


@torch.no_grad()
def generated_images(G, seeds: list[int], batch: int = 64) -> torch.Tensor:
    out = []
    for i in range(0, len(seeds), batch):
        img = G.synthesis(G.mapping(seeds_to_z(seeds[i:i + batch], G.z_dim)), noise_mode="const")
        out.append(((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8))
    return torch.cat(out)


def read_renders(root: str) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray, LabeledDataset]:
    """Images uint8 [N, 3, H, W], car masks [N, H, W], background kind ids, azimuths (degrees), the dataset."""
    ds = LabeledDataset(root)
    images, cars, kinds, az = [], [], [], []
    for i in range(len(ds)):
        image, label, meta = ds[i]
        images.append(torch.from_numpy(np.array(image)).permute(2, 0, 1))
        cars.append(torch.from_numpy(np.array(label) > 0))
        kinds.append(BACKGROUND_KINDS.index(meta["background_kind"]))
        az.append(float(meta["azimuth_deg"]))
    return torch.stack(images), torch.stack(cars), np.array(kinds), np.array(az), ds


def train_part_segmenter(ds: LabeledDataset, out: Path, iterations: int):
    """A cars-8 UNet on the renders whose part labels are trusted."""
    schema, table = relabelled(ds.schema, "cars-8")
    trusted = [i for i in range(len(ds)) if ds[i][2].get("labels_trusted", True)]
    data = load_data(ds, indices=trusted, label_table=table, schema=Schema(schema.classes, ()), num_keypoints=0)
    train_network(data, out, TrainConfig(iterations=iterations, keypoints=False), progress=False)
    return load_segmenter(out)


def histogram_svg(series: dict[str, list[float]], width: int = 720, height: int = 260) -> str:
    """Grouped bars: one group per 30-degree azimuth bin, one bar per series (shares)."""
    left, top, bottom = 44, 12, 46
    plot_w, plot_h = width - left - 10, height - top - bottom
    ymax = max(max(v) for v in series.values()) * 1.15
    colours = ["#888888", "#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    group = plot_w / AZIMUTH_BINS
    bar = group * 0.8 / len(series)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11"><rect width="100%" height="100%" fill="white"/>']
    for t in np.linspace(0, ymax, 5):
        y = top + plot_h - t / ymax * plot_h
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{t:.2f}</text>')
    for s, (name, values) in enumerate(series.items()):
        for b, v in enumerate(values):
            x = left + b * group + group * 0.1 + s * bar
            h = v / ymax * plot_h
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{colours[s % len(colours)]}"/>')
        parts.append(f'<rect x="{left + 6 + s * 170}" y="{height - 14}" width="10" height="10" '
                     f'fill="{colours[s % len(colours)]}"/><text x="{left + 20 + s * 170}" y="{height - 5}">'
                     f'{name}</text>')
    for b in range(AZIMUTH_BINS):
        parts.append(f'<text x="{left + (b + 0.5) * group:.1f}" y="{top + plot_h + 14}" text-anchor="middle">'
                     f'{b * 30}-{b * 30 + 30}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h + 28}" text-anchor="middle">azimuth (degrees; '
                 f'0 = front, 90 = left side)</text></svg>')
    return "".join(parts) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", required=True, help="real renders that train the instruments and are KID's reference")
    p.add_argument("--real", required=True, help="held-out real renders (the instruments' calibration)")
    p.add_argument("--generators", nargs="+", default=["cars64"])
    p.add_argument("--samples", type=int, default=1000, help="samples for the blob, view and background measures")
    p.add_argument("--kid-samples", type=int, default=5000, help="samples for KID (its noise: the spread over blocks "
                   "of 1000)")
    p.add_argument("--segmenter-iterations", type=int, default=400)
    p.add_argument("--viewpoint", default="cars", help="a viewpoint regressor (built-in name or path)")
    p.add_argument("--work", default="/work/runs/generator-quality", help="where the trained instruments are kept")
    p.add_argument("--out", default="benchmarks/results/generator_quality.json")
    p.add_argument("--svg", default=None, help="write the azimuth histograms here")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    print("reading renders", flush=True)
    train_images, train_cars, train_kinds, _, train_ds = read_renders(args.train)
    real_images, _, real_kinds, real_az, _ = read_renders(args.real)
    print("training the part segmenter", flush=True)
    segmenter = train_part_segmenter(train_ds, Path(args.work) / f"part-segmenter-{args.segmenter_iterations}",
                                     args.segmenter_iterations)
    thresholds = fit_background_thresholds(background_statistics(train_images, train_cars), train_kinds)
    viewpoint = None
    try:
        from ganfactory.inverse.viewpoint import load_viewpoint_regressor

        viewpoint = load_viewpoint_regressor(args.viewpoint, device="cpu")
    except ImportError:
        print("  no viewpoint regressor in this build: azimuths are not measured", flush=True)

    net = FeatureNet()
    reference = net.features(train_images)
    rows: dict[str, dict] = {}
    real = measure(real_images, segmenter, thresholds, viewpoint)
    real["kid_x1e3"] = round(kid(reference, net.features(real_images)) * 1e3, 3)
    real["background_accuracy"] = round(float((real.pop("background_kinds") == real_kinds).mean()), 4)
    real["background_thresholds"] = [round(float(t), 5) for t in thresholds]
    real["true_background_share"] = {k: round(float((real_kinds == i).mean()), 4)
                                     for i, k in enumerate(BACKGROUND_KINDS)}
    real["true_azimuth"] = azimuth_summary(real_az)
    if viewpoint is not None:
        err = np.abs((real.pop("azimuth_deg") - real_az + 180) % 360 - 180)
        real["azimuth_median_error_deg"] = round(float(np.median(err)), 2)
    rows[REAL] = real
    for name in args.generators:
        print(f"measuring {name}", flush=True)
        G = load_generator(name).eval()
        images = generated_images(G, list(range(args.samples)))
        row = measure(images, segmenter, thresholds, viewpoint)
        row.pop("azimuth_deg", None)
        row.pop("background_kinds")
        feats = generated_features(G, net, args.kid_samples, seed_offset=10**6)
        blocks = [kid(reference, b) * 1e3 for b in feats.split(1000)]
        row["kid_x1e3"] = round(kid(reference, feats) * 1e3, 3)
        row["kid_x1e3_per_1000"] = [round(b, 3) for b in blocks]
        row["kid_x1e3_noise"] = round(float(np.std(blocks, ddof=1) / np.sqrt(len(blocks))), 3) \
            if len(blocks) > 1 else None
        rows[name] = row

    header = ["", "KID x1e3", "blob share", "end-on share", "plain/gradient/noise"]
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for name, r in rows.items():
        bg = "/".join(f"{r['background_share'][k]:.2f}" for k in BACKGROUND_KINDS)
        end_on = f"{r['azimuth']['end_on_share']:.2f}" if "azimuth" in r else "-"
        noise = f" +- {r['kid_x1e3_noise']:.2f}" if r.get("kid_x1e3_noise") else ""
        print(f"| {name} | {r['kid_x1e3']:.2f}{noise} | {r['blob_share']:.3f} | {end_on} | {bg} |")
    print(f"\nreal renders: true end-on share {real['true_azimuth']['end_on_share']:.2f}, true backgrounds "
          + "/".join(f"{real['true_background_share'][k]:.2f}" for k in BACKGROUND_KINDS)
          + f", background classifier accuracy {real['background_accuracy']:.3f}"
          + (f", azimuth median error {real['azimuth_median_error_deg']:.1f} deg" if viewpoint is not None else ""))
    result = {"settings": {k: v for k, v in vars(args).items()}, "rows": rows,
              "definitions": {"blob_min_area": BLOB_MIN_AREA, "blob_min_main_component": BLOB_MIN_MAIN_COMPONENT,
                              "end_on_deg": END_ON_DEG, "azimuth_bins": AZIMUTH_BINS},
              "seconds": round(time.perf_counter() - start, 1),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    write_json(Path(args.out), result)
    print(f"wrote {args.out} ({result['seconds']} s, peak RSS {result['peak_rss_mb']} MB)")
    if args.svg and viewpoint is not None:
        series = {"renders (true)": real["true_azimuth"]["histogram"], "renders (regressor)":
                  real["azimuth"]["histogram"]}
        series.update({name: r["azimuth"]["histogram"] for name, r in rows.items() if name != REAL})
        write_atomic(Path(args.svg), histogram_svg(series).encode())
        print(f"wrote {args.svg}")


if __name__ == "__main__":
    main()
