"""The cars benchmark's HTML report, made from a run directory's results.json and the files beside it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ganfactory.atomic import write_atomic
from ganfactory.datasets.labeled import LabeledDataset
from ganfactory.downstream.data import load_data, relabelled, table_between
from ganfactory.report.html import (
    bar_chart,
    embed_png,
    escape,
    histogram,
    image_grid,
    label_overlay,
    legend,
    line_chart,
    scatter_chart,
    table,
)
from ganfactory.schema import Schema

__all__ = ["write_bench_report"]

ARM_TITLES = {"few": "1. few-shot (16 real labels)", "inversion": "2. DatasetGAN, inversion route",
              "annotator": "3. DatasetGAN, annotator route",
              "mixed": "4. DatasetGAN + the 16 real labels (mixed batches)",
              "full": "5. fully supervised (full split)"}
PROTOCOL_TITLES = {"seen": "Seen cars (few / full / test: the 16 labels show nearly every test car)",
                   "unseen": "Unseen cars (few-u / full-u / test-u: the test cars are in no label; the headline)"}

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;max-width:1160px;color:#222}
h1{font-size:24px} h2{font-size:19px;margin-top:30px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.legend span{margin-right:14px;font-size:13px;white-space:nowrap} .legend i{display:inline-block;width:12px;
height:12px;margin-right:4px;vertical-align:middle;border:1px solid #888}
.quick{background:#fff3cd;border:1px solid #e0c060;padding:6px 10px} .note{color:#555;font-size:14px}
pre{background:#f6f6f6;padding:8px;font-size:12px;overflow-x:auto;max-height:420px}
.grid img{image-rendering:pixelated;display:block} table.grid td{padding:1px;border:none}
.cols{display:flex;gap:24px;flex-wrap:wrap} table.grid th{text-align:center}
"""


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def _rgb(c) -> str:
    return f"rgb({c[0]},{c[1]},{c[2]})"


