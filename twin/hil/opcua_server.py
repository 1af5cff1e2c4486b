"""The virtual PLC over OPC UA: asyncua's server, one variable per signal of the I/O map.

Relative node ids of the map (``Winder.Run``) become string node ids in the map's namespace, under one object
(``opcua.object``). The image pushes every change to its variable in order (one queue, one writer task), so a
subscribed host sees the pulse rise and fall; the host's writes come back through asyncua's post-write
callback (external sessions only) into ``IoImage.host_write``. Only signals the map gives to the host are
writable. asyncua refuses a write to the others with ``BadUserAccessDenied`` (it checks the user's access level
first); the post-write callback turns that into ``BadNotWritable`` in the answer, which is what a PLC says of
a variable it owns. The server offers no security (loopback and commissioning use), so asyncua's two start-up
warnings about missing signing and encryption policies are left out of the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from asyncua import Server, ua
from asyncua.common.callback import CallbackType, ServerItemCallback

from twin.errors import ConfigError
from twin.hil.codec import from_raw
from twin.hil.opcua_nodes import node_id, variant
from twin.hil.virtual import VirtualPlc

log = logging.getLogger(__name__)

def _no_security_warnings(record: logging.LogRecord) -> bool:
    """Drop asyncua's "No signing/encrypting policy available" warnings: no security is the choice here."""
    return not record.getMessage().startswith(("No signing policy", "No encrypting policy"))


class VirtualOpcUaPlc(VirtualPlc):
    protocol = "opcua"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._server: Server | None = None
        self._nodes: dict[str, ua.NodeId] = {}
        self._names: dict[ua.NodeId, str] = {}
        self._pushes: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._pusher: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None

    @property
    def url(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}{self.image.map.path}"

    async def _serve(self) -> int:
        io_map = self.image.map
        logging.getLogger("asyncua.server.server").addFilter(_no_security_warnings)
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://{self.host}:{self.port}{io_map.path}")
        server.set_server_name(f"twin virtual PLC {io_map.name}")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace(io_map.namespace)
        parent = await server.nodes.objects.add_object(
            ua.NodeId(io_map.object_name, idx), ua.QualifiedName(io_map.object_name, idx)
        )
        values = self.image.snapshot()
        prefix = io_map.object_name + "."
        for sig in io_map.signals:
            nid = node_id(sig, idx)
            browse = (sig.node or sig.name).removeprefix(prefix)
            try:
                name = ua.QualifiedName(browse, nid.NamespaceIndex)
                var = await parent.add_variable(nid, name, variant(sig, values[sig.name]))
            except ua.UaError as exc:
                raise ConfigError(f"map {io_map.name}: cannot serve {sig.name} at {sig.node}: {exc}") from exc
            if sig.host_writable:
                await var.set_writable()
            self._nodes[sig.name] = nid
            self._names[nid] = sig.name
        server.subscribe_server_callback(CallbackType.PostWrite, self._on_write)
        await server.start()
        self._server = server
        self._unsubscribe = self.image.on_change(lambda name, value, _by: self._pushes.put_nowait((name, value)))
        self._pusher = asyncio.create_task(self._push(), name=f"opcua push {io_map.name}")
        return server.bserver.port if server.bserver is not None else self.port

    async def _close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pusher
            self._pusher = None
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def _push(self) -> None:
        """Image changes to their variables, in the order they happened."""
        while True:
            name, value = await self._pushes.get()
            server = self._server
            if server is None:
                continue
            sig = self.image.map.signal(name)
            await server.write_attribute_value(self._nodes[name], ua.DataValue(variant(sig, value)))

    async def _on_write(self, event: ServerItemCallback, _dispatcher: Any) -> None:
        if not event.is_external:
            return
        results = event.response_params or []
        for i, item in enumerate(event.request_params.NodesToWrite):
            name = self._names.get(item.NodeId)
            if name is None or item.AttributeId != ua.AttributeIds.Value:
                continue
            sig = self.image.map.signal(name)
            if i < len(results) and not results[i].is_good():
                if not sig.host_writable and results[i].value == ua.StatusCodes.BadUserAccessDenied:
                    results[i] = ua.StatusCode(ua.StatusCodes.BadNotWritable)  # the list the client gets back
                continue
            try:
                self.image.host_write(name, from_raw(sig, item.Value.Value.Value))
            except (ConfigError, PermissionError) as exc:
                log.warning("host write to %s refused: %s", sig.node, exc)
                self._pushes.put_nowait((name, self.image.get(name)))
