"""Transport: say what the equipment decided to say, and time it."""

from twin.transport.http import MesClient, Reply

__all__ = ["MesClient", "Reply"]
