"""The ablation of issue 16's changes: each switched off alone, its effect on the DatasetGAN arms' mIoU.

Baseline: ``ganfactory bench cars`` with every change on (truncation 0.7 on the coarse half of the style layers,
per-image noise from the seed in the same mode for the interpreter's training and labelling, the keypoint fix,
sqrt class weights, the interpreter's final fit on every annotated pixel). Each row turns one of them off:

    truncation       truncation_psi 1 (no truncation)
    coarse-layers    truncation 0.7 on every style layer instead of the coarse half
    noise            noise_mode const (one stored noise map for every image, the old sampling)
    keypoint-fix     the old keypoint rules (every point on the car visible, heads on every point, peak > 0.3)
    class-weighting  plain cross-entropy in the interpreter
    final-fit        the early-stopped interpreter kept (its held-out fifth of the pixels never trained on)

The DatasetGAN arms (inversion, annotator) on one protocol (default unseen cars). The fully supervised network (the
simulated annotator) and the inversion's annotations do not depend on any switch, so every row reuses them
(``run_bench(reuse=...)``): from ``--shared`` (a finished ``bench cars`` run of the same protocol and inversion
steps, e.g. the reduced benchmark) when given, else from the baseline row. The annotator's annotations are reused
from the baseline where the switch does not touch them.

Budget: ``--budget reduced`` (default; stated in the output): 120 iterations x 16 per network, 300 synthetic
candidates (10% filtered), an interpreter of 2 models up to 6 epochs on 2,048 pixels per annotated image, inversion
30 + 30 steps (what a two-core machine shared with a dozen other jobs finishes in under an hour); ``--budget quick``
is the benchmark's quick budget (wiring only); ``--budget full`` the benchmark's defaults. Rows run in order, or
only those named by ``--only`` (so that several processes can share the work; the baseline must exist or be among
them). Writes OUT/<row>/ (bench runs), OUT/ablation.json and prints a table.

Run: ``.venv/bin/python benchmarks/ablation.py --data /work/data/cars64 --out runs/ablation``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

from ganfactory.atomic import write_json
from ganfactory.bench import ROUTES, bench_config, run_bench
from ganfactory.downstream import TrainConfig

ROWS: dict[str, dict] = {
    "baseline": {},
    "truncation": {"truncation_psi": 1.0},
    "coarse-layers": {"truncation_layers": "all"},
    "noise": {"noise_mode": "const"},
    "keypoint-fix": {"keypoint_fix": False},
    "class-weighting": {"class_weighting": "none"},
    "final-fit": {"final_fit": False},
}
"""Row name -> the BenchConfig fields it changes from the baseline."""
SAMPLING = ("truncation", "coarse-layers", "noise", "keypoint-fix")
"""Rows whose switch changes the annotator route's annotations (the others reuse the baseline's)."""


def config_for(row: str, generator: str, budget: str, protocol: str, routes: tuple[str, ...] = ROUTES):
    arms = (*routes, "full")
    if budget == "quick":
        base = bench_config(generator, quick=True, arms=arms, protocols=(protocol,))
    elif budget == "full":
        base = bench_config(generator, arms=arms, protocols=(protocol,))
    else:
        base = bench_config(generator, arms=arms, protocols=(protocol,), synthetic_samples=300, sweep_sizes=(),
                            interpreter_models=2, interpreter_epochs=6, interpreter_pixels=2048,
                            inversion_steps=(30, 30),
                            train=TrainConfig(iterations=120, batch_size=16, log_every=40, checkpoint_every=60))
    return dataclasses.replace(base, **ROWS[row])


def _root(protocol: str) -> str:
    return "" if protocol == "seen" else f"{protocol}/"


def shared_paths(protocol: str, routes: tuple[str, ...] = ROUTES) -> tuple[str, ...]:
    """What every row shares: the fully supervised network and the inversion's annotations."""
    root = _root(protocol)
    inv = (f"{root}arms/inversion/annotations", f"{root}arms/inversion/annotations.done")
    return (f"{root}arms/full",) + (inv if "inversion" in routes else ())


