"""The embedded MES's master data: accounts, recipes, formulas, materials, sorting, interlocks, tooling.

It lives beside the profile it belongs to (``profiles/qingke-mes-v1.data/*.yaml``), as data: a plant
changes its recipes or materials by editing those files, never this module. Loading checks what the
rules rely on and names the file and key of a mistake.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from twin.errors import ConfigError
from twin.profile import Profile

FILES = ("accounts", "plant", "route", "materials", "recipes", "formulas", "sorting", "interlocks", "tooling")


@dataclass(frozen=True, slots=True)
class Account:
    user: str
    password: str
    account_type: str
    name: str
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class RecipeParam:
    code: str
    name: str
    lower: str
    upper: str
    value: str


@dataclass(frozen=True, slots=True)
class Recipe:
    code: str
    process: str
    product: str
    version: str
    updated: str
    params: tuple[RecipeParam, ...]


@dataclass(frozen=True, slots=True)
class Formula:
    code: str
    process: str
    product: str
    version: str
    updated: str
    steps: tuple[dict[str, Any], ...]

    def materials(self) -> set[str]:
        return {s["material"] for s in self.steps if s.get("category") == "A" and s.get("material")}


@dataclass(frozen=True, slots=True)
class Material:
    code: str
    name_cn: str
    kind: str  # raw | semi | wip
    unit: str
    lot_qty: float
    consumed_at: frozenset[str]
    prefixes: tuple[str, ...] = ()
    shelf_life_days: int = 30
    wip: str = ""  # for kind wip: the product it is (jelly_roll | cell)


@dataclass(frozen=True, slots=True)
class SortLine:
    serial: int
    min: float
    min_type: int
    max: float
    max_type: int
    rating: str
    grade: str

    def contains(self, value: float) -> bool:
        low_ok = value > self.min if self.min_type == 1 else value >= self.min
        high_ok = value < self.max if self.max_type == 1 else value <= self.max
        return low_ok and high_ok


@dataclass(frozen=True, slots=True)
class SortRule:
    code: str
    name: str
    parameter: str
    parameter_name: str
    procedure: str
    lines: tuple[SortLine, ...]

    def grade_of(self, value: float) -> str | None:
        for line in sorted(self.lines, key=lambda x: x.serial):
            if line.contains(value):
                return line.grade
        return None

    def grades(self) -> set[str]:
        return {line.grade for line in self.lines}


@dataclass(frozen=True, slots=True)
class InterlockRule:
    code: str
    kind: str  # consecutive | window
    count: int
    processes: frozenset[str]
    ng_codes: frozenset[str]
    window_s: float = 0.0


@dataclass(slots=True)
class MesData:
    """Everything the MES knows before the first request."""

    source: Path
    accounts: dict[str, Account]
    timezone: timezone
    default_product: str
    products: dict[str, str]
    code_formats: dict[str, str]
    cell_code_length: int
    cell_code_pattern: re.Pattern[str]
    origin_processes: frozenset[str]
    conditional_processes: dict[str, str]
    long_stop_s: float
    first_injection: dict[str, Any]
    materials: dict[str, Material]
    outputs: dict[str, dict[str, str]]
    recipes: dict[str, Recipe]
    formulas: dict[str, Formula]
    sort_rules: dict[str, SortRule]
    downgrades: tuple[dict[str, Any], ...]
    interlock_rules: tuple[InterlockRule, ...]
    tooling_code: str
    tooling_message: str
    tools: tuple[dict[str, Any], ...]
    interlock_templates: dict[str, str] = field(default_factory=dict)
    _prefixes: list[tuple[str, Material]] = field(default_factory=list)

    def __post_init__(self) -> None:
        pairs = [(p, m) for code, m in self.materials.items() if code == m.code for p in m.prefixes]
        self._prefixes = sorted(pairs, key=lambda pm: -len(pm[0]))  # longest prefix wins

    def raw_material_of(self, barcode: str) -> Material | None:
        """The raw material a purchased lot's barcode belongs to, told by its prefix."""
        for prefix, material in self._prefixes:
            if barcode.startswith(prefix):
                return material
        return None

    def sort_wanted(self) -> frozenset[str]:
        """Parameter codes the sorting and downgrade rules read (kept per product)."""
        wanted = {rule.parameter for rule in self.sort_rules.values()}
        wanted.update(str(d["parameter"]) for d in self.downgrades)
        return frozenset(wanted)

    def tool_limit(self, tool_code: str) -> dict[str, Any] | None:
        for tool in self.tools:
            if fnmatch.fnmatchcase(tool_code, tool["match"]):
                return tool
        return None

    def plant_now(self, now: datetime) -> datetime:
        return now.astimezone(self.timezone)


def data_dir(profile: Profile) -> Path:
    """``<profile file without suffix>.data`` beside the profile (``qingke-mes-v1.data``)."""
    if profile.source is None:
        raise ConfigError(f"profile {profile.name} has no file, so the MES cannot find its data folder")
    return profile.source.parent / f"{profile.name}.data"


