"""Write docs/cars64/: the built-in cars64 generator's training record (KID curve, log, sample grids).

Usage: .venv/bin/python scripts/cars64-docs.py [--run /work/runs/cars64] [--ckpt cars64] [--out docs/cars64]

Reads the training run directory that scripts/train-cars64.sh writes (metrics.jsonl, stats.jsonl, log.txt,
reals.png) and the shipped checkpoint (whose extra["kimg"] says which snapshot it is), then writes
README.md (numbers), kid.svg (the metric curve), log.txt (the progress log), reals.png and samples.png.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from datetime import datetime
from pathlib import Path

from ganfactory.atomic import write_atomic
from ganfactory.gan import load_generator
from ganfactory.gan.sampling import generate, save_samples
from ganfactory.report.html import line_chart

MAX_GAP_S = 600
"""Log lines arrive once a minute while training; a longer gap is a stop between sessions, not training."""


def wall_hours(log: Path) -> float:
    """Hours the job ran, from the progress log's timestamps (stops between sessions excluded)."""
    stamps = [datetime.strptime(" ".join(line.split()[:2]), "%Y-%m-%d %H:%M:%S")
              for line in log.read_text().splitlines() if line[:2] == "20"]
    gaps = [(b - a).total_seconds() for a, b in zip(stamps[:-1], stamps[1:], strict=True)]
    return sum(g for g in gaps if g < MAX_GAP_S) / 3600


def compute_hours(stats: Path) -> float:
    """Hours spent in training steps (sum of each step's s/kimg x its kimg), excluding snapshots and KID."""
    total, prev = 0.0, 0.0
    for line in stats.read_text().splitlines():
        row = json.loads(line)
        if row["kimg"] > prev:
            total += row["sec_per_kimg"] * (row["kimg"] - prev)
        prev = row["kimg"]
    return total / 3600


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="/work/runs/cars64")
    ap.add_argument("--ckpt", default="cars64")
    ap.add_argument("--out", default="docs/cars64")
    args = ap.parse_args()
    run, out = Path(args.run), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kids = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    from ganfactory.gan.io import read_any

    shipped = read_any(args.ckpt)
    kimg = shipped.extra.get("kimg")
    cfg = shipped.extra.get("train_config", {})
    points = [(k["kimg"], k["kid"] * 1e3) for k in kids]
    svg = line_chart({"KID x 1e3": points}, width=720, height=300, ymax=max(y for _, y in points) * 1.05,
                     xlabel="kimg (log scale)")
    svg = svg[:svg.index("</svg>") + 6].replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    write_atomic(out / "kid.svg", svg + "\n")
    shutil.copyfile(run / "log.txt", out / "log.txt")
    shutil.copyfile(run / "reals.png", out / "reals.png")
    G = load_generator(args.ckpt)
    tmp = out / ".samples"
    save_samples(generate(G, list(range(64))), tmp)
    shutil.move(tmp / "grid.png", out / "samples.png")
    shutil.rmtree(tmp)
    best = min(kids, key=lambda k: k["kid"])
    at_ship = next((k for k in kids if abs(k["kimg"] - (kimg or -1)) < 1e-6), None)
    rows = "\n".join(f"| {k['kimg']:g} | {k['kid'] * 1e3:.2f} |" for k in kids)
    text = f"""# cars64: the built-in generator

`load_generator("cars64")` / `--ckpt cars64`. A StyleGAN2 (preset `cpu64`: z/w {cfg.get('z_dim')}, channels
up to {cfg.get('channel_max')}, batch {cfg.get('batch')}, DiffAugment {', '.join(cfg.get('augment') or []) or 'off'},
x-flips {'on' if cfg.get('mirror') else 'off'}) trained here, on 2 CPU cores, on the cars `gan-train` split
(TORCS renders, ../shared/BENCHMARK.md) with `scripts/train-cars64.sh`.

- Shipped snapshot: **{kimg:g} kimg**, KID {at_ship['kid'] * 1e3 if at_ship else float('nan'):.2f}e-3
  (the lowest of the run so far: {best['kid'] * 1e3:.2f}e-3 at {best['kimg']:g} kimg).
- Time: {compute_hours(run / 'stats.jsonl'):.1f} h in training steps, {wall_hours(run / 'log.txt'):.1f} h of
  wall clock with snapshots and KID, over several sessions (resumed from snapshots).
- KID: squared MMD with the cubic polynomial kernel on the activation statistics of a fixed, randomly
  initialised ResNet-18 (no download; see the README's metric section and `ganfactory.gan.metrics`),
  {cfg.get('metric_generated')} generated against {cfg.get('metric_real')} real images, at every snapshot.
  Lower is better; real against real is about 0. The values compare snapshots with each other, not with
  published KID.

![KID by kimg](kid.svg)

Samples (seeds 0-63, no truncation) and real renders:

![samples](samples.png) ![reals](reals.png)

| kimg | KID x 1e3 |
|---|---|
{rows}

`log.txt` is the progress log (kimg, s/kimg, losses, one line a minute).
"""
    write_atomic(out / "README.md", text)
    print(f"wrote {out}: README.md kid.svg samples.png reals.png log.txt")


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"cars64-docs: error: {e}")
