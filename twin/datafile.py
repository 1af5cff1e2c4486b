"""Data files read with their YAML node tree, so that a mistake names the file, the line and the key path.

Line files, PLC I/O maps and SLO files are all checked this way: ``FILE:LINE: stations[7].input: ...``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from twin.errors import TwinError


def node_at(node: yaml.Node | None, path: list[str | int]) -> yaml.Node | None:
    """The YAML node at a key path, or the deepest one that exists."""
    for step in path:
        if isinstance(node, yaml.MappingNode) and isinstance(step, str):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == step), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            nxt = node.value[step]
        else:
            nxt = None
        if nxt is None:
            return node
        node = nxt
    return node


def key_path(path: list[str | int]) -> str:
    """``["stations", 7, "input"]`` -> ``stations[7].input``."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out or "(top)"


def find_named(ref: str | Path, found: dict[str, Path], error: type[TwinError], what: str, where: str) -> Path:
    """A path, or the name of one of ``found``; else ``error`` listing the names there are."""
    path = Path(ref)
    if path.is_file():
        return path
    if str(ref) in found:
        return found[str(ref)]
    names = ", ".join(sorted(found)) or "none"
    raise error(f"no {what} {str(ref)!r}: not a file, and not one of {where} ({names})")


def load_schema(candidates: Iterable[Path], missing: TwinError) -> dict[str, Any]:
    """The first of ``candidates`` that exists (the checkout's folder first, then the installed copy), parsed;
    ``missing`` is raised when none does (an installation without its data)."""
    for path in candidates:
        if path.is_file():
            return yaml.safe_load(path.read_text(encoding="utf-8"))
    raise missing


class DataFile:
    """One YAML data file: its data, its node tree, and ``fail(key, message)`` for located mistakes."""

    def __init__(self, path: Path, error: type[TwinError], what: str) -> None:
        self.path = path
        self.error = error
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
        try:
            self.root: yaml.Node | None = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            self.data: Any = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise error(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc

    def line_of(self, key: list[str | int]) -> int:
        node = node_at(self.root, key)
        return node.start_mark.line + 1 if node is not None else 1

    def fail(self, key: list[str | int], message: str) -> TwinError:
        return self.error(f"{self.path}:{self.line_of(key)}: {key_path(key)}: {message}")
