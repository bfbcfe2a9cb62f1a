"""Images in, each car turned through a list of azimuths out: ``ganfactory neural-render --input ...``.

Per input ``DIR/<stem>/az{AAA}.png`` (the GAN's image at that azimuth), ``DIR/<stem>/sheet.png`` (input | the
DIB-R render of its predicted mesh | the turned images in order) and ``DIR/neural-render.json`` (the codes' camera
read from each input, the cameras asked for, the files). Every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganfactory.atomic import atomic_path, write_json
from ganfactory.errors import GanfactoryError
from ganfactory.gan.sampling import to_uint8
from ganfactory.neural.renderer import NeuralRenderer

__all__ = ["parse_angles", "save_png", "turn_images"]


def parse_angles(text: str, name: str = "--azimuth") -> list[float]:
    """'0,30,60' -> [0.0, 30.0, 60.0]; a one-line error on anything else."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise GanfactoryError(f"{name} {text!r}: give degrees separated by commas, e.g. 0,30,60") from None
    if not values:
        raise GanfactoryError(f"{name}: no angle given")
    return values


def save_png(pixels: np.ndarray, path: Path) -> Path:
    with atomic_path(path) as tmp:
        Image.fromarray(pixels, "RGB").save(tmp, format="PNG")
    return path


def turn_images(nr: NeuralRenderer, paths: list[Path], azimuths: list[float], out: str | Path,
                elevation: float | None = None) -> list[dict]:
    """Read each image's codes, render it at every azimuth (elevation: ``elevation`` or the one read from the
    image) and write the files of the module docstring. Returns one record per image."""
    from ganfactory.inverse.reconstruct import load_image

    out = Path(out)
    stems = [p.stem for p in paths]
    if len(set(stems)) != len(stems):
        raise GanfactoryError("two input images share a file name stem; their outputs would collide")
    size = nr.net.config.image_size
    images = torch.stack([load_image(p, size) for p in paths]) * 2 - 1
    codes = nr.codes_from_images(images)
    records = []
    for i, path in enumerate(paths):
        one = codes.index(slice(i, i + 1))
        asked = [one.with_camera(a, elevation) for a in azimuths]
        turned = to_uint8(nr.render(type(one).cat(asked)))
        mesh = to_uint8(nr.render_mesh(one))
        folder = out / path.stem
        folder.mkdir(parents=True, exist_ok=True)
        files = [str(save_png(img, folder / f"az{round(a) % 360:03d}.png")) for a, img in zip(azimuths, turned,
                                                                                              strict=True)]
        row = np.concatenate([to_uint8(images[i:i + 1])[0], mesh[0], *turned], axis=1)
        sheet = save_png(row, folder / "sheet.png")
        records.append({"image": str(path), "read_azimuth_deg": float(torch.rad2deg(one.azimuth[0])) % 360,
                        "read_elevation_deg": float(torch.rad2deg(one.elevation[0])),
                        "azimuths_deg": azimuths,
                        "elevation_deg": elevation if elevation is not None
                        else float(torch.rad2deg(one.elevation[0])),
                        "files": files, "sheet": str(sheet)})
    write_json(out / "neural-render.json", {"images": records})
    return records
