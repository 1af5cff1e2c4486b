"""``Plot``: one image of the report, as the page and ``plots/`` get it.

Apart from the drawing code so that the page (``html``) and the run's end (``build``) can name plots without
importing matplotlib, which costs most of a second: the CLI's ``--help`` never pays for it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Plot:
    """One PNG of the report: ``name`` is its file name stem under ``plots/``."""

    name: str
    title: str
    caption: str
    png: bytes