def _protocol_section(run: Path, name: str, proto: dict, results: dict, config: dict, k: int, colors: dict,
                      target: Schema, headed: bool, why: dict[str, str]) -> str:
    """One protocol's results table, per-class IoU, keypoints, test images, sweep and uncertainty."""
    arms = proto["arms"]
    names = results["classes"]
    root = run / proto.get("root", ".")
    parts = []
    if headed:
        parts.append(f"<h2>{escape(PROTOCOL_TITLES.get(name, name))}</h2>")
        if proto.get("held_out_car_ids"):
            parts.append(f'<p class="note">Held out of every label, the only cars of the test: '
                         f'{escape(", ".join(proto["held_out_car_ids"]))}.</p>')
    parts.append(f'<p class="note">{proto["test_images"]} real test images ({escape(proto["data"]["test"])}).</p>')
    verdict = datasetgan_verdict(arms)
    if verdict:
        reason = why.get("wins" if verdict.startswith("DatasetGAN wins") else "loses", "")
        parts.append(f'<p class="verdict"><b>{escape(verdict)}</b> {escape(reason)}</p>')
    test_ds = LabeledDataset(proto["data"]["test"])
    test = load_data(test_ds, config["resolution"], range(min(k, len(test_ds))),
                     table_between(test_ds.schema, target), target)
    # results table
    rows = []
    for arm, title in ARM_TITLES.items():
        if arm in arms:
            s = arms[arm]
            rows.append([title, s["train_samples"], _fmt(s["miou"]), _fmt(s["pixel_accuracy"]),
                         _fmt(s.get("pck", {}).get("pck")), f"{s['train_seconds']:.0f} s"])
    parts.append("<h3>Results</h3>" + table(["arm", "training samples", "mIoU", "pixel acc.", "PCK@0.1",
                                             "training time"], rows))

    # per-class IoU
    series = {ARM_TITLES[a].split(" (")[0]: [arms[a]["per_class_iou"].get(n) for n in names]
              for a in ARM_TITLES if a in arms}
    parts.append("<h3>Per-class IoU</h3>" + bar_chart(names, series))
    parts.append(table(["arm"] + names, [[label] + [_fmt(v, 2) for v in vals] for label, vals in series.items()]))

    # keypoints
    kp_arms = [a for a in ARM_TITLES if a in arms and "pck" in arms[a]]
    if kp_arms and results["keypoints"]:
        parts.append("<h3>PCK@0.1 per keypoint</h3>" + table(
            ["keypoint"] + kp_arms,
            [[name] + [_fmt(arms[a]["pck"]["per_keypoint"][j], 2) for a in kp_arms]
             for j, name in enumerate(results["keypoints"])]))

    # sample grids
    sample_rows, header = [], ["image", "truth"] + [a for a in ARM_TITLES if a in arms]
    preds = {a: np.load(root / "arms" / a / "samples.npz") for a in ARM_TITLES if a in arms}
    for i in range(len(test)):
        image = test.images[i].numpy()
        truth_kp = test.keypoints[i].numpy()
        visible = truth_kp[truth_kp[:, 2] > 0] if len(truth_kp) else None
        row = [image, label_overlay(image, test.labels[i].numpy(), colors, keypoints=visible)]
        for a in header[2:]:
            kp = preds[a]["keypoints"][i] if "keypoints" in preds[a].files else None
            row.append(label_overlay(image, preds[a]["labels"][i], colors, keypoints=kp))
        sample_rows.append(row)
    parts.append("<h3>Test images and each arm's labels</h3>"
                 '<p class="note">Keypoints as white squares (truth: the visible ones; arms: every predicted '
                 "point).</p>")
    parts.append(legend([(c.name, _rgb(c.color)) for c in target.classes if c.id]))
    parts.append(table(header, [[embed_png(img, scale=2) for img in row] for row in sample_rows], cls="grid",
                       raw=True))

    # synthetic data: sweep and uncertainty
    if proto["sweep"]:
        lines = {}
        for row in proto["sweep"]:
            key = f"{row['route']}, {'filtered' if row['filtered'] else 'unfiltered'}"
            lines.setdefault(key, []).append((row["candidates"], row["miou"]))
        parts.append("<h3>mIoU against the number of synthetic samples</h3>"
                     f'<p class="note">Trained on the first N synthesized candidates; "filtered" drops the '
                     f'{config["filter_fraction"]:.0%} of them the interpreter ensemble disagrees on most.</p>')
        parts.append(line_chart({k: sorted(v) for k, v in lines.items()}, xlabel="synthetic candidates N"))
        parts.append(table(["route", "candidates", "filtered", "training samples", "mIoU", "PCK@0.1"],
                           [[r["route"], r["candidates"], "yes" if r["filtered"] else "no", r["train_samples"],
                             _fmt(r["miou"]), _fmt(r["pck"])] for r in proto["sweep"]]))
    for route, u in proto["uncertainty"].items():
        synth = LabeledDataset(root / "arms" / route / "synthetic")
        index = {sid: i for i, sid in enumerate(synth.ids)}
        removed = [index[r] for r in u["removed"]]
        shown = sorted(removed, key=lambda i: -u["scores"][i])[:12]
        tiles = []
        for i in shown:
            image, label, meta = synth[i]
            schema_colors = {c.id: c.color for c in synth.schema.classes}
            tiles.append([image, label_overlay(image, label, schema_colors)])
        parts.append(f"<h3>Uncertainty of the {escape(route)} route's synthetic data</h3>"
                     f'<p class="note">{len(removed)} of {u["candidates"]} candidates removed (the '
                     f'{u["fraction"]:.0%} most uncertain; red, right of the dashed line at '
                     f'{_fmt(u["threshold"], 4)}).</p>')
        cells = [f"<div>{histogram(u['scores'], u['threshold'])}</div>"]
        if tiles:
            grid_rows = [sum(tiles[j:j + 3], []) for j in range(0, len(tiles), 3)]
            width = max(len(r) for r in grid_rows)
            grid_rows = [r + [np.full_like(r[0], 255)] * (width - len(r)) for r in grid_rows]
            cells.append('<div class="grid"><p class="note">The most uncertain removed samples (image, label):</p>'
                         + embed_png(image_grid(grid_rows), scale=2, alt="removed samples") + "</div>")
        parts.append('<div class="cols">' + "".join(cells) + "</div>")

    return "\n".join(parts)


def datasetgan_verdict(arms: dict) -> str | None:
    """One sentence: does DatasetGAN (its best arm) beat the 16 real labels alone here, by how much, and where the
    difference sits (the classes of the largest IoU gap)?"""
    if "few" not in arms:
        return None
    routes = {a: arms[a]["miou"] for a in ("inversion", "annotator", "mixed") if a in arms}
    if not routes:
        return None
    best = max(routes, key=routes.get)
    few = arms["few"]["miou"]
    diff = routes[best] - few
    label = ARM_TITLES[best].split(". ", 1)[1].split(" (")[0]
    gaps = {c: (arms[best]["per_class_iou"].get(c) or 0.0) - (v or 0.0)
            for c, v in arms["few"].get("per_class_iou", {}).items()}
    if diff > 0:
        top = sorted(gaps, key=lambda c: -gaps[c])[:2]
        where = ", ".join(f"{c} {gaps[c]:+.2f}" for c in top if gaps[c] > 0)
        return (f"DatasetGAN wins here: {label} reaches {routes[best]:.3f} mIoU against {few:.3f} for the 16 real "
                f"labels alone (+{diff:.3f}" + (f"; most on {where} IoU)." if where else ")."))
    top = sorted(gaps, key=lambda c: gaps[c])[:2]
    where = ", ".join(f"{c} {gaps[c]:+.2f}" for c in top if gaps[c] < 0)
    return (f"DatasetGAN loses here: its best arm ({label}) reaches {routes[best]:.3f} mIoU, {-diff:.3f} below the "
            f"16 real labels alone ({few:.3f})" + (f", most on {where} IoU." if where else "."))


