"""JavaScript packages the pages serve themselves: three.js from npm, pinned in ``js/package-lock.json``.

Why this way: the pages never load code from a CDN at run time (no network but the package registries here, and a
page that works offline on a laptop). ``make js`` runs ``npm ci`` in the checkout's ``js/`` folder, which puts the
exact version of the lock file into ``js/node_modules`` (never committed). The server reads a fixed list of that
package's files at start-up (``VendorFiles``) and serves them under ``/vendor/<package>/<file>``; like ``PageFiles``,
no request path ever reaches the file system.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ganfactory.errors import GanfactoryError

__all__ = ["JS_ROOT", "THREE", "VendorFiles", "install_hint"]

JS_ROOT = Path(__file__).resolve().parents[3] / "js"
"""The checkout's ``js/`` folder (package.json, package-lock.json, node_modules after ``make js``). The pages need a
checkout (or an editable install of one): a wheel does not carry node_modules."""


def install_hint(root: Path = JS_ROOT) -> str:
    return f"run `make js` in the ganfactory checkout (npm ci in {root})"


@dataclass(frozen=True)
class VendorFiles:
    """Files of one npm package in ``js/node_modules``, served as ``/vendor/<package>/<path>``."""

    package: str
    files: tuple[str, ...]
    """Paths inside the package folder (forward slashes), every file a page may import."""

    def folder(self, root: Path = JS_ROOT) -> Path:
        return root / "node_modules" / self.package

    def version(self, root: Path = JS_ROOT) -> str:
        try:
            return str(json.loads((self.folder(root) / "package.json").read_text())["version"])
        except (OSError, ValueError, KeyError):
            raise GanfactoryError(f"{self.package} is not installed in {root / 'node_modules'}; "
                                  f"{install_hint(root)}") from None

    def read(self, root: Path = JS_ROOT) -> dict[str, bytes]:
        """Path -> bytes of every listed file; one clear line saying how to install the package when it is missing
        (or installed at another version than the lock file's)."""
        have = self.version(root)
        try:
            lock = json.loads((root / "package-lock.json").read_text())
            want = lock["packages"][f"node_modules/{self.package}"]["version"]
        except (OSError, ValueError, KeyError):
            want = have
        if have != want:
            raise GanfactoryError(f"{self.package} {have} is installed but js/package-lock.json pins {want}; "
                                  f"{install_hint(root)}")
        try:
            return {name: (self.folder(root) / name).read_bytes() for name in self.files}
        except OSError as e:
            raise GanfactoryError(f"{self.package} is incomplete ({e.filename} missing); "
                                  f"{install_hint(root)}") from None


THREE = VendorFiles("three", (
    "build/three.module.js",
    "build/three.core.js",
    "examples/jsm/controls/OrbitControls.js",
    "examples/jsm/loaders/GLTFLoader.js",
    "examples/jsm/utils/BufferGeometryUtils.js",
    "examples/jsm/utils/SkeletonUtils.js",
    "LICENSE",
))
"""three.js: the core, orbit controls and the glTF loader with what it imports (the page's import map points
``three`` and ``three/addons/`` here)."""
