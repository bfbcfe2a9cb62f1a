"""The view-code annotation, done through the page by the simulated annotator, and a person's time for it.

The simulated annotator (the viewpoint regressor) decides each view code's azimuth bin and elevation guess
from the same samples the page shows; a real browser (Playwright, Debian's chromium) clicks the answers
into the page, so the cameras file comes out of the page exactly as a person's would. The script counts
what a person would do (clicks, key presses, page loads), measures how long the page takes to show each
view code, and estimates a person's time with the keystroke-level model (Card, Moran and Newell):
per view code M (decide, 1.35 s) + P (point at the dial, 1.1 s) + B (click, 0.2 s), an elevation change
adds P + B, plus the measured wait for each grid.

    python benchmarks/multiview_annotate.py --cutoff 4 --view-codes 30 --project /work/data/multiview/annot

Writes PROJECT/cameras.json (for ``multiview build``) and PROJECT/annotate-timing.json; prints a table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

KLM = {"M": 1.35, "P": 1.1, "B": 0.2}
"""Keystroke-level model operator times in seconds (mental preparation, point with a mouse, button press)."""
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default="cars64")
    ap.add_argument("--cutoff", type=int, required=True)
    ap.add_argument("--view-codes", type=int, default=30)
    ap.add_argument("--grid", type=int, default=8)
    ap.add_argument("--regressor", default="cars")
    ap.add_argument("--project", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from playwright.sync_api import sync_playwright

    from ganfactory.gan import load_generator
    from ganfactory.inverse.annotate_page import ELEVATION_CHOICES, create_page_app
    from ganfactory.inverse.multiview import MultiviewSettings, read_cameras, simulate_cameras
    from ganfactory.inverse.viewpoint import load_viewpoint_regressor
    from ganfactory.web import serving

    G = load_generator(args.ckpt)
    settings = MultiviewSettings(generator=args.ckpt, cutoff=args.cutoff, view_codes=args.view_codes)
    project = Path(args.project)
    if (project / "cameras.json").exists():
        (project / "cameras.json").unlink()
    t0 = time.perf_counter()
    decided = simulate_cameras(G, load_viewpoint_regressor(args.regressor), settings, list(range(args.view_codes)),
                               args.grid, args.regressor)
    simulate_seconds = time.perf_counter() - t0
    app = create_page_app(G, settings, project, args.grid)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    clicks = elevation_clicks = 0
    waits = []
    with serving(app) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1300, "height": 820})
        loads = []
        page.on("request", lambda r: loads.append(r.url))
        t_load = time.perf_counter()
        page.goto(url)
        page.wait_for_selector('body[data-ready="1"]', timeout=60000)
        waits.append(time.perf_counter() - t_load)
        elevation = 0
        for cam in decided:
            guess = min(ELEVATION_CHOICES, key=lambda e: abs(e - cam.elevation_deg))
            if guess != elevation:
                page.click(f'.elev[data-elev="{guess}"]')
                elevation_clicks += 1
                elevation = guess
            t = time.perf_counter()
            page.click(f'.bin[data-bin="{cam.azimuth_bin}"]')
            clicks += 1
            page.wait_for_function(f'window.mv.saved() && document.getElementById("grid").dataset.view === '
                                   f'"{min(cam.view_code + 1, args.view_codes - 1)}" && '
                                   'document.getElementById("grid").complete', timeout=60000)
            waits.append(time.perf_counter() - t)
        browser.close()
    stored = read_cameras(project / "cameras.json", settings)
    assert [stored[c.view_code].azimuth_bin for c in decided] == [c.azimuth_bin for c in decided]
    page_loads = 1 + len({u for u in loads if u.endswith("grid.png")})
    per_code = KLM["M"] + KLM["P"] + KLM["B"]
    person = args.view_codes * per_code + elevation_clicks * (KLM["P"] + KLM["B"]) + float(np.sum(waits))
    result = {"view_codes": args.view_codes, "azimuth_clicks": clicks, "elevation_clicks": elevation_clicks,
              "page_loads": page_loads, "wait_per_view_code_median_s": float(np.median(waits)),
              "wait_total_s": float(np.sum(waits)), "klm_seconds_per_view_code": per_code,
              "person_seconds_estimate": person, "simulated_annotator_seconds": simulate_seconds,
              "bins_used": sorted({c.azimuth_bin for c in decided}), "klm": KLM}
    (project / "annotate-timing.json").write_text(json.dumps(result, indent=1) + "\n")
    print("| measure | value |\n|---|---|")
    for k in ("view_codes", "azimuth_clicks", "elevation_clicks", "page_loads", "wait_per_view_code_median_s",
              "person_seconds_estimate"):
        v = result[k]
        print(f"| {k} | {v:.2f} |" if isinstance(v, float) else f"| {k} | {v} |")


if __name__ == "__main__":
    main()
