"""A factory is a file: which lines run, how many copies of each, and when each copy powers on.

``lines/factories/factory-A.yaml`` (schema: ``lines/schema/factory.schema.yaml``)::

    factory: factory-A
    title: The whole plant
    lines:
      - {line: line-A02, copies: 2, stagger: 2m}
      - {line: line-A03, start: 5m}

``twin run factory-A`` runs every copy against one MES, sharded by copy over ``--workers`` (``twin.run.plan``).
Copies of the same line are numbered across the file's entries (a second entry of line-A02 continues at
-X03), and no equipment code may be used twice in a factory: the MES tells equipment apart by code alone.

Factory files live in a ``factories/`` folder beside the line files, so that every ``lines/*.yaml`` stays a
line file (``twin lines list`` and the line-file tests read them all).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from twin.datafile import DataFile, find_named, load_schema
from twin.durations import parse_duration
from twin.errors import ConfigError
from twin.line.linefile import line_dirs, load_line
from twin.line.model import Line, copy_code

FACTORY_DIR = "factories"


class FactoryFileError(ConfigError):
    """A factory file breaks its schema, names a line that cannot be loaded, or uses a code twice."""


@dataclass(frozen=True, slots=True)
class Copy:
    """One copy of one line in a factory: its line file, its copy number (codes) and when it powers on."""

    line: str  # the line file's name
    ref: str  # how to load it (a path)
    copy: int
    offset_s: float


@dataclass(frozen=True, slots=True)
class Factory:
    name: str
    title: str
    source: Path
    copies: tuple[Copy, ...]
    lines: dict[str, Line]  # by name, loaded and checked

    def line_refs(self) -> list[str]:
        """Each line's file, once, in the order of the file (what the embedded MES is given, ``--line`` each)."""
        seen: dict[str, str] = {}
        for c in self.copies:
            seen.setdefault(c.line, c.ref)
        return list(seen.values())

    def equipment_count(self) -> int:
        return sum(self.lines[c.line].equipment_count() for c in self.copies)


def available_factories() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in line_dirs():
        for path in sorted((d / FACTORY_DIR).glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def is_factory(ref: str) -> bool:
    """A factory's name, or a YAML file whose top level says ``factory:`` (a line file says ``line:``)."""
    path = Path(ref)
    if path.is_file():
        try:
            head = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return False  # the line loader says what is wrong with it
        return isinstance(head, dict) and "factory" in head
    return ref in available_factories()


def _schema() -> dict[str, Any]:
    return load_schema(
        (d / "schema" / "factory.schema.yaml" for d in line_dirs()),
        FactoryFileError("the factory-file schema lines/schema/factory.schema.yaml is missing from this installation"),
    )


def _offsets(entry: dict[str, Any], fail: Any, i: int) -> list[float]:
    copies = int(entry.get("copies", 1))
    if "offsets" in entry:
        if "start" in entry or "stagger" in entry:
            raise fail(["lines", i, "offsets"], "give offsets, or start and stagger, not both")
        if len(entry["offsets"]) != copies:
            raise fail(
                ["lines", i, "offsets"], f"{len(entry['offsets'])} offsets for {copies} copies: give one per copy"
            )
        return [parse_duration(str(v)) for v in entry["offsets"]]
    start = parse_duration(str(entry.get("start", 0)))
    stagger = parse_duration(str(entry.get("stagger", 0)))
    return [start + k * stagger for k in range(copies)]


def load_factory(ref: str | Path) -> Factory:
    """Load a factory by name or path and check it; each line it names is loaded (and checked) too."""
    path = find_named(ref, available_factories(), FactoryFileError, "factory", "the known factories")
    doc = DataFile(path, FactoryFileError, "factory file")
    data, fail = doc.data, doc.fail
    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise fail(list(errors[0].absolute_path), errors[0].message + more)
    lines: dict[str, Line] = {}
    next_copy: dict[str, int] = {}
    copies: list[Copy] = []
    owner: dict[str, str] = {}  # equipment code -> the line entry that has it
    for i, entry in enumerate(data["lines"]):
        ref_text = str(entry["line"])
        beside = path.parent / ref_text
        line_ref = str(beside) if beside.is_file() else ref_text
        try:
            line, _profile = load_line(line_ref)
        except ConfigError as exc:
            raise fail(["lines", i, "line"], str(exc)) from None
        if line.name in lines and lines[line.name].source != line.source:
            raise fail(["lines", i, "line"], f"two different files are both line {line.name!r}")
        lines[line.name] = line
        for offset in _offsets(entry, fail, i):
            k = next_copy.get(line.name, 0) + 1
            next_copy[line.name] = k
            for code in line.equipment_codes():
                code = copy_code(code, k)
                if code in owner:
                    why = f"equipment code {code} is used twice ({owner[code]} and {line.name} copy {k})"
                    raise fail(["lines", i, "line"], why + ": the MES tells equipment apart by code")
                owner[code] = f"{line.name} copy {k}"
            for pool in line.tray_pools.values():  # trays are numbered per copy: TP-BK-X02-000001
                tray = copy_code(str(pool["prefix"]), k) + "-000001"
                if tray in owner:
                    why = f"tray codes {tray}... are used twice ({owner[tray]} and {line.name} copy {k})"
                    raise fail(["lines", i, "line"], why + ": give the lines' tray pools other prefixes")
                owner[tray] = f"{line.name} copy {k}"
            copies.append(Copy(line.name, str(line.source or line_ref), k, offset))
    return Factory(str(data["factory"]), str(data["title"]), path, tuple(copies), lines)
