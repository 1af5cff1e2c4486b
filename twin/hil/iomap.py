"""Station I/O image maps: what a station's PLC exposes to its host PC, as data (``lines/plc/*.yaml``).

A map names each signal, its type, scaling and string encoding, and where it lives: a Modbus table and
0-based address, or an OPC UA node id. Signals carry a *role* (``run``, ``cycle_counter``, ``barcode``,
``interlock`` ...) so the virtual PLC and the real-PLC watcher know what to read and write without knowing a
station. Startup parameters (2.8 limits written down by the host, 2.9 read back) are listed per ParamCode
and expanded into three signals each (value, upper, lower).

A mistake names the file, the line and the key path, as line files do:
``lines/plc/x.yaml:12: signals[3].address: overlaps signals[1] (input_register 10-21)``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from twin.datadirs import search_dirs
from twin.datafile import DataFile, find_named, load_schema
from twin.datafile import key_path as located_key
from twin.errors import ConfigError

TABLES = ("coil", "discrete_input", "holding_register", "input_register")
BIT_TABLES = frozenset({"coil", "discrete_input"})
REGISTERS = {"bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "float64": 4}
INT_RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
}
BOUNDS = ("value", "upper", "lower")


class IoMapError(ConfigError):
    """An I/O image map that breaks its schema or its own consistency (file, line, key path)."""


@dataclass(frozen=True, slots=True)
class Signal:
    """One value of the image, in engineering units (``raw * scale``)."""

    name: str
    type: str
    role: str | None = None
    writer: str = "plc"
    table: str | None = None
    address: int | None = None
    bit: int | None = None
    node: str | None = None
    scale: float | None = None
    length: int | None = None
    encoding: str = "ascii"
    byte_order: str = "big"
    unit: str = ""
    initial: Any = None
    doc: str = ""
    param: str | None = None
    bound: str | None = None

    @property
    def host_writable(self) -> bool:
        return self.writer == "host"

    @property
    def size(self) -> int:
        """Registers (or bits, in a bit table) the value occupies on Modbus."""
        if self.table in BIT_TABLES:
            return 1
        if self.type == "string":
            return math.ceil((self.length or 0) / 2)
        return REGISTERS[self.type]

    @property
    def where(self) -> str:
        if self.node is not None:
            return self.node
        end = (self.address or 0) + self.size - 1
        span = f"{self.address}" if end == self.address else f"{self.address}-{end}"
        return f"{self.table} {span}" + (f".{self.bit}" if self.bit is not None else "")

    def default(self) -> Any:
        if self.initial is not None:
            return self.coerce(self.initial)
        return {"bool": False, "string": ""}.get(self.type, 0.0 if self._is_real() else 0)

    def _is_real(self) -> bool:
        return self.type.startswith("float") or self.scale is not None

    def coerce(self, value: Any) -> Any:
        """The value as this signal holds it, or ``ValueError`` naming the signal and the rule."""
        if self.type == "bool":
            if isinstance(value, bool) or value in (0, 1):
                return bool(value)
            raise ValueError(f"{self.name}: expected a bool, got {value!r}")
        if self.type == "string":
            if not isinstance(value, str):
                raise ValueError(f"{self.name}: expected a string, got {value!r}")
            if len(value.encode(self.encoding)) > (self.length or 0):
                raise ValueError(f"{self.name}: {value!r} is longer than {self.length} bytes in {self.encoding}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{self.name}: expected a number, got {value!r}")
        if self.type in INT_RANGES:
            low, high = INT_RANGES[self.type]
            raw = round(value / (self.scale or 1))
            if not low <= raw <= high:
                raise ValueError(f"{self.name}: {value} does not fit {self.type} (scale {self.scale or 1})")
            return raw * self.scale if self.scale else raw
        return float(value)


@dataclass(frozen=True, slots=True)
class Parameter:
    """One startup parameter (ParamCode of 2.8/2.9) and its three signals."""

    code: str
    name: str
    unit: str
    value: Signal
    upper: Signal
    lower: Signal


@dataclass(frozen=True, slots=True)
class IoMap:
    name: str
    title: str
    protocol: str
    signals: tuple[Signal, ...]
    parameters: tuple[Parameter, ...] = ()
    process: str = ""
    unit: int = 1
    word_order: str = "big"
    namespace: str = ""
    object_name: str = "PLC"
    path: str = ""
    port: int | None = None
    pulse_s: float = 0.5
    poll_s: float = 0.1
    interlock_timeout_s: float = 3.0
    watchdog_s: float = 1.0
    source: Path | None = None
    _by_name: dict[str, Signal] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({s.name: s for s in self.signals})

    def signal(self, name: str) -> Signal:
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigError(f"map {self.name} has no signal {name!r}") from None

    def role(self, role: str) -> Signal | None:
        return next((s for s in self.signals if s.role == role), None)

    def require(self, role: str) -> Signal:
        found = self.role(role)
        if found is None:
            raise ConfigError(f"map {self.name} has no signal with role {role!r}; add one to {self.source}")
        return found

    def in_table(self, table: str) -> list[Signal]:
        return [s for s in self.signals if s.table == table]

    def table_size(self, table: str) -> int:
        """Addresses 0..n-1 cover every signal of the table (bits for bit tables)."""
        return max(((s.address or 0) + s.size for s in self.in_table(table)), default=0)


# -- loading ----------------------------------------------------------------------------------------------


def map_dirs() -> list[Path]:
    return [d / "plc" for d in search_dirs("lines") if (d / "plc").is_dir()]


def available_maps() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in map_dirs():
        for path in sorted(d.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def find_io_map(ref: str | Path) -> Path:
    return find_named(ref, available_maps(), IoMapError, "I/O map", "the maps in lines/plc")


def _schema() -> dict[str, Any]:
    return load_schema(
        (d / "schema" / "io-map.schema.yaml" for d in map_dirs()),
        IoMapError("the I/O map schema lines/plc/schema/io-map.schema.yaml is missing from this installation"),
    )


def load_io_map(ref: str | Path) -> IoMap:
    """Load a map by name (``winder.modbus``) or path, and check it."""
    path = find_io_map(ref)
    doc = DataFile(path, IoMapError, "I/O map")
    data, fail = doc.data, doc.fail

    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise fail(list(errors[0].absolute_path), errors[0].message + more)
    return _build(data, path, fail)


def _build(data: dict[str, Any], path: Path, fail: Any) -> IoMap:
    protocol = data["protocol"]
    signals: list[tuple[list[str | int], Signal]] = []
    for i, raw in enumerate(data["signals"]):
        signals.append((["signals", i], Signal(**raw)))
    parameters = []
    for i, raw in enumerate(data.get("parameters") or ()):
        three = {}
        for bound in BOUNDS:
            sig = _parameter_signal(raw, bound)
            signals.append((["parameters", i, bound], sig))
            three[bound] = sig
        parameters.append(Parameter(raw["code"], raw.get("name", raw["code"]), raw.get("unit", ""), **three))
    for key_path, sig in signals:
        _check_signal(sig, protocol, key_path, fail)
    _check_unique(signals, fail)
    if protocol == "modbus":
        _check_overlaps(signals, fail)
    elif "opcua" not in data:
        raise fail(["protocol"], "an opcua map needs an opcua: {namespace: URI} block for its relative node ids")
    modbus, opcua, timing = data.get("modbus") or {}, data.get("opcua") or {}, data.get("timing") or {}
    return IoMap(
        name=data["name"],
        title=data["title"],
        protocol=protocol,
        signals=tuple(s for _, s in signals),
        parameters=tuple(parameters),
        process=data.get("process", ""),
        unit=modbus.get("unit", 1),
        word_order=modbus.get("word_order", "big"),
        namespace=opcua.get("namespace", ""),
        object_name=opcua.get("object", "PLC"),
        path=opcua.get("path", ""),
        port=(modbus if protocol == "modbus" else opcua).get("port"),
        pulse_s=timing.get("pulse_ms", 500) / 1000,
        poll_s=timing.get("poll_ms", 100) / 1000,
        interlock_timeout_s=timing.get("interlock_timeout_ms", 3000) / 1000,
        watchdog_s=timing.get("watchdog_ms", 1000) / 1000,
        source=path,
    )


def _parameter_signal(raw: dict[str, Any], bound: str) -> Signal:
    where = raw[bound]
    place: dict[str, Any] = {}
    if isinstance(where, str):
        place["node"] = where
    elif isinstance(where, int):
        place.update(table=raw.get("table", "holding_register"), address=where)
    else:
        place.update(table=where.get("table", raw.get("table", "holding_register")), address=where["address"])
    slug = re.sub(r"[^a-z0-9]+", "_", raw["code"].lower()).strip("_")
    return Signal(
        name=f"param_{slug}_{bound}",
        type=raw["type"],
        writer="plc" if bound == "value" else "host",
        scale=raw.get("scale"),
        unit=raw.get("unit", ""),
        initial=(raw.get("initial") or {}).get(bound),
        param=raw["code"],
        bound=bound,
        **place,
    )


def _check_signal(sig: Signal, protocol: str, key_path: list[str | int], fail: Any) -> None:
    if protocol == "modbus":
        if sig.table is None or sig.address is None:
            raise fail(key_path, f"{sig.name}: a modbus signal needs table and address")
        if sig.node is not None:
            raise fail(key_path, f"{sig.name}: node is for opcua maps; this map is modbus")
        if sig.table in BIT_TABLES and sig.type != "bool":
            raise fail(key_path, f"{sig.name}: a {sig.table} holds one bit; type must be bool, not {sig.type}")
        if sig.bit is not None and (sig.type != "bool" or sig.table in BIT_TABLES):
            raise fail(key_path, f"{sig.name}: bit is for a bool packed in a register table")
        if sig.table in BIT_TABLES and sig.writer == "host" and sig.table == "discrete_input":
            raise fail(key_path, f"{sig.name}: a host cannot write a discrete_input; use a coil")
        if sig.table == "input_register" and sig.writer == "host":
            raise fail(key_path, f"{sig.name}: a host cannot write an input_register; use a holding_register")
    elif sig.node is None:
        raise fail(key_path, f"{sig.name}: an opcua signal needs a node id")
    if sig.type == "string" and not sig.length:
        raise fail(key_path, f"{sig.name}: a string needs length (its capacity in bytes)")
    if sig.scale is not None and sig.type in ("bool", "string"):
        raise fail(key_path, f"{sig.name}: scale applies to numbers, not {sig.type}")
    try:
        "x".encode(sig.encoding)
        if sig.initial is not None:
            sig.coerce(sig.initial)
    except LookupError:
        raise fail(key_path, f"{sig.name}: unknown string encoding {sig.encoding!r}") from None
    except ValueError as exc:
        raise fail(key_path, f"initial: {exc}") from None


def _check_unique(signals: list[tuple[list[str | int], Signal]], fail: Any) -> None:
    names: dict[str, str] = {}
    roles: dict[str, str] = {}
    for key_path, sig in signals:
        if sig.name in names:
            raise fail(key_path, f"signal name {sig.name!r} is used twice (first at {names[sig.name]})")
        names[sig.name] = located_key(key_path)
        if sig.role is not None:
            if sig.role in roles:
                raise fail(key_path, f"role {sig.role!r} is given twice (first at {roles[sig.role]})")
            roles[sig.role] = located_key(key_path)


def _check_overlaps(signals: list[tuple[list[str | int], Signal]], fail: Any) -> None:
    """No two signals share an address, except bools packed in different bits of one register."""
    whole: dict[tuple[str, int], tuple[list[str | int], Signal]] = {}
    bits: dict[tuple[str, int], dict[int, tuple[list[str | int], Signal]]] = {}
    for key_path, sig in signals:
        assert sig.table is not None and sig.address is not None
        for addr in range(sig.address, sig.address + sig.size):
            key = (sig.table, addr)
            packed = bits.get(key, {})
            clash = whole.get(key)
            if clash is None:
                clash = packed.get(sig.bit) if sig.bit is not None else next(iter(packed.values()), None)
            if clash is not None:
                raise fail([*key_path, "address"], f"{sig.name} overlaps {located_key(clash[0])} ({clash[1].where})")
            if sig.bit is None:
                whole[key] = (key_path, sig)
            else:
                bits.setdefault(key, {})[sig.bit] = (key_path, sig)
