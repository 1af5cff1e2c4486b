"""Running a line: what sits on top of the model, the transport and the metrics while a run goes.

``twin.run.web`` serves the live web view of a networked run (``twin run LINE --web [HOST:]PORT``): one page
with the line, the MES link and the load, pushed once a second, and the controls that steer the run.
"""

from __future__ import annotations
