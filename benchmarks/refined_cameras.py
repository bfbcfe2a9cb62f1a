"""Did the per-view-code camera refinement move the annotated cameras toward the views the images show?

GAN samples have no true camera. The nearest thing is the viewpoint regressor (median error 2.5 degrees on
held-out real renders, docs/multiview): each sample's reading is stored in the multi-view data's meta
(``regressed``). Per view code this compares the annotated azimuth (a 12-bin centre) and the refined one
(annotated + the learned offset, RUN/cameras.json) with the regressor's readings: the median over the code's
samples of the angle to each reading, folded at 90 degrees (min(d, 180 - d)), because the regressor reads some
samples of one code front for rear (codes 2, 6, 12: half the samples near a, half near a + 180) and the
annotation's 8-sample vote then picks either; a front/rear flip is not what refinement can or should fix.

    python benchmarks/refined_cameras.py --run RUN --data /work/data/multiview/mv-cars64 [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from ganfactory.datasets.labeled import LabeledDataset
    from ganfactory.inverse.multiview import circular_mad
    from ganfactory.inverse.viewpoint import angle_error_deg

    refined = {e["view_code"]: e for e in json.loads((Path(args.run) / "cameras.json").read_text())["view_codes"]}
    ds = LabeledDataset(args.data)
    readings: dict[int, list[float]] = {}
    annotated: dict[int, tuple[float, float]] = {}
    elevations: dict[int, list[float]] = {}
    for i in range(len(ds)):
        m = ds.meta(i)
        v = int(m["view_code"])
        readings.setdefault(v, []).append(float(m["regressed"]["azimuth_deg"]))
        elevations.setdefault(v, []).append(float(m["regressed"]["elevation_deg"]))
        annotated[v] = (float(m["camera"]["azimuth_deg"]), float(m["camera"]["elevation_deg"]))
    def folded(azimuth: float, values: list[float]) -> float:
        d = angle_error_deg(azimuth, np.array(values))
        return float(np.median(np.minimum(d, 180.0 - d)))

    rows = []
    for v in sorted(readings):
        centre, mad = circular_mad(np.array(readings[v]))
        az0, el0 = annotated[v]
        off = refined.get(v, {"azimuth_offset_deg": 0.0, "elevation_offset_deg": 0.0})
        az1, el1 = az0 + off["azimuth_offset_deg"], el0 + off["elevation_offset_deg"]
        el_reg = float(np.median(elevations[v]))
        rows.append({"view_code": v, "regressor_azimuth": round(centre, 1), "regressor_mad": round(mad, 1),
                     "annotated_azimuth": az0, "refined_azimuth": round(az1 % 360, 1),
                     "annotated_error": round(folded(az0, readings[v]), 1),
                     "refined_error": round(folded(az1, readings[v]), 1),
                     "annotated_elevation": el0, "refined_elevation": round(el1, 1),
                     "regressor_elevation": round(el_reg, 1)})
    steady = [r for r in rows if r["regressor_mad"] < 12]   # view codes whose samples agree on one view
    summary = {
        "view_codes": len(rows), "steady_view_codes": len(steady),
        "annotated_error_median": float(np.median([r["annotated_error"] for r in steady])),
        "refined_error_median": float(np.median([r["refined_error"] for r in steady])),
        "closer": sum(r["refined_error"] < r["annotated_error"] for r in steady),
        "annotated_elevation_error_median": float(np.median([abs(r["annotated_elevation"] - r["regressor_elevation"])
                                                             for r in steady])),
        "refined_elevation_error_median": float(np.median([abs(r["refined_elevation"] - r["regressor_elevation"])
                                                           for r in steady])),
    }
    print("| view code | regressor az (MAD) | annotated | refined | folded error annotated -> refined |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['view_code']} | {r['regressor_azimuth']} ({r['regressor_mad']}) | {r['annotated_azimuth']:.0f} | "
              f"{r['refined_azimuth']} | {r['annotated_error']} -> {r['refined_error']} |")
    print(json.dumps(summary))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "view_codes": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
