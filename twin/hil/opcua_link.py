"""A real PLC over OPC UA (asyncua's client).

One ``read_values`` request per poll for all the signals asked for. Status codes that mean the session or
the channel is gone are connection losses (``PlcUnavailable``), any other bad status is the PLC refusing
(``PlcRefused``: an unknown node, a value it will not take).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from asyncua import Client, ua

from twin.hil.codec import from_raw
from twin.hil.iomap import Signal
from twin.hil.link import PlcLink, PlcRefused, PlcUnavailable
from twin.hil.opcua_nodes import node_id, variant

_LOST = ("Session", "Connection", "Channel", "Communication", "Timeout", "NotConnected", "Shutdown")


def _is_loss(exc: ua.UaStatusCodeError) -> bool:
    """asyncua raises one subclass per status code, named after it (``BadSessionClosed`` ...)."""
    return any(word in type(exc).__name__ for word in _LOST)


class OpcUaLink(PlcLink):
    _client: Client | None = None
    _nodes: dict[str, Any]

    @property
    def url(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}{self.map.path}"

    async def connect(self) -> None:
        await self.close()
        client = Client(self.url, timeout=self.timeout_s)
        try:
            await client.connect(auto_reconnect=False)
        except (OSError, TimeoutError, ua.UaError) as exc:
            client.disconnect_socket()
            raise PlcUnavailable(f"{self.url}: {exc or type(exc).__name__}") from exc
        self._client = client
        try:
            relative = any(not (s.node or "").startswith(("ns=", "i=")) for s in self.map.signals)
            idx = await client.get_namespace_index(self.map.namespace) if relative else 0
        except ValueError:
            await self.close()
            raise PlcRefused(f"{self.url}: the server has no namespace {self.map.namespace}") from None
        except (OSError, TimeoutError, ua.UaError) as exc:
            await self.close()
            raise PlcUnavailable(f"{self.url}: {exc or type(exc).__name__}") from exc
        self._nodes = {s.name: client.get_node(node_id(s, idx)) for s in self.map.signals}

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            await asyncio.wait_for(client.disconnect(), self.timeout_s)
        except (OSError, TimeoutError, ua.UaError, ConnectionError):
            client.disconnect_socket()
        finally:
            with contextlib.suppress(Exception):
                client.disconnect_socket()

    def _live(self) -> Client:
        if self._client is None:
            raise PlcUnavailable(f"{self.url}: not connected")
        return self._client

    async def read(self, signals: Sequence[Signal]) -> dict[str, Any]:
        self._live()
        nodes = [self._nodes[s.name] for s in signals]
        try:
            raw = await asyncio.wait_for(self._client.read_values(nodes), self.timeout_s)  # type: ignore[union-attr]
        except ua.UaStatusCodeError as exc:
            raise (PlcUnavailable if _is_loss(exc) else PlcRefused)(f"{self.url}: read: {exc}") from exc
        except (OSError, TimeoutError, ConnectionError, ua.UaError) as exc:
            raise PlcUnavailable(f"{self.url}: read: {exc or type(exc).__name__}") from exc
        return {s.name: from_raw(s, v) for s, v in zip(signals, raw, strict=True)}

    async def write(self, signal: Signal, value: Any) -> None:
        self._live()
        node = self._nodes[signal.name]
        try:
            value = ua.DataValue(variant(signal, signal.coerce(value)))
            await asyncio.wait_for(node.write_value(value), self.timeout_s)
        except ua.UaStatusCodeError as exc:
            raise (PlcUnavailable if _is_loss(exc) else PlcRefused)(f"{self.url}: write {signal.name}: {exc}") from exc
        except (OSError, TimeoutError, ConnectionError, ua.UaError) as exc:
            raise PlcUnavailable(f"{self.url}: write {signal.name}: {exc or type(exc).__name__}") from exc
