"""twin: a hardware-in-the-loop digital twin of a lithium-battery cell production line.

The public surface is small on purpose (pinned by ``tests/test_public_api.py``); everything else is
internal and may change.
"""

import logging

from twin.errors import (
    ConfigError,
    LineFileError,
    MesError,
    MesRefused,
    MesTimeout,
    MesUnavailable,
    PayloadInvalid,
    ProfileError,
    TwinError,
    UnknownOperation,
)
from twin.profile import Operation, Profile, load_profile

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "LineFileError",
    "MesError",
    "MesRefused",
    "MesTimeout",
    "MesUnavailable",
    "Operation",
    "PayloadInvalid",
    "Profile",
    "ProfileError",
    "TwinError",
    "UnknownOperation",
    "__version__",
    "load_profile",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