def _read(folder: Path, name: str) -> dict[str, Any]:
    path = folder / f"{name}.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"MES data file {path} cannot be read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"MES data file {path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"MES data file {path} must be a mapping at the top")
    return doc


class _Reader:
    """Typed access to one data file; a mistake names the file and key path."""

    def __init__(self, folder: Path, name: str) -> None:
        self.file = folder / f"{name}.yaml"
        self.doc = _read(folder, name)

    def get(self, node: Any, key: str, kind: type | tuple[type, ...], where: str, default: Any = ...) -> Any:
        if not isinstance(node, dict) or key not in node:
            if default is not ...:
                return default
            raise ConfigError(f"{self.file}: {where}.{key}: required key is missing")
        value = node[key]
        if not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise ConfigError(f"{self.file}: {where}.{key}: expected {names}, got {value!r}")
        return value


def _tz(text: str, file: Path) -> timezone:
    match = re.fullmatch(r"([+-])(\d{2}):(\d{2})", text)
    if not match:
        raise ConfigError(f"{file}: timezone: expected +HH:MM, got {text!r}")
    sign = 1 if match.group(1) == "+" else -1
    return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))


def _materials(r: _Reader) -> tuple[dict[str, Material], dict[str, dict[str, str]]]:
    out: dict[str, Material] = {}
    for i, m in enumerate(r.get(r.doc, "materials", list, "(top)")):
        where = f"materials[{i}]"
        code = r.get(m, "code", str, where)
        kind = r.get(m, "kind", str, where)
        if kind not in ("raw", "semi", "wip"):
            raise ConfigError(f"{r.file}: {where}.kind: expected raw, semi or wip, got {kind!r}")
        prefixes = tuple(r.get(m, "prefixes", list, where, ... if kind == "raw" else []))
        wip = r.get(m, "wip", str, where, "" if kind != "wip" else ...)
        if kind == "wip" and wip not in ("jelly_roll", "cell"):
            raise ConfigError(f"{r.file}: {where}.wip: expected jelly_roll or cell, got {wip!r}")
        material = Material(
            code=code,
            name_cn=r.get(m, "name_cn", str, where),
            kind=kind,
            unit=r.get(m, "unit", str, where),
            lot_qty=float(r.get(m, "lot_qty", (int, float), where)),
            consumed_at=frozenset(r.get(m, "consumed_at", list, where)),
            prefixes=prefixes,
            shelf_life_days=int(r.get(m, "shelf_life_days", int, where, 30)),
            wip=wip,
        )
        for name in (code, *r.get(m, "aliases", list, where, [])):
            if name in out:
                raise ConfigError(f"{r.file}: {where}: material code {name!r} is used twice")
            out[name] = material
    outputs = r.get(r.doc, "outputs", dict, "(top)")
    for process, spec in outputs.items():
        if spec.get("material") not in out:
            raise ConfigError(f"{r.file}: outputs.{process}.material: {spec.get('material')!r} is not a material")
    return out, outputs


def _recipes(r: _Reader) -> dict[str, Recipe]:
    out: dict[str, Recipe] = {}
    for i, x in enumerate(r.get(r.doc, "recipes", list, "(top)")):
        where = f"recipes[{i}]"
        params = []
        for j, p in enumerate(r.get(x, "params", list, where)):
            if not (isinstance(p, list) and len(p) == 5 and all(isinstance(v, str) for v in p)):
                raise ConfigError(f"{r.file}: {where}.params[{j}]: expected [code, name, lower, upper, value] strings")
            params.append(RecipeParam(*p))
        code = r.get(x, "recipe", str, where)
        out[code] = Recipe(
            code=code,
            process=r.get(x, "process", str, where),
            product=r.get(x, "product", str, where),
            version=r.get(x, "version", str, where),
            updated=r.get(x, "updated", str, where),
            params=tuple(params),
        )
    return out


def _formulas(r: _Reader) -> dict[str, Formula]:
    out: dict[str, Formula] = {}
    for i, x in enumerate(r.get(r.doc, "formulas", list, "(top)")):
        where = f"formulas[{i}]"
        code = r.get(x, "formula", str, where)
        out[code] = Formula(
            code=code,
            process=r.get(x, "process", str, where),
            product=r.get(x, "product", str, where),
            version=r.get(x, "version", str, where),
            updated=r.get(x, "updated", str, where),
            steps=tuple(r.get(x, "steps", list, where)),
        )
    return out


