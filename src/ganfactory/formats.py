"""The one check every on-disk format of ganfactory makes of its JSON header.

Each format (checkpoint config.json, LabeledDataset dataset.json, AnnotationSet schema.json) names itself
and carries an integer version; a reader accepts its own name and any version up to the one it knows.
"""

from __future__ import annotations

import json
import zlib
from contextlib import contextmanager
from pathlib import Path

__all__ = ["BROKEN_FILE_ERRORS", "check_format_header", "read_format_header", "reading"]

BROKEN_FILE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, KeyError, AttributeError, RecursionError,
                      zlib.error)
"""What reading a damaged file can raise (Pillow's broken-PNG SyntaxError, JSON of the wrong types...)."""


def check_format_header(header: dict, where: object, name: str, version: int, error: type[Exception]) -> None:
    """Raise ``error`` with a one-line reason unless ``header`` is format ``name`` at version <= ``version``."""
    if header.get("format") != name:
        raise error(f"{where}: format is {header.get('format')!r}, expected {name!r}")
    found = header.get("format_version")
    if not isinstance(found, int) or found > version:
        raise error(f"{where}: format version {found!r} is newer than this ganfactory reads ({version}); "
                    "upgrade ganfactory")


def read_format_header(path: str | Path, name: str, version: int, error: type[Exception], missing: str) -> dict:
    """The JSON header at ``path`` checked as format ``name`` <= ``version``; ``error`` with one line when the file is
    absent (``missing`` says what to do), not JSON, not a JSON object, or of another format or a newer version."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise error(f"{path.parent}: no {path.name}; {missing}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: unreadable ({e})") from None
    try:
        header = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{path}: not JSON ({e})") from None
    if not isinstance(header, dict):
        raise error(f"{path}: expected a JSON object, got {type(header).__name__}")
    check_format_header(header, path, name, version, error)
    return header


@contextmanager
def reading(where: object, error: type[Exception], also: tuple[type[Exception], ...] = ()):
    """Turn what a damaged or wrong-typed file makes a reader raise into ``error`` with one line naming ``where``
    (errors of ganfactory pass through unchanged). The boundary of every reader of files on disk. ``also``: more
    exception types to catch there (torch's RuntimeError of weights that do not fit their network)."""
    from ganfactory.errors import GanfactoryError

    try:
        yield
    except GanfactoryError:
        raise
    except BROKEN_FILE_ERRORS + also as e:
        reason = (str(e).splitlines() or [""])[0][:200]
        raise error(f"{where}: broken or unreadable ({type(e).__name__}: {reason})") from None
