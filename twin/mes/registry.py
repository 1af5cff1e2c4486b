"""Where each equipment's host listens, for the calls the MES makes to it (spec section 3, port 6868).

In the plant every host has a fixed IP (1.5.6) and serves on 6868. In the twin every virtual equipment
gets its own loopback address by default, 127.0.1.N in line order (N = 1, 2, ...; Linux routes all of
127/8 to lo), so the MES addresses equipment as in the plant. A mapping overrides any of them, and the
key ``*`` sends every equipment without its own entry to one listener (which then routes by
EquipmentCode). ``twin run`` uses the same function for the equipment side, so both ends agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from twin.errors import ConfigError
from twin.line.model import Line, base_code

EQUIPMENT_PORT = 6868
_PER_OCTET = 254  # host numbers 1..254 of each 127.0.x.0/24


def loopback_address(n: int, *, first_octet: int = 1) -> str:
    """The n-th (from 1) equipment address: 127.0.1.1 ... 127.0.1.254, then 127.0.2.1 ..."""
    if n < 1:
        raise ValueError(f"equipment numbers start at 1, got {n}")
    third = first_octet + (n - 1) // _PER_OCTET
    if third > 255:
        raise ConfigError(f"more than {(256 - first_octet) * _PER_OCTET} equipment cannot get loopback addresses")
    return f"127.0.{third}.{(n - 1) % _PER_OCTET + 1}"


def normalise_address(value: str, *, default_port: int = EQUIPMENT_PORT) -> str:
    """``host``, ``host:port`` or ``http://host:port`` as ``host:port``."""
    text = value.strip().removeprefix("http://").rstrip("/")
    if not text:
        raise ConfigError("an equipment address cannot be empty")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return f"{text}:{default_port}"
    if not host:
        raise ConfigError(f"equipment address {value!r} has a port but no host")
    if not 1 <= int(port) <= 65535:
        raise ConfigError(f"equipment address {value!r}: the port must be 1 to 65535")
    return f"{host}:{int(port)}"


def equipment_codes(line: Line) -> list[str]:
    return [code for station in line.stations for code in station.equipment_codes()]


def equipment_addresses(
    line: Line | Iterable[str],
    overrides: Mapping[str, str] | None = None,
    *,
    port: int = EQUIPMENT_PORT,
) -> dict[str, str]:
    """``{equipment code: "host:port"}`` for every equipment of the line, in line order."""
    codes = equipment_codes(line) if isinstance(line, Line) else list(line)
    overrides = dict(overrides or {})
    fallback = overrides.pop("*", None)
    codes += [code for code in overrides if code not in codes and base_code(code) in codes]  # copies (--scale)
    unknown = sorted(set(overrides) - set(codes))
    if unknown:
        raise ConfigError(f"equipment address given for codes not on the line: {', '.join(unknown[:5])}")
    out = {}
    for n, code in enumerate(codes, start=1):
        if code in overrides:
            out[code] = normalise_address(overrides[code], default_port=port)
        elif fallback is not None:
            out[code] = normalise_address(fallback, default_port=port)
        else:
            out[code] = f"{loopback_address(n)}:{port}"
    return out


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """``CODE=HOST[:PORT]`` command-line items as a mapping."""
    out = {}
    for item in items:
        code, sep, address = item.partition("=")
        if not sep or not code.strip() or not address.strip():
            raise ConfigError(f"equipment address {item!r} must be CODE=HOST[:PORT] (or *=HOST[:PORT])")
        out[code.strip()] = address.strip()
    return out


def load_registry(path: str | Path) -> dict[str, str]:
    """A YAML or JSON mapping ``{equipment code: address}`` from a file."""
    file = Path(path)
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read equipment registry {file}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"equipment registry {file} is not valid YAML/JSON{where}: {problem}") from exc
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise ConfigError(f"equipment registry {file} must map equipment codes to addresses (strings)")
    return {str(k): v for k, v in doc.items()}
