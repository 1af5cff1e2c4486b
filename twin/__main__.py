"""``python -m twin``: the same as the ``twin`` command (used to start the embedded MES as a process)."""

from twin.cli import main

main()