def baseline_paths(row: str, protocol: str, routes: tuple[str, ...] = ROUTES) -> tuple[str, ...]:
    """What a row may take from the baseline row besides: the annotator's annotations, unless its switch makes
    them differently."""
    root = _root(protocol)
    if row in SAMPLING or "annotator" not in routes:
        return ()
    return (f"{root}arms/annotator/annotations", f"{root}arms/annotator/annotations.done")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--data", default=None, help="directory of built splits (default: each run builds its own)")
    p.add_argument("--generator", default="cars64")
    p.add_argument("--protocol", choices=["seen", "unseen"], default="unseen")
    p.add_argument("--budget", choices=["quick", "reduced", "full"], default="reduced")
    p.add_argument("--only", default=None, help="comma-separated rows (default: all, baseline first)")
    p.add_argument("--routes", default="inversion,annotator",
                   help="the DatasetGAN routes each row runs (default both; one halves the time)")
    p.add_argument("--shared", default=None, help="a finished bench run to take the full network and the inversion "
                                                  "annotations from (default: the baseline row computes them)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = list(ROWS) if not args.only else [r.strip() for r in args.only.split(",")]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        print(f"ablation: unknown rows {unknown}; choose from {', '.join(ROWS)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    base_dir = out / "baseline"
    for row in rows:
        routes = tuple(r.strip() for r in args.routes.split(","))
        config = config_for(row, args.generator, args.budget, args.protocol, routes)
        needs = [base_dir / rel for rel in baseline_paths(row, args.protocol, routes)]
        if not args.shared:
            needs += [base_dir / rel for rel in shared_paths(args.protocol, routes)]
        if row != "baseline" and not all(p.exists() for p in needs):
            print(f"ablation: row {row} shares stages of the baseline row; run the baseline first", file=sys.stderr)
            return 2
        shared = args.shared or (None if row == "baseline" else base_dir)
        reuse = {rel: shared for rel in shared_paths(args.protocol, routes)} if shared else {}
        if row != "baseline":
            reuse.update({rel: base_dir for rel in baseline_paths(row, args.protocol, routes)})
        run_bench(config, out / row, args.data, progress=not args.quiet, reuse=reuse)
    table = collect(out, args.budget, args.protocol)
    write_json(out / "ablation.json", table)
    print(format_table(table))
    return 0


def collect(out: Path, budget: str, protocol: str) -> dict:
    """Every finished row's mIoU per arm and its difference from the baseline."""
    results = {}
    for row in ROWS:
        path = out / row / "results.json"
        if path.is_file():
            r = json.loads(path.read_text())
            results[row] = {a: s["miou"] for a, s in r["protocols"][protocol]["arms"].items()}
            results[row]["per_class"] = {a: s["per_class_iou"] for a, s in r["protocols"][protocol]["arms"].items()}
            results[row]["pck"] = {a: s.get("pck", {}).get("pck") for a, s in r["protocols"][protocol]["arms"].items()}
    base = results.get("baseline", {})
    rows = []
    for row, scores in results.items():
        rows.append({"row": row, "changes": ROWS[row],
                     **{a: scores.get(a) for a in ("inversion", "annotator")},
                     **{f"{a}_delta": None if base.get(a) is None or scores.get(a) is None else scores[a] - base[a]
                        for a in ("inversion", "annotator")},
                     "pck": scores["pck"], "per_class_iou": scores["per_class"]})
    seeds = "training seed 0, interpreter seed 0, synthetic seeds 0.., annotator seeds 100000000.."
    return {"budget": budget, "protocol": protocol, "full": base.get("full"),
            "rows": rows, "seeds": seeds}


def format_table(table: dict) -> str:
    lines = [f"ablation ({table['budget']} budget, {table['protocol']} cars; the simulated annotator, fully "
             f"supervised: {table['full']})",
             f"{'switched off':<16} {'inversion':>10} {'delta':>8} {'annotator':>10} {'delta':>8}"]

    def f(v, signed=False):
        return "n/a" if v is None else (f"{v:+.4f}" if signed else f"{v:.4f}")

    for r in table["rows"]:
        lines.append(f"{r['row']:<16} {f(r['inversion']):>10} {f(r['inversion_delta'], True):>8} "
                     f"{f(r['annotator']):>10} {f(r['annotator_delta'], True):>8}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
