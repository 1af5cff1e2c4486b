"""What the energy-uplink profile says, in the form the uplink and the platform use it.

Return codes (and which of them are worth a resend), the time format, the upload rules of 8.8 and the twin's
own plant (``x-twin-site``) are data in ``profiles/energy-uplink-v1.openapi.yaml``; this module reads them once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from twin.errors import ProfileError
from twin.profile import Operation, Profile, load_profile

PROFILE_NAME = "energy-uplink-v1"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # yyyy-MM-dd HH:mm:ss (x-time-format)
SUCCESS = "0"

# Operation ids, in the order of the spec's sections 8.3-8.10.
REGISTER = "Register"
BASE_DATA = "DownloadBaseData"
VERSION = "VersionCheck"
CONFIG = "UploadConfigData"
METERING = "UploadMeteringData"
ENERGY = "UploadEnergyData"
CONFIG_DOWNLOAD = "DownloadConfigData"
ENERGY_DOWNLOAD = "DownloadEnergyData"
OPERATIONS = (REGISTER, BASE_DATA, VERSION, CONFIG, METERING, ENERGY, CONFIG_DOWNLOAD, ENERGY_DOWNLOAD)


def format_time(moment: datetime) -> str:
    return moment.strftime(TIME_FORMAT)


@dataclass(frozen=True, slots=True)
class ReturnCode:
    code: str
    name: str
    text: str
    retry: bool


@dataclass(slots=True)
class EnergySpec:
    profile: Profile
    codes: dict[str, ReturnCode]  # by code: "0", "E1001" ...
    realtime_s: int
    retries: int
    version_check_s: float
    site: dict[str, Any]
    url_fields: dict[str, str]  # operation id -> register answer field holding its URL
    path_aliases: dict[str, str] = field(default_factory=dict)

    def op(self, operation_id: str) -> Operation:
        return self.profile.operation(operation_id)

    def code_named(self, name: str) -> str:
        for rc in self.codes.values():
            if rc.name == name:
                return rc.code
        raise KeyError(name)

    def message(self, code: str) -> str:
        rc = self.codes.get(code)
        return rc.text if rc else "unknown return code"


@lru_cache(maxsize=4)
def load_energy_spec(ref: str = PROFILE_NAME) -> EnergySpec:
    """Read the energy-uplink profile (by name or path) once per process."""
    profile = load_profile(ref)
    doc = profile.document
    missing = [op for op in OPERATIONS if op not in profile.operations]
    if missing:
        raise ProfileError(f"profile {ref}: operations missing: {', '.join(missing)}")
    codes = {
        str(code): ReturnCode(str(code), str(v["name"]), str(v.get("text", "")), bool(v.get("retry", False)))
        for code, v in (doc.get("x-return-codes") or {}).items()
    }
    if SUCCESS not in codes:
        raise ProfileError(f"profile {ref}: x-return-codes has no success code {SUCCESS!r}")
    upload = doc.get("x-upload") or {}
    url_fields: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for op in profile:
        if "x-url-field" in op.extensions:
            url_fields[op.operation_id] = str(op.extensions["x-url-field"])
        for alias in op.extensions.get("x-path-aliases") or ():
            aliases[str(alias)] = op.operation_id
    return EnergySpec(
        profile=profile,
        codes=codes,
        realtime_s=int(upload.get("realtime-period-s", 900)),
        retries=int(upload.get("retries", 3)),
        version_check_s=float(upload.get("version-check-period-s", 86400)),
        site=dict(doc.get("x-twin-site") or {}),
        url_fields=url_fields,
        path_aliases=aliases,
    )
