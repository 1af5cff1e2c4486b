"""Hardware in the loop: virtual PLCs a real host reads, real PLCs the twin watches, the validating host proxy.

Modbus TCP and OPC UA come from the ``hil`` extra (pymodbus, asyncua); the modules that need them import them,
so the proxy and the I/O maps work without the extra.
"""

from twin.hil.events import Backoff, InterlockCheck, PlcEvent
from twin.hil.image import IoImage, ParamLimits
from twin.hil.iomap import IoMap, Signal, load_io_map

__all__ = ["Backoff", "InterlockCheck", "IoImage", "IoMap", "ParamLimits", "PlcEvent", "Signal", "load_io_map"]
