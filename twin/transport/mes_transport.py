"""The networked transport of a run: the line model's ``Call`` in, the MES's ``Answer`` out.

Implements ``twin.sim.calls.Transport`` over ``MesClient``. The model's intended wall time is on the
event loop's clock (monotonic); the exchange log keeps epoch seconds, so it is converted at send time.
"""

from __future__ import annotations

import asyncio
import time

from twin.sim.calls import Answer, Call
from twin.transport.http import MesClient


class MesTransport:
    """Sends every call of the model through one pooled ``MesClient``."""

    def __init__(self, client: MesClient) -> None:
        self.client = client

    async def exchange(self, call: Call) -> Answer:
        intended_wall = None
        if call.wall_s is not None:
            intended_wall = time.time() - (asyncio.get_running_loop().time() - call.wall_s)
        reply = await self.client.call(
            call.op,
            call.body,
            equipment=call.equipment_code,
            token=call.token,
            intended_virtual_s=call.virtual_s,
            intended_wall=intended_wall,
        )
        ex = reply.exchange
        return Answer(
            reply.status,
            reply.code if isinstance(reply.code, int) else None,
            reply.msg,
            reply.data,
            sent_wall=ex.sent_wall,
            answered_wall=ex.answered_wall,
            error=reply.error or None,
        )
