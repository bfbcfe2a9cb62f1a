"""A run directory of resumable stages: the machinery every long pipeline shares (the cars benchmark, the 3-D one).

Why one module: a pipeline of hours must resume after a kill without redoing finished work, refuse to mix two
settings in one directory, and say where its time went. Written once here, each pipeline only names its stages.

The rules:

- ``Run.open`` writes the resolved config (``config_name``, JSON) first; reopening the directory with another config
  is refused, naming the fields that differ. A directory that holds anything else is refused too.
- A stage is done when its *done mark* exists: the file its work writes last, atomically (a finished
  ``scores.json``, ``dataset.json``, ``interpreter.json``...). A done stage is skipped, so the same command resumes.
- Each stage's wall time is saved to ``timings.json`` as the stage ends: a resumed run keeps the times a killed
  process measured. A skipped stage keeps the time of the run that did the work.
- One log line per stage event goes to stdout, prefixed by the seconds since the run opened; the stages' own
  progress bars (tqdm, stderr) are switched by ``progress``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ganfactory.atomic import write_json
from ganfactory.errors import GanfactoryError

__all__ = ["TIMINGS", "Run"]

TIMINGS = "timings.json"
T = TypeVar("T")


class Run:
    """An open run directory (``Run.open`` creates or resumes one)."""

    def __init__(self, root: Path, config: dict, progress: bool, name: str):
        self.root = root
        self.config = config
        """The resolved config, as written to the directory."""
        self.progress = progress
        """Whether stages show progress bars."""
        self.name = name
        self.t0 = time.perf_counter()
        path = root / TIMINGS
        self.timings: dict[str, float] = json.loads(path.read_text()) if path.is_file() else {}
        """Wall seconds per stage key, in the order the stages first ran."""

    @classmethod
    def open(cls, root: str | Path, config: dict, config_name: str, name: str, progress: bool = True,
             allowed: tuple[str, ...] = ()) -> Run:
        """Create the run at ``root`` (a new or empty directory; entries named in ``allowed`` may be there) or
        resume it when ``root/config_name`` holds the same ``config``. ``name`` prefixes log lines and errors."""
        root = Path(root)
        path = root / config_name
        if path.is_file():
            old = json.loads(path.read_text())
            if old != config:
                differ = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
                inner = config.get("config")
                if isinstance(inner, dict) and isinstance(old.get("config"), dict):
                    differ = sorted(k for k in set(old["config"]) | set(inner)
                                    if old["config"].get(k) != inner.get(k)) or [k for k in differ if k != "config"]
                raise GanfactoryError(f"{root} holds a {name} run with other settings (differing: "
                                      f"{', '.join(differ) or 'data'}); pass another --out or delete it")
        else:
            root.mkdir(parents=True, exist_ok=True)
            if any(p.name not in allowed for p in root.iterdir()):
                raise GanfactoryError(f"{root} is not empty and holds no {name} run; pass a new directory")
            write_json(path, config)
        return cls(root, config, progress, name)

    def log(self, message: str) -> None:
        print(f"{self.name} [{time.perf_counter() - self.t0:7.1f} s] {message}", flush=True)

    def stage(self, key: str, fn: Callable[[], T], done: Path | None = None, what: str | None = None) -> T | None:
        """Run stage ``key`` (``fn``) unless its done mark ``done`` exists; record its wall time either way (a skip
        takes milliseconds and keeps the time of the run that did the work). Returns ``fn``'s result, None when
        skipped (the stage's output is on disk). ``what`` names the stage in the skip's log line."""
        t0 = time.perf_counter()
        if done is not None and done.exists():
            if what is not None:
                self.log(f"{what}: done before, skipped")
            out = None
        else:
            out = fn()
            if done is not None and not done.exists():
                raise RuntimeError(f"stage {key} finished without writing its done mark {done}")
        seconds = round(time.perf_counter() - t0, 2)
        if key not in self.timings or seconds >= 1.0:
            self.timings[key] = seconds
            write_json(self.root / TIMINGS, dict(self.timings))
        return out

    def write_json(self, relative: str | Path, data: dict) -> Path:
        """Write ``data`` at ``root/relative`` atomically (parents created)."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, data)
        return path
