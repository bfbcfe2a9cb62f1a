"""Multi-view data from a generator: view codes x content codes, masks from the generator's own labels.

GANverse3D's first step (shared/notes/ganverse3d.md). The first ``cutoff`` style layers carry the camera
(measured by ganfactory.inverse.view_layers), so sample (v, c) takes layers [0, cutoff) of view code v's ws
and the rest of content code c's: each view code is one camera, each content code one car. A person puts
each view code into one of 12 azimuth bins with an elevation guess (``multiview annotate``, stored in a
cameras file); that is the initial camera of every sample of the view code.

Masks: the interpreter of ganfactory.inverse.labeller labels every sample (parts; foreground = label > 0).
As GANverse3D, a sample is dropped when its foreground has more than one connected object (components
of at least ``min_component`` of the image count) or covers under ``min_mask`` of the image.

Build (resumable, deterministic)::

    OUT.scan/v<id>.npz     stage 1, one per view code: images, labels and filter facts of all its content codes
                           (written atomically by any worker: in-process, local processes or Ray actors)
    OUT/...                stage 2: the LabeledDataset of the kept samples, in view-code order
                           (ganfactory.datasets.labeled; a killed write resumes), then OUT.scan is removed

Each sample's meta: ``view_code``, ``content``, their seeds, ``camera`` (azimuth_deg, elevation_deg in the one
frame of ganfactory.render.conventions: azimuth 0 looks at the car's front, 90 at its left side; elevation above
its ground; degrees; ``distance_scale`` 1 and ``fov_deg`` of the renders), the mask's share of the image and its
object count, and the viewpoint regressor's reading; ``latent`` regenerates it exactly; ``uncertainty`` is the
interpreter's.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ganfactory.atomic import atomic_path, write_json
from ganfactory.errors import GanfactoryError
from ganfactory.workers import die_with_parent

__all__ = [
    "AZIMUTH_BINS",
    "BACKENDS",
    "CAMERAS_FORMAT",
    "MultiviewSettings",
    "ViewCodeCamera",
    "bin_azimuth",
    "build_multiview",
    "circular_mad",
    "contact_sheet",
    "count_objects",
    "multiview_latents",
    "read_cameras",
    "simulate_cameras",
    "view_code_images",
    "view_code_spread",
    "write_cameras",
]

AZIMUTH_BINS = 12
"""The annotation's azimuth bins: bin b is centred on b * 30 degrees (bin 0: the car's front, 3: its left side)."""
CAMERAS_FORMAT = "ganfactory.multiview.cameras"
BACKENDS = ("local", "ray")
RENDER_FOV_DEG = 30.0
"""The cars renders' field of view (ganfactory.datasets.variation): the initial camera's."""


def bin_azimuth(azimuth_deg: float | np.ndarray) -> np.ndarray:
    """The 12-bin index of an azimuth (bin b covers b*30 - 15 to b*30 + 15 degrees)."""
    return (np.round(np.asarray(azimuth_deg, dtype=np.float64) % 360.0 / (360.0 / AZIMUTH_BINS)).astype(int)
            % AZIMUTH_BINS)


# ------------------------------------------------------------------------------------------ settings

@dataclass(frozen=True)
class MultiviewSettings:
    """What a multi-view dataset is made of (stored in its provenance; a resume with others is refused)."""

    generator: str = "cars64"
    """Checkpoint path or built-in name."""
    interpreter: str = ""
    """Interpreter directory (``multiview labeller``): the masks."""
    cutoff: int = 4
    """Layers [0, cutoff) come from the view code (view_layers' measured cutoff)."""
    view_codes: int = 30
    content_codes: int = 32
    first_view_seed: int = 10_000_000
    """View code v is seed first_view_seed + v."""
    first_content_seed: int = 20_000_000
    """Content code c is seed first_content_seed + c."""
    truncation_psi: float = 0.7
    noise_mode: str = "const"
    """const: every sample is a function of its two seeds (the noise is the generator's fixed maps)."""
    min_mask: float = 0.10
    min_component: float = 0.01
    max_objects: int = 1
    regressor: str = "cars"
    """Viewpoint regressor whose reading is stored per sample (for measuring the view codes)."""
    batch_size: int = 16
    shard_size: int = 1000
    threads_per_worker: int = 1

    def __post_init__(self) -> None:
        if self.view_codes < 1 or self.content_codes < 1:
            raise GanfactoryError("view codes and content codes must be at least 1")
        if self.noise_mode != "const":
            raise GanfactoryError("multi-view samples use noise mode const (a sample is a function of its two seeds)")
        if not 0 <= self.min_mask < 1 or not 0 <= self.min_component < 1 or self.max_objects < 1:
            raise GanfactoryError("min_mask and min_component are shares of the image in [0, 1); max_objects >= 1")

    def to_json(self) -> dict:
        return asdict(self)


def multiview_latents(G, settings: MultiviewSettings, view_code: int, contents: range | list[int]) -> torch.Tensor:
    """ws [len(contents), num_ws, w_dim]: layers [0, cutoff) of the view code's w, the rest of each content's."""
    from ganfactory.gan.sampling import seeds_to_z

    if not 0 <= settings.cutoff <= G.num_ws:
        raise GanfactoryError(f"cutoff must be in [0, {G.num_ws}] for this generator, got {settings.cutoff}")
    device = G.w_avg.device
    with torch.no_grad():
        w_view = G.mapping(seeds_to_z([settings.first_view_seed + view_code], G.z_dim).to(device), None,
                           truncation_psi=settings.truncation_psi)
        w_content = G.mapping(seeds_to_z([settings.first_content_seed + c for c in contents], G.z_dim).to(device),
                              None, truncation_psi=settings.truncation_psi)
    ws = w_content.clone()
    ws[:, :settings.cutoff] = w_view[:, :settings.cutoff]
    return ws


def view_code_images(G, settings: MultiviewSettings, view_code: int, contents: range | list[int]) -> torch.Tensor:
    """Images [N, 3, H, W] in [-1, 1] of one view code with ``contents`` (the annotation page's grid)."""
    ws = multiview_latents(G, settings, view_code, contents)
    with torch.no_grad():
        return torch.cat([G.synthesis(ws[i:i + settings.batch_size], noise_mode=settings.noise_mode).cpu()
                          for i in range(0, len(ws), settings.batch_size)])


def count_objects(mask: np.ndarray, min_pixels: int = 1) -> int:
    """Connected components (8-neighbourhood) of a [H, W] bool mask with at least ``min_pixels`` pixels."""
    mask_t = torch.from_numpy(np.ascontiguousarray(mask, dtype=bool))
    h, w = mask_t.shape
    ids = torch.where(mask_t, torch.arange(1, h * w + 1, dtype=torch.float32).reshape(h, w), torch.zeros(h, w))
    for _ in range(h * w):
        grown = torch.nn.functional.max_pool2d(ids[None, None], 3, stride=1, padding=1)[0, 0] * mask_t
        if torch.equal(grown, ids):
            break
        ids = grown
    _, counts = torch.unique(ids[mask_t], return_counts=True)
    return int((counts >= min_pixels).sum())


# ------------------------------------------------------------------------------------------ cameras

@dataclass(frozen=True)
class ViewCodeCamera:
    """A view code's initial camera: one of 12 azimuth bins and an elevation guess."""

    view_code: int
    azimuth_bin: int
    elevation_deg: float
    annotator: str
    """"person" (the page) or "regressor:<name>" (the simulated annotator)."""

    @property
    def azimuth_deg(self) -> float:
        return float(self.azimuth_bin * 360.0 / AZIMUTH_BINS)


def cameras_header(settings: MultiviewSettings) -> dict:
    """What a cameras file must agree with a build on (same view codes of the same generator)."""
    return {"format": CAMERAS_FORMAT, "format_version": 1, "generator": settings.generator, "cutoff": settings.cutoff,
            "truncation_psi": settings.truncation_psi, "noise_mode": settings.noise_mode,
            "first_view_seed": settings.first_view_seed, "azimuth_bins": AZIMUTH_BINS}


def write_cameras(path: str | Path, settings: MultiviewSettings, cameras: list[ViewCodeCamera],
                  extra: dict | None = None) -> Path:
    """The cameras file (atomically): the header of :func:`cameras_header` and one entry per annotated view code."""
    data = {**cameras_header(settings), "view_codes": [
        {"view_code": c.view_code, "seed": settings.first_view_seed + c.view_code, "azimuth_bin": c.azimuth_bin,
         "azimuth_deg": c.azimuth_deg, "elevation_deg": c.elevation_deg, "annotator": c.annotator}
        for c in sorted(cameras, key=lambda c: c.view_code)], **(extra or {})}
    return write_json(path, data)


def read_cameras(path: str | Path, settings: MultiviewSettings | None = None) -> dict[int, ViewCodeCamera]:
    """View code -> camera from a cameras file; with ``settings``, refuse a file made for other view codes."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise GanfactoryError(f"{path}: cannot read the cameras file ({e})") from None
    if data.get("format") != CAMERAS_FORMAT:
        raise GanfactoryError(f"{path}: not a multi-view cameras file (write one with 'multiview annotate')")
    if settings is not None:
        want = cameras_header(settings)
        differ = [k for k in want if data.get(k) != want[k]]
        if differ:
            theirs = ", ".join(f"{k}={data.get(k)!r}" for k in differ)
            ours = ", ".join(f"{k}={want[k]!r}" for k in differ)
            raise GanfactoryError(f"{path}: annotated for other view codes ({theirs}; this build has {ours})")
    out = {}
    for e in data.get("view_codes", []):
        b = int(e["azimuth_bin"])
        if not 0 <= b < AZIMUTH_BINS:
            raise GanfactoryError(f"{path}: view code {e['view_code']} has azimuth bin {b}, not in "
                                  f"0..{AZIMUTH_BINS - 1}")
        v = int(e["view_code"])
        out[v] = ViewCodeCamera(v, b, float(e["elevation_deg"]), str(e["annotator"]))
    return out


def simulate_cameras(G, regressor, settings: MultiviewSettings, view_codes: list[int], contents: int = 8,
                     regressor_name: str = "cars") -> list[ViewCodeCamera]:
    """The simulated annotator: per view code, the regressor's circular median azimuth over ``contents`` samples,
    put into its 12-bin, and the median elevation rounded to 5 degrees (what a person guesses)."""
    cameras = []
    for v in view_codes:
        pred = regressor.predict(view_code_images(G, settings, v, range(contents)))
        az = _circular_median(pred["azimuth_deg"].cpu().numpy())
        el = float(np.round(np.median(pred["elevation_deg"].cpu().numpy()) / 5.0) * 5.0)
        cameras.append(ViewCodeCamera(v, int(bin_azimuth(az)), max(el, 0.0), f"regressor:{regressor_name}"))
    return cameras


def _circular_median(azimuth_deg: np.ndarray) -> float:
    """The sample azimuth with the least summed circular distance to the others."""
    from ganfactory.inverse.viewpoint import angle_error_deg

    d = angle_error_deg(azimuth_deg[:, None], azimuth_deg[None, :]).sum(1)
    return float(azimuth_deg[int(d.argmin())])


# ------------------------------------------------------------------------------------------ stage 1: scan

def _scan_dir(out: Path) -> Path:
    """Stage 1's directory, beside the dataset (the dataset's own directory holds only the dataset)."""
    return out.with_name(out.name + ".scan")


def _scan_path(out: Path, view_code: int) -> Path:
    return _scan_dir(out) / f"v{view_code:05d}.npz"


def scan_view_code(G, interpreter, regressor, settings: MultiviewSettings, view_code: int, out: Path) -> Path:
    """Synthesize, label, regress and filter every content code of one view code into ``OUT/.scan`` (atomically)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads_per_worker)
    try:
        contents = range(settings.content_codes)
        ws = multiview_latents(G, settings, view_code, contents)
        images, labels, scores, az, el = [], [], [], [], []
        with torch.no_grad():
            for s in range(0, len(ws), settings.batch_size):
                img, feats = G.synthesis(ws[s:s + settings.batch_size], noise_mode=settings.noise_mode,
                                         return_features=True)
                pred = interpreter.predict_features({k: feats[k] for k in interpreter.taps.layers})
                reading = regressor.predict(img)
                images.append(((img * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)).cpu().numpy())
                labels.append(pred.labels)
                scores.append(pred.score.cpu().numpy())
                az.append(reading["azimuth_deg"].cpu().numpy())
                el.append(reading["elevation_deg"].cpu().numpy())
        images, labels = np.concatenate(images), np.concatenate(labels)
        if images.shape[1:3] != labels.shape[1:3]:
            raise GanfactoryError(f"the interpreter labels at {labels.shape[1]} px, the generator draws "
                                  f"{images.shape[1]} px; train the labeller at the image's resolution")
        hw = labels.shape[1] * labels.shape[2]
        fraction = (labels > 0).reshape(len(labels), -1).mean(1)
        objects = np.array([count_objects(lab > 0, max(1, int(np.ceil(settings.min_component * hw))))
                            for lab in labels])
        path = _scan_path(out, view_code)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, images=images, labels=labels, uncertainty=np.concatenate(scores), mask_fraction=fraction,
                     objects=objects, azimuth=np.concatenate(az), elevation=np.concatenate(el))
        return path
    finally:
        torch.set_num_threads(threads)


