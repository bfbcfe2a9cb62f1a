"""Write docs/cars64/: the built-in cars64 generator's training record (KID curve, log, sample grids).

Usage: .venv/bin/python scripts/cars64-docs.py [--run /work/runs/cars64] [--ckpt cars64] [--out docs/cars64]
       [--assessment docs/cars64/assessment.md]

The record outlives any machine: docs/cars64/metrics.jsonl (KID of every snapshot, with the run it came from)
and docs/cars64/log.txt (the progress log) are committed, and a run directory only adds to them. So the script
first merges what the run that scripts/train-cars64.sh writes (metrics.jsonl, log.txt, reals.png) has beyond
the record, then writes README.md (numbers up to the shipped checkpoint, whose extra["kimg"] says which
snapshot it is), kid.svg (the metric curve), reals.png and samples.png.
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

MAX_GAP_S = 600
"""Log lines arrive once a minute while training; a longer gap is a stop between sessions, not training."""


def log_upto_lines(lines: list[str], kimg: float) -> list[str]:
    """The progress log's lines up to the shipped snapshot (the run may have gone on since)."""
    def line_kimg(line: str) -> float:
        words = line.split()
        return float(words[3]) if len(words) > 3 and words[2] == "kimg" else 0.0

    return [line for line in lines if line_kimg(line) <= kimg + 1e-6]


def wall_hours(lines: list[str]) -> float:
    """Hours the job ran, from the progress log's timestamps (stops between sessions excluded)."""
    stamps = [datetime.strptime(" ".join(line.split()[:2]), "%Y-%m-%d %H:%M:%S") for line in lines if line[:2] == "20"]
    gaps = [(b - a).total_seconds() for a, b in zip(stamps[:-1], stamps[1:], strict=True)]
    return sum(g for g in gaps if g < MAX_GAP_S) / 3600


def kid_svg(points: list[tuple[float, float]], width: int = 720, height: int = 300) -> str:
    """A standalone SVG line chart of KID x 1e3 against kimg, linear axes, ticks at round numbers."""
    left, right, top, bottom = 50, 20, 12, 40
    xmax = max(x for x, _ in points)
    ymax = max(y for _, y in points) * 1.05
    xstep = next(s for s in (10, 20, 50, 100, 200, 500, 1000, 2000) if xmax / s <= 10)
    ystep = next(s for s in (0.5, 1, 2, 5, 10, 20, 50) if ymax / s <= 8)

    def px(x: float) -> float:
        return left + (width - left - right) * x / xmax

    def py(y: float) -> float:
        return top + (height - top - bottom) * (1 - y / ymax)

    parts = [f'<rect width="{width}" height="{height}" fill="white"/>']
    for i in range(int(ymax / ystep) + 1):
        y = i * ystep
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{py(y) + 4:.1f}" font-size="11" text-anchor="end">{y:g}</text>')
    for i in range(int(xmax / xstep) + 1):
        x = i * xstep
        parts.append(f'<text x="{px(x):.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle">'
                     f'{x:g}</text>')
    path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
    parts.append(f'<polyline points="{path}" fill="none" stroke="#2c6fbb" stroke-width="2"/>')
    parts += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="#2c6fbb"><title>{x:g} kimg: {y:.2f}</title>'
              '</circle>' for x, y in points]
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 6}" font-size="12" text-anchor="middle">'
                 'kimg (thousands of real images shown to D)</text>')
    parts.append(f'<text x="14" y="{(top + height - bottom) / 2}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 14 {(top + height - bottom) / 2})">KID x 1e3</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="sans-serif">{"".join(parts)}</svg>\n')


