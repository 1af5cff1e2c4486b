"""Inverter CT wiring check (seed 001): a cloud with a fleet of virtual inverters, and the client workflow.

``spec`` reads the profile (``profiles/ct-check-v1.openapi.yaml``), ``fleet`` models the inverters, ``server`` is
the cloud (aiohttp), ``client`` runs the check workflow on many inverters at once, recording latency.
"""