def write_bench_report(run: str | Path, out: str | Path | None = None,
                       title: str = "ganfactory cars benchmark", why: dict[str, str] | None = None,
                       sections: tuple[str, ...] = ()) -> Path:
    """Write ``run``/report/index.html (or ``out``) from ``run``/results.json; returns its path. ``why``: a sentence
    to follow the verdict when DatasetGAN 'wins' or 'loses' (the demo's). ``sections``: more HTML (a caller's own
    results, e.g. the demo's reconstructions), placed before the configuration."""
    run = Path(run)
    results = json.loads((run / "results.json").read_text())
    config = results["config"]
    test_schema = LabeledDataset(results["data"]["test"]).schema
    target, _ = relabelled(test_schema, config["classes"])
    target = Schema(target.classes, test_schema.keypoints)
    k = int(config["sample_images"])
    colors = {c.id: c.color for c in target.classes}
    parts = [f"<h1>{escape(title)}{' (quick)' if results['quick'] else ''}</h1>"]
    if results["quick"]:
        parts.append('<p class="quick"><b>quick run</b>: tiny splits and budgets; it proves the wiring, not the '
                     "science. Do not read the numbers as results.</p>")
    parts.append(f'<p class="note">Generator <code>{escape(results["generator"])}</code>; every arm trains the same '
                 f'network ({escape(config["train"]["architecture"])}, {config["train"]["iterations"]} iterations x '
                 f'batch {config["train"]["batch_size"]}) and is scored on real test images '
                 f'at {config["resolution"]} px in {escape(config["classes"])} (mIoU from one dataset-level confusion '
                 "matrix, background included; PCK at 0.1 of the object's bounding-box size over visible "
                 "keypoints).</p>")
    parts.append(f'<p class="note">Sampling: truncation psi {config.get("truncation_psi", 1.0)} on '
                 f'{escape(config.get("truncation_layers", "all"))} style layers, noise mode '
                 f'{escape(config.get("noise_mode", "const"))}; keypoint fix '
                 f'{"on" if config.get("keypoint_fix") else "off"}; interpreter class weighting '
                 f'{escape(config.get("class_weighting", "none"))}, final fit '
                 f'{"on" if config.get("final_fit") else "off"}.</p>')
    from ganfactory.gan.io import BUILTIN_GENERATORS

    if results["generator"] in BUILTIN_GENERATORS:
        parts.append(f'<p class="note">About the generator: {escape(BUILTIN_GENERATORS[results["generator"]])}</p>')
    protocols = results.get("protocols") or {"seen": {**results, "root": "."}}
    if len(protocols) > 1:
        parts.append("<h2>Both protocols</h2>" + table(
            ["arm"] + [f"{p} cars mIoU" for p in protocols] + [f"{p} cars PCK@0.1" for p in protocols],
            [[t] + [_fmt(protocols[p]["arms"].get(a, {}).get("miou")) for p in protocols]
             + [_fmt(protocols[p]["arms"].get(a, {}).get("pck", {}).get("pck")) for p in protocols]
             for a, t in ARM_TITLES.items() if any(a in protocols[p]["arms"] for p in protocols)]))
    for name, proto in protocols.items():
        parts.append(_protocol_section(run, name, proto, results, config, k, colors, target, len(protocols) > 1,
                                       why or {}))
    if results.get("generator_sweep"):
        rows = results["generator_sweep"]
        parts.append(f"<h2>Does accuracy follow the generator? (annotator route, {escape(rows[0]['protocol'])} "
                     "cars)</h2><p class=\"note\">The annotator route run with each generator checkpoint; KID against "
                     "real renders of the protocol's full split (lower is better).</p>")
        parts.append(scatter_chart([(r["kid"], r["miou"], Path(r["generator"]).name) for r in rows],
                                   xlabel="KID (random-feature ResNet-18; lower = closer to the real images)"))
        parts.append(table(["generator", "KID", "mIoU", "PCK@0.1"],
                           [[r["generator"], _fmt(r["kid"], 5), _fmt(r["miou"]), _fmt(r["pck"])] for r in rows]))

    parts.extend(sections)
    # configuration
    timing_rows = [[k, f"{v:.1f} s"] for k, v in results["timings"].items()]
    parts.append("<h2>Configuration, seeds and timing</h2>")
    parts.append('<div class="cols"><div>' + table(["what", "seeds"], [[k, json.dumps(v)] for k, v in
                                                                    results["seeds"].items()])
                 + "</div><div>" + table(["stage", "wall time (the run that did it)"], timing_rows) + "</div></div>")
    lines = [f"{k}: {json.dumps(v)}" for k, v in config.items()] + [f"data: {json.dumps(results['data'])}"]
    parts.append("<pre>" + escape("\n".join(lines)) + "</pre>")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body>" + "\n".join(parts) + "</body></html>\n")
    path = Path(out) if out is not None else run / "report" / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, page)
    return path
