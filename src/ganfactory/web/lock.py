"""One server per project: an exclusive lock file held while a page serves a project directory.

Why: two servers on one project would interleave their saves (each serialises only its own), so a second one is
refused with a clear error instead.
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

from ganfactory.errors import GanfactoryError

__all__ = ["project_lock"]


@contextmanager
def project_lock(root: str | Path, server: str = "annotator", name: str = ".annotator.lock"):
    """Hold an exclusive lock on ``root/name`` while serving ``root``; a second holder is refused, naming the kind
    of ``server`` that holds it. The lock is released when the block ends (or the process dies)."""
    path = Path(root) / name
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GanfactoryError(f"another {server} is serving {root} (it holds {path}); stop it first") from None
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
