"""The catalogue of a line's processes: alarms, parameters, recipes, formulas, NG codes, tools, materials.

It is data (``lines/catalogues/*.yaml``); this module only reads it and answers "what does process X
have", falling back to the ``default`` entry, so that a new process works before anyone writes its lists.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from twin.errors import LineFileError

SECTIONS = ("alarms", "params", "product_params", "recipes", "formulas", "ng_codes", "tools", "materials", "sorting")


@dataclass(frozen=True, slots=True)
class Alarm:
    code: str
    level: str  # L, M or H (2.4)
    msg: str


@dataclass(frozen=True, slots=True)
class Param:
    code: str
    nominal: float
    spread: float
    digits: int

    def text(self, z: float) -> str:
        """The value ``z`` standard deviations from nominal, as the text the spec's ParamValue carries."""
        return f"{self.nominal + z * self.spread:.{self.digits}f}"

    def texts(self, seed: int, shift: float = 0.0, bits: int = 10) -> tuple[str, ...]:
        """A pool of ``2**bits`` value texts around nominal (+ ``shift`` sigmas, for NG units)."""
        rng = random.Random(seed ^ zlib.crc32(self.code.encode()))
        return tuple(self.text(rng.gauss(shift, 1.0)) for _ in range(1 << bits))


@dataclass(frozen=True, slots=True)
class Catalogue:
    name: str
    source: Path | None
    product: str
    down_reasons: dict[str, str]
    host_alarms: dict[str, Alarm]
    data: dict[str, Any] = field(repr=False)

    def _for(self, section: str, process: str) -> Any:
        table = self.data.get(section) or {}
        return table.get(process, table.get("default"))

    def alarms(self, process: str, level: str | None = None) -> list[Alarm]:
        rows = [Alarm(str(a["code"]), a["level"], a["msg"]) for a in self._for("alarms", process) or ()]
        return [a for a in rows if level is None or a.level == level]

    def params(self, process: str) -> list[Param]:
        return [_param(p) for p in self._for("params", process) or ()]

    def product_params(self, process: str) -> list[Param]:
        return [_param(p) for p in self._for("product_params", process) or ()]

    def recipe(self, process: str) -> dict[str, Any]:
        return self._for("recipes", process) or {"version": "V1.0", "params": []}

    def formula(self, lane: str) -> dict[str, Any]:
        formulas = self.data.get("formulas") or {}
        if lane not in formulas:
            raise LineFileError(
                f"catalogue {self.name}: no formula for lane {lane!r} (formulas: {', '.join(formulas)})"
            )
        return formulas[lane]

    def wash_material(self, lane: str) -> str | None:
        return ((self.data.get("formulas") or {}).get("wash") or {}).get(lane)

    def ng_codes(self, process: str) -> list[str]:
        return list(self._for("ng_codes", process) or ["NG"])

    def tools(self, process: str) -> list[dict[str, Any]]:
        return list(self._for("tools", process) or ())

    @property
    def materials(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.get("materials") or {})

    @property
    def sorting(self) -> dict[str, Any]:
        return dict(self.data.get("sorting") or {})


def _param(raw: dict[str, Any]) -> Param:
    return Param(str(raw["code"]), float(raw["nominal"]), float(raw.get("spread", 0.0)), int(raw.get("digits", 2)))


def catalogue_dirs(line_dirs: list[Path]) -> list[Path]:
    return [d / "catalogues" for d in line_dirs if (d / "catalogues").is_dir()]


def load_catalogue(ref: str, *, search: list[Path], relative_to: Path | None = None) -> Catalogue:
    """Load a catalogue by name (``lines/catalogues/NAME.yaml``) or path (relative to the line file)."""
    candidates = []
    if relative_to is not None:
        candidates.append(relative_to / ref)
    candidates.append(Path(ref))
    candidates += [d / f"{ref}.yaml" for d in search]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise LineFileError(
            f"no catalogue {ref!r}: not a file, and not in {', '.join(str(d) for d in search) or 'any folder'}"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LineFileError(f"cannot read catalogue {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise LineFileError(f"catalogue {path} must be a mapping at the top")
    for key in ("alarms", "params", "materials"):
        if not isinstance(data.get(key), dict):
            raise LineFileError(f"catalogue {path}: {key}: expected a mapping (process -> list)")
    host = {name: Alarm(str(a["code"]), a["level"], a["msg"]) for name, a in (data.get("host_alarms") or {}).items()}
    for needed in ("mes_refused_stop", "mes_refused_prompt", "load_material", "electrolyte_empty"):
        if needed not in host:
            raise LineFileError(f"catalogue {path}: host_alarms.{needed}: required")
    return Catalogue(
        name=path.stem,
        source=path,
        product=str(data.get("product", "")),
        down_reasons={k: str(v) for k, v in (data.get("down_reasons") or {}).items()},
        host_alarms=host,
        data=data,
    )