def _load_models(settings: MultiviewSettings):
    from ganfactory.gan import load_generator
    from ganfactory.inverse.viewpoint import load_viewpoint_regressor
    from ganfactory.label.interpreter import load_interpreter

    return (load_generator(settings.generator), load_interpreter(settings.interpreter),
            load_viewpoint_regressor(settings.regressor))


_WORKER: dict = {}


def _pool_init(settings: MultiviewSettings, out: str) -> None:
    die_with_parent()
    torch.set_num_threads(settings.threads_per_worker)
    _WORKER.update(models=_load_models(settings), settings=settings, out=Path(out))


def _pool_run(view_code: int) -> int:
    scan_view_code(*_WORKER["models"], _WORKER["settings"], view_code, _WORKER["out"])
    return view_code


def _scan(settings: MultiviewSettings, out: Path, todo: list[int], backend: str, workers: int,
          address: str | None, bar) -> None:
    if backend == "local" and workers == 1:
        models = _load_models(settings)
        for v in todo:
            scan_view_code(*models, settings, v, out)
            bar.update()
    elif backend == "local":
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers, _pool_init, (settings, str(out))) as pool:
            for _ in pool.imap_unordered(_pool_run, todo):
                bar.update()
    else:
        try:
            import ray
        except ImportError:
            raise GanfactoryError("the ray backend needs Ray: pip install 'ganfactory[ray]'") from None
        started = not ray.is_initialized()
        if started:
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                     log_to_driver=False)
        try:
            @ray.remote(num_cpus=1)
            class Scanner:
                """One worker: loads the models once, then scans whole view codes."""

                def __init__(self, settings: MultiviewSettings, out: str):
                    torch.set_num_threads(settings.threads_per_worker)
                    self.models, self.settings, self.out = _load_models(settings), settings, Path(out)

                def scan(self, view_code: int) -> int:
                    scan_view_code(*self.models, self.settings, view_code, self.out)
                    return view_code

            actors = [Scanner.remote(settings, str(out)) for _ in range(min(workers, len(todo)))]
            for _ in ray.util.ActorPool(actors).map_unordered(lambda a, v: a.scan.remote(v), todo):
                bar.update()
        finally:
            if started:
                ray.shutdown()


