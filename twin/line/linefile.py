"""Line files: load, check against ``lines/schema/line.schema.yaml`` and the profile, report mistakes.

A mistake names the file, the line in it, the key path and what was expected, e.g.
``lines/x.yaml:14: stations[2].count: expected integer, got "four"``. Positions come from the YAML node
tree (``yaml.compose``), so they point at the offending value itself. The values it builds are in
``twin.line.model``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jsonschema

from twin.datafile import DataFile, find_named, load_schema
from twin.errors import LineFileError, UnknownOperation
from twin.line.catalogue import catalogue_dirs, load_catalogue
from twin.line.linecheck import check_line
from twin.line.model import DEFAULT_OFFLINE_MES, DEFAULT_PERIODS, DEFAULT_START, BufferSpec, Line, Station
from twin.profile import Profile, load_profile

DEFAULT_CATALOGUE = "prismatic-lfp"


def line_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent.parent
    dirs = [Path.cwd() / "lines"]
    if env := os.environ.get("TWIN_LINES"):
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs += [here.parent / "lines", here / "_data" / "lines"]
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and all(d.resolve() != o.resolve() for o in out):
            out.append(d)
    return out


def available_lines() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in line_dirs():
        for path in sorted(d.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def find_line(ref: str | Path) -> Path:
    return find_named(ref, available_lines(), LineFileError, "line", "the known lines")


def _schema() -> dict[str, Any]:
    return load_schema(
        (d / "schema" / "line.schema.yaml" for d in line_dirs()),
        LineFileError("the line-file schema lines/schema/line.schema.yaml is missing from this installation"),
    )


def load_line(ref: str | Path, *, profile: Profile | None = None) -> tuple[Line, Profile]:
    """Load a line file by name or path, check it, and load (or check against) its profile."""
    path = find_line(ref)
    doc = DataFile(path, LineFileError, "line file")
    data, fail = doc.data, doc.fail

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise fail(list(err.absolute_path), err.message + more)

    prof = profile or load_profile(data["profile"])
    stations = []
    seen_ids: set[str] = set()
    for i, raw in enumerate(data["stations"]):
        if raw["id"] in seen_ids:
            raise fail(["stations", i, "id"], f"station id {raw['id']!r} is used twice")
        seen_ids.add(raw["id"])
        for j, name in enumerate(raw["interfaces"]):
            _check_operation(prof, name, lambda m, j=j, i=i: fail(["stations", i, "interfaces", j], m))
        fields = {**raw, "interfaces": tuple(raw["interfaces"]), "lanes": tuple(raw.get("lanes") or ())}
        stations.append(Station(**fields))
    for j, name in enumerate(data.get("common_interfaces") or ()):
        _check_operation(prof, name, lambda m, j=j: fail(["common_interfaces", j], m))
    catalogue = load_catalogue(
        data.get("catalogue", DEFAULT_CATALOGUE), search=catalogue_dirs(line_dirs()), relative_to=path.parent
    )
    buffers = {
        bid: BufferSpec(bid, **{**spec, "lanes": tuple(spec.get("lanes") or ())})
        for bid, spec in (data.get("buffers") or {}).items()
    }
    line = Line(
        name=data["line"],
        title=data["title"],
        profile_ref=data["profile"],
        stations=tuple(stations),
        common_interfaces=tuple(data.get("common_interfaces") or ()),
        periods={**DEFAULT_PERIODS, **(data.get("periods") or {})},
        figures_note=data.get("figures_note", ""),
        source=path,
        catalogue=catalogue,
        product=data.get("product") or catalogue.product,
        tag=data.get("tag") or "".join(ch for ch in data["line"].upper() if ch.isalnum())[-6:],
        start=data.get("start", DEFAULT_START),
        warmup_s=float(data.get("warmup_s", 0.0)),
        preroll_s=float(data.get("preroll_s", 172800.0)),
        power_on_s=float(data.get("power_on_s", 60.0)),
        operator=data.get("operator") or {"user": "op1001", "password": "pa55word"},
        offline_mes={**DEFAULT_OFFLINE_MES, **(data.get("offline_mes") or {})},
        buffers=buffers,
        tray_pools=dict(data.get("tray_pools") or {}),
        load=str(data.get("load", "steady")),
    )
    check_line(line, prof, fail)
    return line, prof


def _check_operation(profile: Profile, name: str, fail: Any) -> None:
    try:
        profile.operation(name)
    except UnknownOperation as exc:
        raise fail(str(exc)) from None
