"""Checks of a line file beyond its JSON Schema: routes, buffers, trays, archetypes and their interfaces.

Every mistake is reported through the loader's ``fail(key_path, message)``, so it reads like the schema's own
errors: ``lines/x.yaml:41: stations[7].input: buffer 'pressd' is not declared (buffers: pressed, ...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twin.line.dist import cycle_dist, make_dist
from twin.line.roles import Role, role_for

if TYPE_CHECKING:
    from twin.line.model import Line, Station
    from twin.profile import Profile

Fail = Callable[[list[str | int], str], Exception]

# What each archetype takes from its input buffer and gives to its output buffer ("same": what it takes).
TAKES = {
    "mixing": "glue",
    "coating": "slurry",
    "converting": "roll",
    "winding": "roll",
    "pairing": "jelly_roll",
    "cell_code": "pair",
    "cover_bind": "pair",
    "rack": "cell",
    "filling": "cell",
    "sorting": "tray",
}
NEEDS_INPUT = {
    "coating",
    "converting",
    "winding",
    "unit",
    "pairing",
    "cell_code",
    "cover_bind",
    "chamber",
    "rack",
    "filling",
    "sorting",
}


def gives(st: Station, role: Role, took: str | None) -> str | None:
    """The kind of unit a station puts into its output buffer."""
    name = role.name
    if name == "mixing":
        return "glue" if st.options.get("kind") == "glue" else "slurry"
    if name in ("coating", "converting"):
        return "roll"
    if name == "winding":
        return "jelly_roll"
    if name == "pairing":
        return "pair"
    if name in ("cell_code", "cover_bind", "rack", "filling", "sorting"):
        return "cell"
    if name == "chamber":
        return "cell" if st.tray.get("unbind") else "tray"
    return took  # unit stations pass on what they take


def takes(st: Station, role: Role) -> str | None:
    if role.name == "chamber":
        return "cell" if st.tray.get("group") else "tray"
    return TAKES.get(role.name)


def buffer_kinds(line: Line) -> dict[str, str]:
    """What each buffer carries, from the stations that give to it (in station order)."""
    kinds: dict[str, str] = {}
    for st in line.stations:
        role = role_for(st.process, st.archetype or None)
        if role is None:
            continue
        took = kinds.get(st.input or "") if st.input else None
        out = gives(st, role, took or takes(st, role))
        if st.output and out and st.output not in kinds:
            kinds[st.output] = out
    return kinds


def check_line(line: Line, profile: Profile, fail: Fail) -> None:
    kinds = buffer_kinds(line)
    for i, st in enumerate(line.stations):
        role = role_for(st.process, st.archetype or None)
        if role is None:
            raise fail(["stations", i, "archetype"], f"no archetype for process {st.process!r}; name one")
        _check_timing(i, st, role, fail)
        _check_interfaces(i, st, role, line, profile, fail)
        _check_route(i, st, role, line, kinds, fail)
        _check_options(i, st, role, fail)
        _check_material(i, st, role, line, fail)
    _check_buffers(line, fail)
    try:
        make_dist(line.offline_mes["latency"])
    except ValueError as exc:
        raise fail(["offline_mes", "latency"], str(exc)) from None


def _check_buffers(line: Line, fail: Fail) -> None:
    taken = {st.input for st in line.stations if st.input}
    given = {st.output for st in line.stations if st.output}
    for bid, spec in line.buffers.items():
        if bid not in given and not spec.initial:
            raise fail(["buffers", bid], "no station gives to this buffer and it has no initial units")
        if bid not in taken and not spec.sink:
            raise fail(["buffers", bid], "no station takes from this buffer; mark it `sink: true` if units leave here")


def _check_timing(i: int, st: Station, role: Role, fail: Fail) -> None:
    try:
        cycle_dist(cycle=st.cycle, cycle_s=st.cycle_s, rate_ppm=st.rate_ppm, cv=st.cycle_cv)
    except ValueError as exc:
        raise fail(["stations", i, "cycle" if st.cycle is not None else "rate_ppm"], str(exc)) from None
    for key, spec in (("mttr", st.reliability.get("mttr")), ("warning_s", st.reliability.get("warning_s"))):
        if spec is not None:
            try:
                make_dist(spec)
            except ValueError as exc:
                raise fail(["stations", i, "reliability", key], str(exc)) from None
    if ("mtbf_s" in st.reliability) != ("mttr" in st.reliability):
        raise fail(["stations", i, "reliability"], "mtbf_s and mttr go together")
    if st.changeover:
        try:
            make_dist(st.changeover["duration"])
        except ValueError as exc:
            raise fail(["stations", i, "changeover", "duration"], str(exc)) from None


def _check_interfaces(i: int, st: Station, role: Role, line: Line, profile: Profile, fail: Fail) -> None:
    listed = set(st.interfaces)
    reachable = listed | set(line.common_interfaces)
    allowed = role.callable()
    for j, name in enumerate(st.interfaces):
        if name not in allowed:
            calls = ", ".join(sorted(allowed - set(line.common_interfaces)))
            raise fail(["stations", i, "interfaces", j], f"archetype {role.name} never calls {name}; it calls {calls}")
    for need in role.needs:
        if need not in reachable:
            section = profile.operation(need).section
            raise fail(["stations", i, "interfaces"], f"archetype {role.name} calls {need} ({section}): list it")
    for group in role.one_of:
        chosen = [n for n in group if n in reachable]
        if len(chosen) != 1:
            raise fail(["stations", i, "interfaces"], f"list exactly one of {', '.join(group)} (found {len(chosen)})")
    if st.tray.get("group"):
        for need in ("EmptyContainerCheck", "ContainerSfcCheck", "BindContainer"):
            if need not in reachable:
                raise fail(["stations", i, "interfaces"], f"a station that groups trays calls {need}: list it")
    if st.tray.get("unbind") and "UnBindContainer" not in reachable:
        raise fail(["stations", i, "interfaces"], "a station that unbinds trays calls UnBindContainer: list it")
    if "HalfFeeding" in listed and not st.input:
        j = st.interfaces.index("HalfFeeding")
        raise fail(["stations", i, "interfaces", j], "HalfFeeding (2.11) loads units from an input buffer: add input")


def _check_route(i: int, st: Station, role: Role, line: Line, kinds: dict[str, str], fail: Fail) -> None:
    known = ", ".join(line.buffers) or "none"
    for key in ("input", "output"):
        ref = getattr(st, key)
        if ref is not None and ref not in line.buffers:
            raise fail(["stations", i, key], f"buffer {ref!r} is not declared (buffers: {known})")
    if role.name in NEEDS_INPUT and not st.input:
        raise fail(["stations", i], f"archetype {role.name} takes units: add input")
    if role.name != "warehouse" and not st.output:
        raise fail(["stations", i], f"archetype {role.name} gives units: add output")
    wanted = takes(st, role)
    carried = kinds.get(st.input or "")
    if st.input and wanted and carried and carried != wanted and not (role.name == "mixing" and carried == "glue"):
        raise fail(
            ["stations", i, "input"], f"buffer {st.input!r} carries {carried} units but {role.name} takes {wanted}"
        )
    if role.name == "unit" and carried not in (None, "jelly_roll", "pair", "cell"):
        raise fail(["stations", i, "input"], f"a unit station takes jelly rolls, pairs or cells, not {carried}")
    for key in ("input", "output"):
        ref = getattr(st, key)
        spec = line.buffers.get(ref or "")
        if spec and spec.lanes and st.lanes and not set(st.lanes) <= set(spec.lanes):
            raise fail(["stations", i, "lanes"], f"buffer {ref!r} has lanes {list(spec.lanes)}, not {list(st.lanes)}")
        if key == "input" and spec and spec.lanes and not st.lanes and role.name != "winding":
            raise fail(["stations", i, "lanes"], f"buffer {ref!r} has lanes {list(spec.lanes)}: give the station lanes")
    if role.name == "chamber":
        if not st.tray:
            raise fail(["stations", i], "a chamber station needs tray: {size, pool}")
        if st.tray["pool"] not in line.tray_pools:
            raise fail(["stations", i, "tray", "pool"], f"tray pool {st.tray['pool']!r} is not declared")
    if role.name == "rack" and st.rack_size < 1:
        raise fail(["stations", i], "a rack station needs rack_size")


def _check_options(i: int, st: Station, role: Role, fail: Fail) -> None:
    for key, value in st.options.items():
        if key not in role.options:
            known = ", ".join(role.options) or "none"
            raise fail(
                ["stations", i, "options", key], f"archetype {role.name} has no option {key!r} (options: {known})"
            )
        default: Any = role.options[key]
        ok = isinstance(value, type(default)) or (isinstance(default, float) and isinstance(value, int))
        if not ok or isinstance(value, bool) != isinstance(default, bool):
            raise fail(["stations", i, "options", key], f"expected {type(default).__name__}, got {value!r}")


def _check_material(i: int, st: Station, role: Role, line: Line, fail: Fail) -> None:
    materials = line.catalogue.materials if line.catalogue else {}
    for key in st.consumes:
        name, _, lane = key.partition("@")
        if lane and lane not in st.lanes:
            raise fail(
                ["stations", i, "consumes", key], f"lane {lane!r} is not one of the station's lanes {list(st.lanes)}"
            )
        if name not in materials:
            raise fail(
                ["stations", i, "consumes", key], f"no material {name!r} in the catalogue ({', '.join(materials)})"
            )
    reachable = set(st.interfaces) | set(line.common_interfaces)
    if "Feeding" in st.interfaces and not st.consumes:
        j = st.interfaces.index("Feeding")
        raise fail(["stations", i, "interfaces", j], "Feeding (2.10) loads raw material: add consumes: {MATERIAL: qty}")
    if st.consumes and "Feeding" not in reachable:
        raise fail(["stations", i, "consumes"], "raw material is loaded with Feeding (2.10): list it in interfaces")