# ------------------------------------------------------------------------------------------ build

def build_multiview(settings: MultiviewSettings, cameras_file: str | Path, out: str | Path, backend: str = "local",
                    workers: int = 1, address: str | None = None, progress: bool = True,
                    cutoff_evidence: dict | None = None) -> dict:
    """Write (or resume) the multi-view LabeledDataset at ``out``; returns a summary (counts, kept share, seconds).

    Every view code needs a camera in ``cameras_file`` (``multiview annotate``, by a person or simulated).
    ``cutoff_evidence``: what chose the cutoff (the layer sweep's row and rule), stored in the provenance.
    """
    from tqdm import tqdm

    from ganfactory.datasets.labeled import LabeledSample, finish_dataset, plan_dataset, write_shard
    from ganfactory.datasets.labeled import missing_shards as missing
    from ganfactory.schema import Schema

    if backend not in BACKENDS:
        raise GanfactoryError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if workers < 1:
        raise GanfactoryError(f"workers must be at least 1, got {workers}")
    if not settings.interpreter or not (Path(settings.interpreter) / "interpreter.json").is_file():
        raise GanfactoryError(f"{settings.interpreter or '(none)'}: no interpreter.json; make the labeller first "
                              "('ganfactory multiview labeller')")
    cameras = read_cameras(cameras_file, settings)
    absent = [v for v in range(settings.view_codes) if v not in cameras]
    if absent:
        raise GanfactoryError(f"{cameras_file}: view codes {absent[:10]}{' ...' if len(absent) > 10 else ''} have no "
                              "camera; annotate them first")
    out = Path(out)
    t0 = time.perf_counter()
    if (out / "dataset.json").is_file():
        header = json.loads((out / "dataset.json").read_text())
        if header["provenance"].get("settings") != settings.to_json():
            raise GanfactoryError(f"{out} holds a multi-view dataset made with other settings; pass another --out")
        return header["provenance"]["summary"]
    record = _scan_dir(out) / "settings.json"
    if record.is_file() and json.loads(record.read_text()) != settings.to_json():
        raise GanfactoryError(f"{out} holds a build with other settings; pass another --out or delete it")
    record.parent.mkdir(parents=True, exist_ok=True)
    write_json(record, settings.to_json())
    todo = [v for v in range(settings.view_codes) if not _scan_path(out, v).is_file()]
    bar = tqdm(total=len(todo), desc="view codes", unit="view", disable=not progress)
    _scan(settings, out, todo, backend, workers, address, bar)
    bar.close()

    from ganfactory.label.interpreter import load_interpreter

    interp_schema = load_interpreter(settings.interpreter).schema
    schema = Schema(interp_schema.classes)
    kept: list[tuple[int, int]] = []
    scans = {}
    for v in range(settings.view_codes):
        with np.load(_scan_path(out, v)) as data:
            scans[v] = {k: data[k] for k in data.files}
        ok = (scans[v]["mask_fraction"] >= settings.min_mask) & (scans[v]["objects"] <= settings.max_objects) \
            & (scans[v]["objects"] >= 1)
        kept += [(v, int(c)) for c in np.flatnonzero(ok)]
    if not kept:
        raise GanfactoryError("the filter dropped every sample; check the labeller (masks) or lower --min-mask")
    candidates = settings.view_codes * settings.content_codes
    summary = {"view_codes": settings.view_codes, "content_codes": settings.content_codes, "candidates": candidates,
               "kept": len(kept), "kept_share": len(kept) / candidates,
               "dropped_small_mask": int(sum((s["mask_fraction"] < settings.min_mask).sum() for s in scans.values())),
               "dropped_objects": int(sum(((s["objects"] > settings.max_objects) | (s["objects"] < 1)).sum()
                                          for s in scans.values()))}

    def sample(i: int) -> LabeledSample:
        v, c = kept[i]
        s, cam = scans[v], cameras[v]
        return LabeledSample(
            id=f"v{v:05d}-c{c:05d}", image=s["images"][c], label=s["labels"][c],
            uncertainty=round(float(s["uncertainty"][c]), 7),
            latent={"view_seed": settings.first_view_seed + v, "content_seed": settings.first_content_seed + c,
                    "cutoff": settings.cutoff, "truncation_psi": settings.truncation_psi,
                    "noise_mode": settings.noise_mode},
            meta={"view_code": v, "content": c, "camera": {
                "azimuth_deg": cam.azimuth_deg, "elevation_deg": cam.elevation_deg, "distance_scale": 1.0,
                "fov_deg": RENDER_FOV_DEG, "azimuth_bin": cam.azimuth_bin, "annotator": cam.annotator},
                "mask_fraction": round(float(s["mask_fraction"][c]), 6), "objects": int(s["objects"][c]),
                "regressed": {"azimuth_deg": round(float(s["azimuth"][c]), 3),
                              "elevation_deg": round(float(s["elevation"][c]), 3)}})

    provenance = {"producer": "ganfactory multiview build", "settings": settings.to_json(),
                  "cameras_file": str(cameras_file), "summary": summary, "cutoff_evidence": cutoff_evidence,
                  "camera_frame": "azimuth 0 looks at the car's front, 90 at its left side (degrees, "
                                  "ganfactory.datasets.variation); elevation above the ground; distance_scale "
                                  "1 = the renders' base distance"}
    plan = plan_dataset(out, schema, len(kept), settings.shard_size, provenance)
    for index in missing(plan):
        write_shard(plan, index, (sample(i) for i in plan.shard_range(index)))
    finish_dataset(plan, "car")
    import shutil

    shutil.rmtree(_scan_dir(out), ignore_errors=True)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary


