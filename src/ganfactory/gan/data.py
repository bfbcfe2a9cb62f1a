"""Training images for a GAN: an image folder, a zip archive, or a LabeledDataset directory (images only).

Images are decoded once into one uint8 tensor [N, 3, R, R] held in memory: at the CPU scales this
toolkit trains at (20k images at 64 px = 250 MB) that is the fastest and simplest loader, and a batch
is then a deterministic index draw from the run's random generator, which makes resume exact.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ganfactory.errors import GanfactoryError

__all__ = ["IMAGE_SUFFIXES", "list_images", "load_images"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def list_images(path: str | Path) -> list[str]:
    """Image names inside ``path`` (relative, sorted). A directory with dataset.json is a LabeledDataset:
    only its images/ folder counts (label PNGs are not training images)."""
    path = Path(path)
    if path.is_dir():
        root = path / "images" if (path / "dataset.json").is_file() else path
        return sorted(str(p.relative_to(path)) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return sorted(n for n in zf.namelist() if Path(n).suffix.lower() in IMAGE_SUFFIXES)
    if path.exists():
        raise GanfactoryError(f"{path}: expected an image folder, a .zip of images or a LabeledDataset directory")
    raise GanfactoryError(f"{path}: no such file or directory")


def load_images(path: str | Path, max_images: int | None = None, progress: bool = True) -> torch.Tensor:
    """[N, 3, R, R] uint8. Refuses mixed sizes, unreadable files and sizes that are not a power of two."""
    path = Path(path)
    names = list_images(path)
    if not names:
        raise GanfactoryError(f"{path}: no images found ({', '.join(IMAGE_SUFFIXES)})")
    names = names[:max_images] if max_images else names
    zf = zipfile.ZipFile(path) if path.is_file() else None
    first_size = None
    out = None
    try:
        for i, name in enumerate(tqdm(names, desc="loading images", unit="img", disable=not progress)):
            try:
                raw = zf.read(name) if zf else (path / name).read_bytes()
                img = Image.open(io.BytesIO(raw))
                img = np.array(img.convert("RGB"))
            except (UnidentifiedImageError, OSError, ValueError) as e:
                raise GanfactoryError(f"{path / name}: unreadable image ({e})") from None
            if first_size is None:
                first_size = (names[0], img.shape[:2])
                h, w = img.shape[:2]
                if h != w or h < 4 or h & (h - 1):
                    raise GanfactoryError(f"{path / name}: images must be square with a power-of-two side "
                                          f"(4, 8, ..., 1024), got {w}x{h}; resize them first")
                out = torch.empty([len(names), 3, h, w], dtype=torch.uint8)
            elif img.shape[:2] != first_size[1]:
                raise GanfactoryError(f"mixed image sizes: {first_size[0]} is {first_size[1][1]}x{first_size[1][0]}, "
                                      f"{name} is {img.shape[1]}x{img.shape[0]}")
            out[i] = torch.from_numpy(img).permute(2, 0, 1)
    finally:
        if zf:
            zf.close()
    return out
