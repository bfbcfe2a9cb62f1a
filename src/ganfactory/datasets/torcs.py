"""Where the TORCS data lives, and the one-line error that says how to get it.

Why not bundle the cars: they are 333 MB of GPL/Free Art data that Debian already packages
(``torcs-data``); we read them in place and never copy them into the repository.
"""

from __future__ import annotations

from pathlib import Path

from ganfactory.errors import GanfactoryError

__all__ = ["DEFAULT_TORCS_ROOT", "TorcsNotFound", "find_torcs_root"]

DEFAULT_TORCS_ROOT = Path("/usr/share/games/torcs")
"""Where Debian's torcs-data installs the cars (``cars/<car>/``) and 3-D wheels (``wheels/<set>/``)."""


class TorcsNotFound(GanfactoryError, FileNotFoundError):
    """The TORCS data is not where we looked; the message says how to install or point to it (a GanfactoryError,
    so the CLI prints it as one line)."""


def find_torcs_root(torcs_root: str | Path | None = None) -> Path:
    """The TORCS data directory (the one holding ``cars/``): ``torcs_root`` if given, else the default.

    Raises TorcsNotFound with a one-line fix when ``<root>/cars`` is missing.
    """
    root = Path(torcs_root) if torcs_root is not None else DEFAULT_TORCS_ROOT
    if (root / "cars").is_dir():
        return root
    if root.name == "cars" and root.is_dir():      # a user pointing at the cars directory itself
        return root.parent
    raise TorcsNotFound(
        f"TORCS car data not found in {root} (no cars/ directory): install it with "
        "`sudo apt-get install torcs-data` (or scripts/install-torcs-data.sh), or pass --torcs-root DIR")
