"""Checks of a networked run's options before anything starts: a mistake is one line and exit 2, not a run.

A run that starts against an MES that is not there, or with a speed of ``nan``, used to "finish" with no
exchanges and exit 0, which is the one thing a load test must never do. Everything here is synchronous and
bounded (the reachability check waits at most the run's ``--timeout``), so ``prepare`` can call it from a
plain or an async caller alike.
"""

from __future__ import annotations

import http.client
import math
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from twin.errors import ConfigError


def check_positive(option: str, value: float, *, zero: bool = False) -> None:
    """A finite number above zero (or at least zero): ``nan``, ``inf`` and ``-1`` are refused by name."""
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        wanted = "a finite number of at least 0" if zero else "a finite number above 0"
        raise ConfigError(f"{option} must be {wanted}, got {value:g}")


def check_prefix(prefix: str) -> str:
    """``127.0.1.`` (the trailing dot may be left out): three octets of an IPv4 address; normalised."""
    text = prefix.strip()
    body = text[:-1] if text.endswith(".") else text
    parts = body.split(".")
    if len(parts) != 3 or not all(p.isdigit() and int(p) <= 255 for p in parts):
        raise ConfigError(
            f"--equipment-prefix {prefix!r}: expected the first three octets of an IPv4 address, e.g. 127.0.1."
        )
    return body + "."


def check_addresses(prefix: str, equipment: int) -> None:
    """Every host gets its own address (prefix.1 to .254, carrying into the third octet): they must fit."""
    third = int(prefix.rstrip(".").split(".")[2])
    needed = -(-equipment // 254)
    if third + needed - 1 > 255:
        raise ConfigError(
            f"{equipment:,} equipment need {needed} blocks of 254 addresses from {prefix}1: past x.x.255.254; "
            "use a lower --equipment-prefix or a smaller --scale"
        )


def check_port(option: str, port: int) -> None:
    if not 0 <= port <= 65535:
        raise ConfigError(f"{option} must be a TCP port between 0 and 65535, got {port}")


def check_reports(root: Path) -> None:
    """The run folder's parent must be a folder the run can write, or nothing of the run would be kept."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--reports {root}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise ConfigError(f"--reports {root}: the folder is not writable")


def check_mes_url(url: str, option: str = "--mes") -> tuple[str, int, str]:
    """host, port and path of an ``http://`` MES URL; anything else is named and refused."""
    parts = urlsplit(url.strip())
    if parts.scheme == "https":
        raise ConfigError(
            f"{option} {url}: https is not supported (the twin's MES client speaks plain HTTP/1.1); "
            "give the MES's http:// address, or put a TLS-terminating proxy in front of it"
        )
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigError(f"{option} {url!r}: expected an http://HOST[:PORT][/PATH] URL, e.g. http://mes.plant:8080")
    try:
        port = parts.port or 80
    except ValueError:
        raise ConfigError(f"{option} {url}: the port must be a number between 1 and 65535") from None
    return parts.hostname, port, parts.path or "/"


def check_reachable(url: str, timeout_s: float) -> None:
    """Something at ``url`` answers HTTP (any status: a 404 is an MES that is there) within ``timeout_s``."""
    host, port, path = check_mes_url(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        conn.getresponse().read(0)
    except ConnectionRefusedError:
        raise ConfigError(f"--mes {url}: connection refused (nothing listens there; is the MES running?)") from None
    except TimeoutError:
        raise ConfigError(f"--mes {url}: no answer within {timeout_s:g} s (--timeout)") from None
    except socket.gaierror as exc:
        raise ConfigError(f"--mes {url}: unknown host {host!r} ({exc.strerror})") from None
    except (OSError, http.client.HTTPException) as exc:
        raise ConfigError(f"--mes {url}: no HTTP answer ({type(exc).__name__}: {exc})") from None
    finally:
        conn.close()


async def check_reachable_async(url: str, timeout_s: float) -> None:
    """``check_reachable`` from inside an event loop (the MES may be served by that very loop)."""
    import aiohttp

    check_mes_url(url)
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http,
            http.get(url.strip()) as resp,
        ):
            await resp.read()
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, ConnectionRefusedError):
            raise ConfigError(f"--mes {url}: connection refused (nothing listens there; is the MES running?)") from None
        raise ConfigError(f"--mes {url}: no HTTP answer ({exc.os_error})") from None
    except TimeoutError:
        raise ConfigError(f"--mes {url}: no answer within {timeout_s:g} s (--timeout)") from None
    except aiohttp.ClientError as exc:
        raise ConfigError(f"--mes {url}: no HTTP answer ({type(exc).__name__}: {exc})") from None


def check_energy(value: str) -> None:
    if value == "embedded":
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--energy {value!r}: expected 'embedded' or the platform's http(s)://HOST/register URL")


def check_header_value(option: str, value: str) -> None:
    """A value sent as an HTTP header as it is (``--authorization``): printable Latin-1, no line breaks."""
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigError(f"{option}: an HTTP header value must be Latin-1 text") from None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigError(f"{option}: control characters (line breaks, tabs...) cannot go into an HTTP header")