def _sorting(r: _Reader) -> tuple[dict[str, SortRule], tuple[dict[str, Any], ...]]:
    rules: dict[str, SortRule] = {}
    for product, x in r.get(r.doc, "rules", dict, "(top)").items():
        where = f"rules.{product}"
        lines = tuple(
            SortLine(
                serial=int(ln["serial"]),
                min=float(ln["min"]),
                min_type=int(ln["min_type"]),
                max=float(ln["max"]),
                max_type=int(ln["max_type"]),
                rating=str(ln["rating"]),
                grade=str(ln["grade"]),
            )
            for ln in r.get(x, "lines", list, where)
        )
        rules[product] = SortRule(
            code=r.get(x, "code", str, where),
            name=r.get(x, "name", str, where),
            parameter=r.get(x, "parameter", str, where),
            parameter_name=r.get(x, "parameter_name", str, where),
            procedure=r.get(x, "procedure", str, where),
            lines=lines,
        )
    return rules, tuple(r.get(r.doc, "downgrades", list, "(top)", []))


def _interlocks(r: _Reader) -> tuple[tuple[InterlockRule, ...], str, str]:
    rules = []
    for i, x in enumerate(r.get(r.doc, "rules", list, "(top)")):
        where = f"rules[{i}]"
        detect = r.get(x, "detect", dict, where)
        kind = r.get(x, "kind", str, where)
        if kind not in ("consecutive", "window"):
            raise ConfigError(f"{r.file}: {where}.kind: expected consecutive or window, got {kind!r}")
        rules.append(
            InterlockRule(
                code=r.get(x, "code", str, where),
                kind=kind,
                count=r.get(x, "count", int, where),
                processes=frozenset(r.get(detect, "processes", list, where + ".detect")),
                ng_codes=frozenset(r.get(detect, "ng_codes", list, where + ".detect")),
                window_s=float(r.get(x, "window_s", (int, float), where, 0.0)),
            )
        )
    tooling = r.get(r.doc, "tooling", dict, "(top)")
    return tuple(rules), r.get(tooling, "code", str, "tooling"), r.get(tooling, "message", str, "tooling")


def load_mes_data(profile: Profile, folder: Path | None = None) -> MesData:
    """Read and check every data file of the profile's MES."""
    folder = folder or data_dir(profile)
    if not folder.is_dir():
        raise ConfigError(f"the MES data folder {folder} is missing (expected {', '.join(FILES)} .yaml in it)")
    accounts_r, plant_r, route_r = (_Reader(folder, n) for n in ("accounts", "plant", "route"))
    accounts = {}
    for i, a in enumerate(accounts_r.get(accounts_r.doc, "accounts", list, "(top)")):
        where = f"accounts[{i}]"
        acc = Account(
            user=accounts_r.get(a, "user", str, where),
            password=str(accounts_r.get(a, "password", (str, int), where)),
            account_type=accounts_r.get(a, "account_type", str, where),
            name=accounts_r.get(a, "name", str, where),
            enabled=accounts_r.get(a, "enabled", bool, where, True),
        )
        accounts[acc.user] = acc
    plant = plant_r.doc
    cell = plant_r.get(plant, "equipment_cell_code", dict, "(top)")
    materials, outputs = _materials(_Reader(folder, "materials"))
    sort_rules, downgrades = _sorting(_Reader(folder, "sorting"))
    interlock_rules, tooling_code, tooling_message = _interlocks(_Reader(folder, "interlocks"))
    tooling_r = _Reader(folder, "tooling")
    return MesData(
        source=folder,
        accounts=accounts,
        timezone=_tz(plant_r.get(plant, "timezone", str, "(top)"), plant_r.file),
        default_product=plant_r.get(plant, "default_product", str, "(top)"),
        products={p["code"]: p.get("name_cn", "") for p in plant_r.get(plant, "products", list, "(top)")},
        code_formats=plant_r.get(plant, "codes", dict, "(top)"),
        cell_code_length=int(cell.get("length", 24)),
        cell_code_pattern=re.compile(cell.get("pattern", ".*")),
        origin_processes=frozenset(route_r.get(route_r.doc, "origin_processes", list, "(top)")),
        conditional_processes=dict(route_r.get(route_r.doc, "conditional_processes", dict, "(top)", {})),
        long_stop_s=float(route_r.get(route_r.doc, "long_stop_s", (int, float), "(top)", 180)),
        first_injection=dict(route_r.get(route_r.doc, "first_injection", dict, "(top)", {})),
        materials=materials,
        outputs=outputs,
        recipes=_recipes(_Reader(folder, "recipes")),
        formulas=_formulas(_Reader(folder, "formulas")),
        sort_rules=sort_rules,
        downgrades=downgrades,
        interlock_rules=interlock_rules,
        tooling_code=tooling_code,
        tooling_message=tooling_message,
        tools=tuple(tooling_r.get(tooling_r.doc, "tools", list, "(top)")),
        interlock_templates=_templates(profile),
    )


def _templates(profile: Profile) -> dict[str, str]:
    """The spec's interlock texts, from the profile (SendInterLock InterlockMessage x-message-templates)."""
    for op in profile:
        props = (op.request_schema or {}).get("properties") or {}
        templates = (props.get("InterlockMessage") or {}).get("x-message-templates")
        if templates:
            return {str(k): str(v) for k, v in templates.items()}
    return {}
