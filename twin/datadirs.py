"""Where data files (profiles, line files) are found by name.

Looked up in order: ``./<kind>`` (the working directory), the folders in ``$TWIN_<KIND>`` (path-separated),
the checkout's ``<kind>/`` beside the package, and the copy installed inside the package (``twin/_data``).
The first match wins, so a user's own folder shadows the shipped files.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def child_pythonpath() -> str:
    """``$PYTHONPATH`` for a child interpreter that must import this twin (a checkout not installed, a Ray worker):
    the package's folder first, then what this process was given."""
    return os.pathsep.join(p for p in (str(_PACKAGE.parent), os.environ.get("PYTHONPATH", "")) if p)


def search_dirs(kind: str) -> list[Path]:
    """The existing folders where files of ``kind`` ("profiles", "lines") are looked up, first wins."""
    dirs = [Path.cwd() / kind]
    if env := os.environ.get(f"TWIN_{kind.upper()}"):
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs += [_PACKAGE.parent / kind, _PACKAGE / "_data" / kind]
    unique: list[Path] = []
    for d in dirs:
        if d.is_dir() and all(d.resolve() != u.resolve() for u in unique):
            unique.append(d)
    return unique


def named_files(kind: str, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Every file of ``kind`` by name (the file name less the first matching suffix)."""
    found: dict[str, Path] = {}
    for d in search_dirs(kind):
        for path in sorted(d.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            for suffix in suffixes:
                if path.name.endswith(suffix):
                    found.setdefault(path.name[: -len(suffix)], path)
                    break
    return found
