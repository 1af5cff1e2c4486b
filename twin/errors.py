"""The one exception tree of twin.

Every error the library raises on purpose is a ``TwinError``; the CLI catches it once, prints it on one
line and exits with the code that the class carries (2 for bad input, 1 for a failed check). Where a
caller expects a builtin, the class inherits it too (``MesTimeout`` is a ``TimeoutError``)::

    TwinError
    ├── ConfigError (ValueError)             bad input: exit 2
    │   ├── ProfileError                     a profile file that cannot be loaded or is not OpenAPI 3.x
    │   ├── UnknownOperation (KeyError)      no operation by that id, section or path
    │   └── LineFileError                    a line file that breaks its schema (file, key path, expectation)
    ├── PayloadInvalid (ValueError)          a message that breaks its profile schema (field path, rule)
    ├── MesError                             the MES side failed a call
    │   ├── MesRefused                       the MES answered with a business code that is not success
    │   ├── MesTimeout (TimeoutError)        no answer in time
    │   └── MesUnavailable (ConnectionError) no connection
    └── (defined with their protocols, all TwinError)
        CtCallFailed, CtCheckNotNormal       twin.ct.client: inverter CT check calls and outcomes
        IpcSessionFailed                     twin.ipc.driver: a scripted industrial-PC session step failed
        UplinkCallFailed                     twin.energy.uplink: an energy-platform call failed
"""

from __future__ import annotations

from dataclasses import dataclass


class TwinError(Exception):
    """Base of every error twin raises on purpose."""

    exit_code = 1


class ConfigError(TwinError, ValueError):
    """Input given by a person (a file, a flag) is wrong; the message says which and why."""

    exit_code = 2


class ProfileError(ConfigError):
    """A profile document cannot be read or is not an OpenAPI 3.x / AsyncAPI document."""


class UnknownOperation(ConfigError, KeyError):
    """No operation matches the given operation id, section or path."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class LineFileError(ConfigError):
    """A line file breaks its schema."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One way a payload breaks its schema: where (field path as sent) and what was expected."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class PayloadInvalid(TwinError, ValueError):
    """A request or response does not match its schema in the profile."""

    exit_code = 1

    def __init__(self, operation: str, issues: list[Issue]) -> None:
        self.operation = operation
        self.issues = issues
        super().__init__(f"{operation}: " + "; ".join(str(i) for i in issues))


class MesError(TwinError):
    """The MES failed a call."""


class MesRefused(MesError):
    """The MES answered with a business code that is not success."""

    def __init__(self, operation: str, code: object, msg: str) -> None:
        self.operation = operation
        self.code = code
        self.msg = msg
        super().__init__(f"{operation}: MES refused with code {code}: {msg}")


class MesTimeout(MesError, TimeoutError):
    """The MES did not answer in time."""


class MesUnavailable(MesError, ConnectionError):
    """The MES cannot be reached."""
