"""Running a line: what sits on top of the model, the transport and the metrics while a run goes.

``twin.run.web`` serves the live web view of a networked run (``twin run LINE --web [HOST:]PORT``): one page
with the line, the MES link and the load, pushed once a second, and the controls that steer the run.

A sharded run (``twin run LINE --scale K --workers N``, or a factory file) is driven by ``twin.run.sharded``:
``plan`` cuts the copies into shards, ``shard`` runs them in worker processes (Ray actors, ``workers``), ``merge``
adds their folders up exactly, ``shardlive`` and ``shardweb`` show the totals and each shard; ``factory`` reads
factory files.
"""

from __future__ import annotations
