"""Industrial-PC open platform (seed 002): a virtual industrial PC on WebSocket, and a client that drives one.

``spec`` reads the AsyncAPI profile (``profiles/ipc-open-platform-v1.asyncapi.yaml``), ``camera`` and ``dispenser``
are the two devices, ``server`` the PC (websockets), ``driver`` the scripted client.
"""
