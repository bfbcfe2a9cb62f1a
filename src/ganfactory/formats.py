"""The one check every on-disk format of ganfactory makes of its JSON header.

Each format (checkpoint config.json, LabeledDataset dataset.json, AnnotationSet schema.json) names itself
and carries an integer version; a reader accepts its own name and any version up to the one it knows.
"""

from __future__ import annotations

__all__ = ["check_format_header"]


def check_format_header(header: dict, where: object, name: str, version: int, error: type[Exception]) -> None:
    """Raise ``error`` with a one-line reason unless ``header`` is format ``name`` at version <= ``version``."""
    if header.get("format") != name:
        raise error(f"{where}: format is {header.get('format')!r}, expected {name!r}")
    found = header.get("format_version")
    if not isinstance(found, int) or found > version:
        raise error(f"{where}: format version {found!r} is newer than this ganfactory reads ({version}); "
                    "upgrade ganfactory")
