"""One module per command group of the ``twin`` CLI."""