def merge_record(out: Path, run: Path | None, run_name: str) -> tuple[list[dict], list[str]]:
    """The committed KID record and log, extended by what ``run`` has that they lack (written back atomically)."""
    metrics_path, log_path = out / "metrics.jsonl", out / "log.txt"
    kids = [json.loads(line) for line in metrics_path.read_text().splitlines()] if metrics_path.is_file() else []
    log = log_path.read_text().splitlines() if log_path.is_file() else []
    if run is not None and (run / "metrics.jsonl").is_file():
        # keyed by (run, kimg): a run restarted from shipped weights repeats kimg values another run has
        have = {(k["run"], round(k["kimg"], 6)) for k in kids}
        kids += [{"kimg": k["kimg"], "kid": k["kid"], "run": run_name}
                 for k in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
                 if (run_name, round(k["kimg"], 6)) not in have]
        last_stamp = " ".join(log[-1].split()[:2]) if log else ""
        log += [line for line in (run / "log.txt").read_text().splitlines() if " ".join(line.split()[:2]) > last_stamp]
        write_atomic(metrics_path, "".join(json.dumps(k) + "\n" for k in kids))
        write_atomic(log_path, "".join(line + "\n" for line in log))
        shutil.copyfile(run / "reals.png", out / "reals.png")
    return kids, log


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="a training run directory to add to the record")
    ap.add_argument("--run-name", default=None, help="how the record names that run (default: its path)")
    ap.add_argument("--ckpt", default="cars64")
    ap.add_argument("--out", default="docs/cars64")
    ap.add_argument("--assessment", default=None, help="a markdown file: what a person saw in the samples")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from ganfactory.gan.io import read_any

    shipped = read_any(args.ckpt)
    kimg = shipped.extra["kimg"]
    run = Path(args.run) if args.run else None
    record, log = merge_record(out, run, args.run_name or str(run))
    kids = [k for k in record if k["kimg"] <= kimg + 1e-6]            # the record up to the shipped snapshot
    log = log_upto_lines(log, kimg)
    cfg = shipped.extra.get("train_config", {})
    points = [(k["kimg"], k["kid"] * 1e3) for k in kids]
    write_atomic(out / "kid.svg", kid_svg(points))
    G = load_generator(args.ckpt)
    tmp = out / ".samples"
    save_samples(generate(G, list(range(64))), tmp)
    shutil.move(tmp / "grid.png", out / "samples.png")
    shutil.rmtree(tmp)
    best = min(kids, key=lambda k: k["kid"])
    at_ship = next((k for k in kids if abs(k["kimg"] - kimg) < 1e-6), None)
    rows = "\n".join(f"| {k['kimg']:g} | {k['kid'] * 1e3:.2f} | {k['run']} |" for k in kids)
    text = f"""# cars64: the built-in generator

`load_generator("cars64")` / `--ckpt cars64`. A StyleGAN2 (preset `cpu64`: z/w {cfg.get('z_dim')}, channels
up to {cfg.get('channel_max')}, batch {cfg.get('batch')}, DiffAugment {', '.join(cfg.get('augment') or []) or 'off'},
x-flips {'on' if cfg.get('mirror') else 'off'}) trained here, on 2 CPU cores, on the cars `gan-train` split
(TORCS renders, ../shared/BENCHMARK.md) with `scripts/train-cars64.sh`.

- Shipped snapshot: **{kimg:g} kimg**, KID {at_ship['kid'] * 1e3 if at_ship else float('nan'):.2f}e-3
  (the lowest of the run up to it: {best['kid'] * 1e3:.2f}e-3 at {best['kimg']:g} kimg).
- Time: {wall_hours(log):.1f} h of training wall clock (snapshots and KID included, stops between sessions
  excluded), over several sessions and runs (each run resumed from snapshots, or started from the shipped
  weights with `--init-from` after the run directory was lost).
- KID: squared MMD with the cubic polynomial kernel on the activation statistics of a fixed, randomly
  initialised ResNet-18 (no download; see the README's metric section and `ganfactory.gan.metrics`),
  {cfg.get('metric_generated')} generated against {cfg.get('metric_real')} real images, at every snapshot.
  Lower is better; real against real is about 0. The values compare snapshots with each other, not with
  published KID.

![KID by kimg](kid.svg)

Samples (seeds 0-63, no truncation) and real renders:

![samples](samples.png) ![reals](reals.png)
{Path(args.assessment).read_text() if args.assessment else ""}
| kimg | KID x 1e3 | run |
|---|---|---|
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