# ------------------------------------------------------------------------------------------ measuring a dataset

def circular_mad(azimuth_deg: np.ndarray) -> tuple[float, float]:
    """(circular median, median absolute circular deviation from it) of azimuths in degrees."""
    from ganfactory.inverse.viewpoint import angle_error_deg

    azimuth_deg = np.asarray(azimuth_deg, dtype=np.float64)
    centre = _circular_median(azimuth_deg)
    return centre, float(np.median(angle_error_deg(azimuth_deg, centre)))


def view_code_spread(dataset) -> dict:
    """How well view codes fix the view, read by the regressor stored per sample: per view code the median
    absolute deviation (MAD) of the regressed azimuth around the code's circular median; across view codes the
    MAD of their medians and of all samples. Elevation the same (plain medians)."""
    by_code: dict[int, list[tuple[float, float]]] = {}
    for i in range(len(dataset)):
        m = dataset._line(i)
        by_code.setdefault(int(m["view_code"]), []).append((m["regressed"]["azimuth_deg"],
                                                             m["regressed"]["elevation_deg"]))
    within, medians, el_within, el_medians = [], [], [], []
    for rows in by_code.values():
        az, el = np.array(rows).T
        centre, mad = circular_mad(az)
        within.append(mad)
        medians.append(centre)
        el_within.append(float(np.median(np.abs(el - np.median(el)))))
        el_medians.append(float(np.median(el)))
    all_az = np.array([r[0] for rows in by_code.values() for r in rows])
    return {"view_codes": len(by_code), "samples": int(len(all_az)),
            "azimuth_mad_within_median_deg": float(np.median(within)),
            "azimuth_mad_within_per_code_deg": {str(v): round(w, 2) for v, w in zip(by_code, within, strict=True)},
            "azimuth_mad_across_codes_deg": circular_mad(np.array(medians))[1],
            "azimuth_mad_all_samples_deg": circular_mad(all_az)[1],
            "elevation_mad_within_median_deg": float(np.median(el_within)),
            "elevation_mad_across_codes_deg": float(np.median(np.abs(np.array(el_medians) - np.median(el_medians))))}


def contact_sheet(dataset, view_codes: list[int], contents: int, scale: int = 1) -> np.ndarray:
    """[H, W, 3] uint8: one row per view code (its first ``contents`` kept samples, by content id), white gaps."""
    rows = {v: [] for v in view_codes}
    for i in range(len(dataset)):
        m = dataset._line(i)
        v = int(m["view_code"])
        if v in rows and len(rows[v]) < contents:
            rows[v].append(dataset.image(i))
    size = dataset.image(0).shape[0]
    blank = np.full((size, size, 3), 255, np.uint8)
    gap = 2
    sheet = np.full((len(view_codes) * (size + gap) - gap, contents * (size + gap) - gap, 3), 255, np.uint8)
    for r, v in enumerate(view_codes):
        for c in range(contents):
            img = rows[v][c] if c < len(rows[v]) else blank
            sheet[r * (size + gap):r * (size + gap) + size, c * (size + gap):c * (size + gap) + size] = img
    return sheet.repeat(scale, 0).repeat(scale, 1) if scale > 1 else sheet
