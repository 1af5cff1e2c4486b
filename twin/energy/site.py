"""The plant as the energy uplink reports it: one data code per station of a line and per utility, and the total.

Data codes are composed as EN-13 of the profile says (process-unit-equipment-equipmentUnit-energy-usage, e.g.
``02-03-00-00-023300-11``): a station's segment gives its production process (the site's ``processes`` map),
its place among that process's stations the process unit. The plant total (``00-00-00-00-...``, scope 1) is the
sum of every other point. Power per equipment and state comes from the site's ``power-kw`` table by process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twin.energy.spec import EnergySpec
from twin.errors import ConfigError
from twin.line.model import Line

REALTIME, DAILY = 0, 1  # statType: 0 real-time (15 min), 1 day


@dataclass(frozen=True, slots=True)
class DataPoint:
    code: str
    name: str
    scope: int  # 1 plant, 3 process unit
    process_code: str
    unit_code: str
    source: str | None = None  # station id or plant-load id; None for the plant total
    process: str | None = None  # the line's process key (power look-up)
    count: int = 0  # equipment behind the point
    power_kw: tuple[float, float, float] = (0.0, 0.0, 0.0)  # per equipment: run, idle, down
    load_kw: float = 0.0  # a utility's mean load
    daily_swing: float = 0.0  # a utility's relative swing over the day


@dataclass(slots=True)
class Site:
    enterprise: dict[str, Any]
    region: str
    input_type: int
    collect_system_name: str
    energy: dict[str, str]
    processes: dict[str, dict[str, Any]]
    meter: dict[str, Any]
    states: dict[str, float]
    points: list[DataPoint] = field(default_factory=list)

    @property
    def enterprise_code(self) -> str:
        return str(self.enterprise["code"])

    @property
    def total(self) -> DataPoint:
        return self.points[0]

    def point(self, code: str) -> DataPoint:
        for p in self.points:
            if p.code == code:
                return p
        raise KeyError(code)

    def parents(self, code: str) -> tuple[str, ...]:
        """The codes a sample of ``code`` also counts towards (the plant total)."""
        return () if code == self.total.code else (self.total.code,)

    def collect_item_config(self) -> list[dict[str, Any]]:
        """8.6 collectItemConfig: each point at both frequencies (strings, as 8.6's example writes them, EN-7)."""
        items = []
        for p in self.points:
            peak_kw = p.count * p.power_kw[0] + p.load_kw * (1 + p.daily_swing) if p.source else self._peak_kw()
            for stat_type, hours in ((REALTIME, 0.25), (DAILY, 24.0)):
                items.append(
                    {
                        "name": p.name,
                        "processCode": p.process_code,
                        "processUnitCode": p.unit_code,
                        "equipmentCode": "00",
                        "equipmentUnitCode": "00",
                        "energyClassCode": self.energy["class-code"],
                        "energyTypeCode": self.energy["type-code"],
                        "dataUsageCode": self.energy["usage-code"],
                        "inputType": str(self.input_type),
                        "dataValueMax": round(peak_kw * hours * 1.5, 1),
                        "dataValueMin": 0,
                        "statType": str(stat_type),
                        "collectSystemName": self.collect_system_name,
                        "remark": "",
                        "scope": p.scope,
                    }
                )
        return items

    def _peak_kw(self) -> float:
        return sum(p.count * p.power_kw[0] + p.load_kw * (1 + p.daily_swing) for p in self.points[1:])

    def metering_data(self, *, installed: str) -> list[dict[str, Any]]:
        """8.7 meteringData: the plant's incoming meter and one meter per point."""
        m = self.meter
        out = []
        for p in self.points:
            out.append(
                {
                    "meteringName": f"{p.name.split('-')[0]}电能表",
                    "meteringType": str(m["type"]),
                    "meteringLevel": 1 if p.scope == 1 else int(m.get("level", 3)),
                    "meteringParameter": "有功电能",
                    "dataCode": p.code,
                    "dataCodeCalculate": 1,
                    "dataCodeRatio": 1,
                    "manuFacturer": str(m.get("maker", "")),
                    "typeSpecification": str(m.get("model", "")),
                    "accuracyLevel": str(m.get("accuracy", "")),
                    "measureRange": "",
                    "manageCode": f"EM-{p.code}",
                    "calibrationState": "合格",
                    "calibrationCycle": str(m.get("cycle", "")),
                    "latelyCalibration": installed,
                    "inspectionOrganization": "",
                    "nextCalibration": "",
                    "notCalibration": "",
                    "installationSite": p.name.split("-")[0],
                    "installOrg": 1,
                    "installDate": installed,
                    "usrSystem": 1,
                    "measureState": 1,
                    "measureStateDate": installed,
                }
            )
        return out

    def process_list(self) -> list[dict[str, Any]]:
        used = {p.process_code for p in self.points[1:]}
        return [
            {"processCode": code, "processName": str(v["name"]), "remark": ""}
            for code, v in self.processes.items()
            if code in used
        ]

    def process_units(self) -> list[dict[str, Any]]:
        return [
            {"code": p.unit_code, "name": p.name.split("-")[0], "processCode": p.process_code, "remark": ""}
            for p in self.points[1:]
        ]


def _code(process: str, unit: str, energy: dict[str, str]) -> str:
    return f"{process}-{unit}-00-00-{energy['class-code']}{energy['type-code']}-{energy['usage-code']}"


def build_site(line: Line, spec: EnergySpec) -> Site:
    """The data points of a line's stations and the site's utilities, from the profile's ``x-twin-site``."""
    raw = spec.site
    energy = {k: str(v) for k, v in (raw.get("energy") or {}).items()}
    processes = {str(k): v for k, v in (raw.get("processes") or {}).items()}
    by_segment = {seg: code for code, v in processes.items() for seg in v.get("segments") or ()}
    power: dict[str, tuple[float, float, float]] = {}
    for process, kw in (raw.get("power-kw") or {}).items():
        if not isinstance(kw, list) or len(kw) != 3:
            raise ConfigError(f"x-twin-site.power-kw.{process}: expected [run, idle, down] kW, got {kw!r}")
        power[str(process)] = (float(kw[0]), float(kw[1]), float(kw[2]))
    site = Site(
        enterprise=dict(raw["enterprise"]),
        region=str(raw.get("region", "")),
        input_type=int(raw.get("input-type", 2)),
        collect_system_name=str(raw.get("collect-system-name", "")),
        energy=energy,
        processes=processes,
        meter=dict(raw.get("meter") or {}),
        states={k: float(v) for k, v in (raw.get("states") or {}).items()},
    )
    site.points.append(DataPoint(_code("00", "00", energy), f"全厂-{energy['name']}", 1, "00", "00"))
    units: dict[str, int] = {}
    for st in line.stations:
        process_code = by_segment.get(st.segment or "")
        if process_code is None:
            raise ConfigError(f"station {st.id}: segment {st.segment or '(none)'!r} maps to no process of x-twin-site")
        units[process_code] = units.get(process_code, 0) + 1
        unit = f"{units[process_code]:02d}"
        kw = tuple(st.power_kw) if st.power_kw else power.get(st.process) or power.get("default") or (0.0, 0.0, 0.0)
        name = f"{st.name_cn or st.id}-{energy['name']}"
        site.points.append(
            DataPoint(_code(process_code, unit, energy), name, 3, process_code, unit, st.id, st.process, st.count, kw)
        )
    utilities = by_segment.get("utilities")
    for i, load in enumerate(raw.get("plant-loads") or (), 1):
        if utilities is None:
            raise ConfigError("x-twin-site has plant-loads but no process for the segment 'utilities'")
        unit = f"{i:02d}"
        site.points.append(
            DataPoint(
                _code(utilities, unit, energy),
                f"{load['name']}-{energy['name']}",
                3,
                utilities,
                unit,
                str(load["id"]),
                load_kw=float(load["kw"]),
                daily_swing=float(load.get("daily-swing", 0)),
            )
        )
    return site
