"""Energy-monitoring uplink (seed 003): the plant's uplink to the Nantong platform protocol, and a platform peer.

``spec`` reads the profile (``profiles/energy-uplink-v1.openapi.yaml``), ``site`` turns a line into data codes,
``store`` is the uplink's durable queue, ``uplink`` the client (``record`` samples, ``tick`` does what is due),
``platform`` and ``platform_store`` the peer, ``consumption`` and ``driver`` a standalone run from a line file.
"""
