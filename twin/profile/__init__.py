"""Protocol profiles: load OpenAPI documents, build, encode and validate messages."""

from twin.profile.casing import Casing, camel, pascal
from twin.profile.loader import available_profiles, find_profile, load_profile
from twin.profile.model import Operation, Profile, format_time

__all__ = [
    "Casing",
    "Operation",
    "Profile",
    "available_profiles",
    "camel",
    "find_profile",
    "format_time",
    "load_profile",
    "pascal",
]
