"""report.html renders in headless Chromium: no console error, no network, every plot decoded; a screenshot.

The screenshot is kept as a test artifact in the test's tmp dir (pytest prints where with -v; the newest
is under /tmp/pytest-of-$USER/pytest-current/).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.chromium import chromium_binary, inspect_page
from tests.report.conftest import SyntheticRun

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        chromium_binary() is None,
        reason="Debian's chromium is not installed (apt-get install -y chromium): the HTML render test needs it",
    ),
]


def test_report_renders_with_every_plot_and_nothing_from_the_network(full_run: SyntheticRun, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    page = inspect_page(full_run.path / "report.html", shot)
    assert page.errors == []
    assert all(u.startswith(("file://", "data:")) for u in page.requests), page.requests
    plots = {p.stem for p in (full_run.path / "plots").glob("*.png")}
    assert {i["plot"] for i in page.images} == plots and len(page.images) == len(plots) == 6
    for image in page.images:
        assert image["complete"] and image["width"] >= 800 and image["height"] >= 200, image
    assert page.title.startswith("FAIL · mini/") and page.text.lstrip().startswith("MES load report")
    assert "SLOs NOT MET" in page.text.split("Settings")[0]  # the verdict comes before everything else
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")


def test_comparison_page_renders(full_run: SyntheticRun, tmp_path: Path) -> None:
    from twin.report import compare_runs
    from twin.report.compare import write_comparison

    page_path = write_comparison(compare_runs(full_run.path, full_run.path), full_run.path, full_run.path,
                                 tmp_path / "compare.html")  # fmt: skip
    page = inspect_page(page_path, tmp_path / "compare.png")
    assert page.errors == [] and len(page.images) == 1 and page.images[0]["width"] >= 800
    assert "NO REGRESSION" in page.text


def test_the_checker_sees_console_errors_and_broken_images(tmp_path: Path) -> None:
    """The same probe on a page that is wrong on purpose: the checks above can fail."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img data-plot="x" src="data:image/png;base64,AAAA">'
                   "<script>console.error('boom')</script></body></html>")  # fmt: skip
    page = inspect_page(bad, tmp_path / "bad.png")
    assert any("boom" in e for e in page.errors)
    assert page.images == [{"plot": "x", "complete": True, "width": 0, "height": 0}]
