"""Atomic file writes: readers and resumed runs see the old file or the new one, never a torn one.

Why one module: every long job here (GAN training, synthesis, inversion, the benchmark, the annotator) resumes
by trusting what is on disk, so a file cut short by a kill must never exist under its final name. Each write
goes to a temporary file beside the target (same filesystem, so the rename is atomic) whose name is unique to
the process and thread; concurrent writers of one file never share a temporary file and the last rename wins
with a whole file. Temporary names start with ``.tmp-``, which directory scanners skip and clean up.

A file that comes with companions (an OBJ with its .mtl and texture PNGs, which name each other by file name)
cannot be written under a temporary name of its own; ``atomic_files`` writes the whole group in a temporary folder
and renames each file into place, the companions first and the named file last, so that the file a reader looks
for exists only once everything it refers to does.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["TMP_PREFIX", "atomic_files", "atomic_path", "write_atomic", "write_json"]

TMP_PREFIX = ".tmp-"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s contents to (for writers that want a file name); on a clean
    exit it is renamed to ``path``, on an exception it is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{threading.get_ident()}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_files(path: str | Path) -> Iterator[Path]:
    """Yield ``TMPDIR/<name of path>`` in a temporary folder beside ``path``; write it and any companion files into
    that folder. On a clean exit every file there is renamed into ``path``'s folder (companions first, in name
    order, then ``path``); on an exception nothing is moved. The folder is removed either way."""
    path = Path(path)
    folder = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{threading.get_ident()}-{path.name}.d")
    folder.mkdir(parents=True)
    try:
        yield folder / path.name
        written = sorted(p for p in folder.iterdir() if p.is_file() and p.name != path.name)
        for file in [*written, folder / path.name]:
            os.replace(file, path.with_name(file.name))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (str as UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return Path(path)


def write_json(path: str | Path, data, indent: int | None = 1) -> Path:
    """Write ``data`` as JSON (with a final newline) to ``path`` atomically; returns ``path``."""
    return write_atomic(path, json.dumps(data, indent=indent) + "\n")
